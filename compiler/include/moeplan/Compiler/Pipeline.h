// The compile pipeline from a description to a plan, in stages that `--emit` can print.
#pragma once

#include "moeplan/Description/Finding.h"
#include "moeplan/Check/CheckReport.h"
#include "moeplan/Description/Load.h"
#include "moeplan/schema/plan.pb.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mlir { class MLIRContext; }

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
  // Judge the workload: compile and simulate the deployment at `seqPoints` sequence lengths
  // (WorkloadSpec::seqPoints) into the plan's workload_points, judge every requirement at
  // each (findings), flag requirements no strategy on the cluster can meet, and judge the
  // claims. false: only the plan (what search and the points themselves use).
  bool judgeWorkload = true;
  int seqPoints = 3;
  // Safety checks on the way, each a quarter and a tenth of a large compile: MLIR's verifier
  // after every pass, and the runtime's validator on the plan (a failure: compilerBug).
  // Search turns both off for candidates it only simulates (a winner is compiled again,
  // checked, before anything is written).
  bool verifyEachPass = true;
  bool validatePlan = true;
  // Export into this message instead of CompileResult::plan (judgeWorkload must be false):
  // search allocates candidates' plans on an arena, where freeing them costs nothing.
  plan::Plan *into = nullptr;
};

struct CompileResult {
  std::optional<plan::Plan> plan;  // absent: unusable input or an error that blocks lowering
  bool unusable = false;           // the description could not be read or resolved
  int errors = 0;                  // error diagnostics reported, blocking or not
  bool compilerBug = false;        // the plan failed the runtime's validator (not written)
  bool exported = false;           // CompileOptions::into holds the plan
  // Rules judged on the compiled plan (memory.plan-*), by field path, also reported as
  // diagnostics; they do not keep the plan from being written.
  std::vector<Finding> planFindings;
};

// Compiles many deployments on one thread with one MLIR context: loading the dialects and
// uniquing the types and attributes every plan shares costs more than a small compile. Not
// thread safe; use one per thread.
class CompileSession {
public:
  CompileSession();
  ~CompileSession();
  CompileSession(const CompileSession &) = delete;
  CompileSession &operator=(const CompileSession &) = delete;

  // A description's text; `path` names it in diagnostics.
  CompileResult compile(const std::string &text, const std::string &path,
                        const CompileOptions &options = {});
  // A deployment already parsed and edited (search's candidates, a workload point): it has
  // no .textproto, so findings carry field paths but no line.
  CompileResult compile(const desc::Deployment &deployment, const std::string &path,
                        const CompileOptions &options = {});

private:
  CompileResult compileLoaded(const std::string &text, const LoadedDescription &loaded,
                              const std::string &path, const CompileOptions &options);
  std::unique_ptr<mlir::MLIRContext> ctx_;
};

// Loads, imports, runs every stage and exports. Diagnostics (rule findings at their
// .textproto locations, pass errors) go to llvm::errs() with source lines.
CompileResult compileDescriptionFile(const std::string &path, const CompileOptions &options = {});
// The same for a description's text; `path` names it in diagnostics.
CompileResult compileDescription(const std::string &text, const std::string &path,
                                 const CompileOptions &options = {});

// What check adds from compiling the description quietly (CheckOptions::planRules): the
// findings judged on the plan (memory, requirements at each workload point, requirements
// out of the cluster's reach) and the plan's workload points and claims. A description that
// does not lower gives none (compile reports why).
PlanFacts compiledFacts(const std::string &text, const std::string &path, int seqPoints = 3);

// "" when `plan` passes the runtime's validator (planfile::validatePlan), else the report
// compile prints (a compiler bug: the plan is not written, exit status 3).
std::string compiledPlanProblems(const plan::Plan &plan, const std::string &path);

} // namespace moeplan
