// moeplan-opt: mlir-opt with moeplan's dialects and passes, for tests and for debugging one
// pass at a time.
#include "moeplan/Compiler/Pipeline.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  moeplan::registerCompilerDialects(registry);
  moeplan::registerCompilerPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "moeplan optimizer driver\n", registry));
}
