#include "moeplan/Compiler/Pipeline.h"
#include "moeplan/Compiler/Export.h"
#include "moeplan/Compiler/Import.h"
#include "moeplan/Check/Rules.h"
#include "moeplan/Compiler/Passes.h"
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

std::vector<Finding> compiledPlanFindings(const std::string &text, const std::string &path) {
  CompileOptions quiet;
  quiet.printDiagnostics = false;
  return compileDescription(text, path, quiet).planFindings;
}

std::string compiledPlanProblems(const plan::Plan &plan, const std::string &path) {
  std::vector<planfile::PlanError> broken = planfile::validatePlan(plan);
  if (broken.empty()) return "";
  return "moeplan: internal error: the compiled plan breaks the plan's rules; this is a bug "
         "of moeplan compile, please report it with the description:\n" +
         planfile::formatErrors(path + " (compiled)", broken);
}

namespace {

// The compiled plan's memory per GPU (the largest arena: every buffer the GPU holds at once)
// against the GPU and the requirement. check can only bound it from below by the weights
// (memory.weights-*); the plan knows activations, KV cache and communication buffers too.
std::vector<Finding> planMemoryFindings(const plan::Plan &plan, const DeploymentSpec &spec) {
  uint64_t arena = 0;
  uint32_t stage = 0;
  for (const plan::Program &program : plan.programs())
    if (program.arena_bytes() > arena) arena = program.arena_bytes(), stage = program.stage();
  std::vector<Finding> findings;
  auto emit = [&](const char *rule, const char *field, double limit, const std::string &what) {
    const RuleInfo *info = findRule(rule);
    Finding f;
    f.rule = rule;
    f.severity = info ? info->severity : Severity::Error;
    f.fieldPath = field;
    f.message = "the plan needs " + formatBytes(double(arena)) + " on each GPU of stage " +
                std::to_string(stage) + " (weights, activations, KV cache, communication " +
                "buffers), more than " + what + " " + formatBytes(limit);
    f.values = {{"plan_bytes", double(arena)}, {"limit_bytes", limit}};
    findings.push_back(std::move(f));
  };
  if (double(arena) > spec.cluster.memoryBytes)
    emit("memory.plan-capacity", "cluster.gpu.memory_gb", spec.cluster.memoryBytes,
         "the GPU's");
  if (spec.requirements.maxMemoryPerGpuGb &&
      double(arena) > *spec.requirements.maxMemoryPerGpuGb * 1e9)
    emit("memory.plan-requirement", "requirements.max_memory_per_gpu_gb",
         *spec.requirements.maxMemoryPerGpuGb * 1e9, "the required");
  return findings;
}

} // namespace

CompileResult compileDescription(const std::string &text, const std::string &path,
                                 const CompileOptions &options) {
  CompileResult result;
  DialectRegistry registry;
  registerCompilerDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
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

  LoadedDescription loaded = parseDescription(text, path, 1);
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
  plan::Plan out;
  if (failed(exportPlan(*module, out))) return result;
  // The plan must pass the runtime's own validator: one that does not is the compiler's
  // bug, reported as such rather than written for moeplan-run to refuse later.
  if (std::string problems = compiledPlanProblems(out, path); !problems.empty()) {
    llvm::errs() << problems;
    result.compilerBug = true;
    return result;
  }
  // Errors, located at their fields; the plan is still written (it is what was asked for).
  result.planFindings = planMemoryFindings(out, *spec);
  std::vector<Finding> located = result.planFindings;
  locateFindings(located, loaded.locations);
  for (const Finding &f : located) emitFinding(&ctx, f);
  result.plan = std::move(out);
  return result;
}

} // namespace moeplan
