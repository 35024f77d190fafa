// moeplan-opt: mlir-opt with moeplan's dialects (and, as they arrive, its passes), for tests
// and debugging single passes.
#include "moeplan/Dialect/Model/ModelDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<moeplan::model::ModelDialect, mlir::func::FuncDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "moeplan optimizer driver\n", registry));
}
