// The compile pipeline from a description to a plan, in stages that `--emit` can print.
#pragma once

#include "moeplan/Description/Finding.h"
#include "moeplan/schema/plan.pb.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace moeplan {

void registerCompilerDialects(mlir::DialectRegistry &registry);
// Registers the passes and the pipeline "moeplan-compile" with mlir-opt style tools.
void registerCompilerPasses();

// The stages of the pipeline, each a pass list: model (validate), sharded (shard, pipeline
// partition), plan (model-to-plan, schedule, memory, cost).
void buildModelStage(mlir::OpPassManager &pm);
void buildShardedStage(mlir::OpPassManager &pm);
void buildPlanStage(mlir::OpPassManager &pm);

struct CompileOptions {
  std::set<std::string> emit;  // "model", "sharded", "plan": print the module after that stage
  llvm::raw_ostream *emitStream = &llvm::outs();
  bool printDiagnostics = true;  // false: count them only (check's use of compile)
};

struct CompileResult {
  std::optional<plan::Plan> plan;  // absent: unusable input or an error that blocks lowering
  bool unusable = false;           // the description could not be read or resolved
  int errors = 0;                  // error diagnostics reported, blocking or not
  bool compilerBug = false;        // the plan failed the runtime's validator (not written)
  // Rules judged on the compiled plan (memory.plan-*), by field path, also reported as
  // diagnostics; they do not keep the plan from being written.
  std::vector<Finding> planFindings;
};

// Loads, imports, runs every stage and exports. Diagnostics (rule findings at their
// .textproto locations, pass errors) go to llvm::errs() with source lines.
CompileResult compileDescriptionFile(const std::string &path, const CompileOptions &options = {});
// The same for a description's text; `path` names it in diagnostics.
CompileResult compileDescription(const std::string &text, const std::string &path,
                                 const CompileOptions &options = {});

// The rules judged on the compiled plan for a description that check finds clean: what
// `moeplan check` adds to its own rules (CheckOptions::planRules). Compiles quietly; a
// description that does not compile gives none (compile reports why).
std::vector<Finding> compiledPlanFindings(const std::string &text, const std::string &path);

// "" when `plan` passes the runtime's validator (planfile::validatePlan), else the report
// compile prints (a compiler bug: the plan is not written, exit status 3).
std::string compiledPlanProblems(const plan::Plan &plan, const std::string &path);

} // namespace moeplan
