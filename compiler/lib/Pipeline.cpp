#include "moeplan/Compiler/Pipeline.h"
#include "moeplan/Compiler/Export.h"
#include "moeplan/Compiler/Import.h"
#include "moeplan/Check/Rules.h"
#include "moeplan/Compiler/Passes.h"
#include "moeplan/Compiler/Workload.h"
#include "moeplan/Report/Inspect.h"
#include "moeplan/Simulate/Simulator.h"
#include "moeplan/Plan/PlanFile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/SourceMgr.h"
#include "mlir/IR/Diagnostics.h"

using namespace mlir;

namespace moeplan {

void registerCompilerDialects(DialectRegistry &registry) {
  registry.insert<model::ModelDialect, planir::PlanDialect, func::FuncDialect>();
}

void buildModelStage(OpPassManager &pm) { pm.addPass(createModelValidate()); }
void buildShardedStage(OpPassManager &pm) {
  pm.addPass(createModelShard());
  pm.addPass(createModelPipelinePartition());
}
void buildPlanStage(OpPassManager &pm) {
  pm.addPass(createModelToPlan());
  pm.addPass(createPlanSchedule());
  pm.addPass(createPlanMemory());
  pm.addPass(createPlanCost());
}

void registerCompilerPasses() {
  registerMoeplanPasses();
  PassPipelineRegistration<>("moeplan-compile", "every stage from model-validate to plan-cost",
                             [](OpPassManager &pm) {
                               buildModelStage(pm);
                               buildShardedStage(pm);
                               buildPlanStage(pm);
                             });
}

CompileResult compileDescriptionFile(const std::string &path, const CompileOptions &options) {
  std::string error;
  std::optional<std::string> text = readFile(path, error);
  if (!text) {
    llvm::errs() << "moeplan: error: " << error << "\n";
    CompileResult result;
    result.unusable = true;
    return result;
  }
  return compileDescription(*text, path, options);
}

CompileResult compileDescription(const std::string &text, const std::string &path,
                                 const CompileOptions &options) {
  CompileSession session;
  return session.compile(text, path, options);
}

PlanFacts compiledFacts(const std::string &text, const std::string &path, int seqPoints) {
  CompileOptions quiet;
  quiet.printDiagnostics = false;
  quiet.seqPoints = seqPoints;
  CompileResult r = compileDescription(text, path, quiet);
  PlanFacts facts;
  facts.findings = std::move(r.planFindings);
  if (r.plan) {
    // What the report shows: the plan's header, workload points and claims.
    facts.plan = std::move(*r.plan);
    facts.plan->clear_programs();
    facts.plan->clear_ranks();
    facts.plan->clear_groups();
  }
  return facts;
}

std::string compiledPlanProblems(const plan::Plan &plan, const std::string &path) {
  std::vector<planfile::PlanError> broken = planfile::validatePlan(plan);
  if (broken.empty()) return "";
  return "moeplan: internal error: the compiled plan breaks the plan's rules; this is a bug "
         "of moeplan compile, please report it with the description:\n" +
         planfile::formatErrors(path + " (compiled)", broken);
}

CompileSession::CompileSession() {
  DialectRegistry registry;
  registerCompilerDialects(registry);
  ctx_ = std::make_unique<MLIRContext>(registry, MLIRContext::Threading::DISABLED);
  ctx_->loadAllAvailableDialects();
}

CompileSession::~CompileSession() = default;

CompileResult CompileSession::compile(const std::string &text, const std::string &path,
                                      const CompileOptions &options) {
  return compileLoaded(text, parseDescription(text, path, 1), path, options);
}

CompileResult CompileSession::compile(const desc::Deployment &deployment, const std::string &path,
                                      const CompileOptions &options) {
  LoadedDescription loaded;
  loaded.deployment = deployment;
  loaded.locations.setFile(path, 1);
  return compileLoaded("", loaded, path, options);
}

CompileResult CompileSession::compileLoaded(const std::string &text,
                                            const LoadedDescription &loaded,
                                            const std::string &path,
                                            const CompileOptions &options) {
  CompileResult result;
  MLIRContext &ctx = *ctx_;
  llvm::SourceMgr sources;
  sources.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, path), llvm::SMLoc());
  std::optional<SourceMgrDiagnosticHandler> diagnostics;
  if (options.printDiagnostics) diagnostics.emplace(sources, &ctx);
  // Counts errors on the way to the printer (or instead of it).
  ScopedDiagnosticHandler counter(&ctx, [&](Diagnostic &d) {
    if (d.getSeverity() == DiagnosticSeverity::Error) ++result.errors;
    // Not handled: the source manager handler prints it; quiet, nothing does.
    return options.printDiagnostics ? failure() : success();
  });

  std::vector<Finding> findings = loaded.parseErrors;
  std::optional<DeploymentSpec> spec;
  if (!hasErrors(findings)) spec = resolveSpec(loaded.deployment, findings);
  if (!spec) {
    // Unusable: the field findings are all there is to say (model-validate says the rest).
    locateFindings(findings, loaded.locations);
    for (const Finding &f : findings) emitFinding(&ctx, f);
    result.unusable = true;
    return result;
  }
  OwningOpRef<ModuleOp> module = importDeployment(&ctx, loaded, *spec);
  auto stage = [&](const char *name, void (*build)(OpPassManager &)) {
    PassManager pm(&ctx);
    pm.enableVerifier(options.verifyEachPass);
    build(pm);
    if (failed(pm.run(*module))) return false;
    if (options.emit.count(name)) {
      OpPrintingFlags flags;
      module->print(*options.emitStream, flags);
      *options.emitStream << "\n";
    }
    return true;
  };
  if (!stage("model", buildModelStage) || !stage("sharded", buildShardedStage) ||
      !stage("plan", buildPlanStage))
    return result;
  // The caller's message (search: on an arena, freed at once), or this compile's.
  if (options.into && options.judgeWorkload) return result;
  plan::Plan local;
  plan::Plan &out = options.into ? *options.into : local;
  if (failed(exportPlan(*module, out))) return result;
  module = nullptr;  // the next compile of this session reuses the context, not the module
  // The plan must pass the runtime's own validator: one that does not is the compiler's
  // bug, reported as such rather than written for moeplan-run to refuse later.
  if (std::string problems = options.validatePlan ? compiledPlanProblems(out, path) : "";
      !problems.empty()) {
    llvm::errs() << problems;
    result.compilerBug = true;
    return result;
  }
  if (!options.judgeWorkload) {
    if (options.into) result.exported = true;
    else result.plan = std::move(out);
    return result;
  }

  // The workload: the same deployment at each judged sequence length (this plan is the
  // maximum's), every requirement at each, what the cluster cannot reach, the claims.
  CompileOptions pointOptions;
  pointOptions.printDiagnostics = false;
  pointOptions.judgeWorkload = false;
  const std::vector<int64_t> points = spec->workload.seqPoints(options.seqPoints);
  try {
    for (int64_t len : points) {
      if (len == int64_t(out.workload().seq_len())) {
        *out.add_workload_points() = report::workloadPoint(out, sim::simulate(out));
        continue;
      }
      CompileResult at = compile(atSeqLen(loaded.deployment, len), path, pointOptions);
      if (!at.plan) {
        llvm::errs() << "moeplan: internal error: " << path << " compiles at "
                     << spec->workload.seqLenMax << " tokens per sequence but not at " << len
                     << "; this is a bug of moeplan compile, please report it\n";
        result.compilerBug = true;
        return result;
      }
      *out.add_workload_points() = report::workloadPoint(*at.plan, sim::simulate(*at.plan));
    }
  } catch (const std::exception &e) {  // the simulator refuses a plan the validator passed
    llvm::errs() << "moeplan: internal error: the compiled plan cannot be simulated: " << e.what()
                 << "; this is a bug of moeplan compile, please report it\n";
    result.compilerBug = true;
    return result;
  }
  result.planFindings = requirementFindings(out);
  std::optional<double> cf = spec->strategy.capacityFactor;
  if (auto bounds = workloadBounds(*this, loaded.deployment, *spec, points, cf)) {
    std::vector<Finding> unreachable = reachabilityFindings(*spec, *bounds);
    result.planFindings.insert(result.planFindings.end(), unreachable.begin(), unreachable.end());
  }
  for (plan::ClaimCheck &c : judgeClaims(*spec, out)) *out.add_claims() = std::move(c);
  // Errors, located at their fields; the plan is still written (it is what was asked for).
  std::vector<Finding> located = result.planFindings;
  locateFindings(located, loaded.locations);
  for (const Finding &f : located) emitFinding(&ctx, f);
  result.plan = std::move(out);
  return result;
}

} // namespace moeplan
