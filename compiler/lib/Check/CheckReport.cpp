#include "moeplan/Check/CheckReport.h"
#include "moeplan/Report/Inspect.h"

#include "moeplan/Analysis/DeviceMesh.h"
#include "moeplan/Check/Rules.h"
#include "moeplan/Support/CheckedMath.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace moeplan {

int CheckReport::exitStatus() const {
  if (unusable) return 2;
  return hasErrors(findings) ? 1 : 0;
}

namespace {

// Findings in catalogue order (then as emitted), so output is stable and grouped by rule.
void sortByRule(std::vector<Finding> &findings) {
  auto rank = [](const Finding &f) {
    const auto &cat = ruleCatalog();
    for (size_t i = 0; i < cat.size(); ++i)
      if (f.rule == cat[i].id) return i;
    return cat.size();
  };
  std::stable_sort(findings.begin(), findings.end(),
                   [&](const Finding &a, const Finding &b) { return rank(a) < rank(b); });
}

const char *dtypeName(desc::DType t) {
  switch (t) {
  case desc::FP32: return "fp32";
  case desc::BF16: return "bf16";
  case desc::FP8: return "fp8";
  default: return "fp16";
  }
}

std::string fmt(const char *f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

} // namespace

CheckReport checkDescription(const std::string &text, const std::string &file, int firstLine,
                             const CheckOptions &options) {
  CheckReport r;
  r.start = SourceLocation{file, firstLine, 1};
  LoadedDescription loaded = parseDescription(text, file, firstLine);
  r.findings = loaded.parseErrors;
  r.name = loaded.deployment.name();
  if (hasErrors(loaded.parseErrors)) {
    r.unusable = true;
    return r;
  }
  std::vector<Finding> fieldFindings;
  r.spec = resolveSpec(loaded.deployment, fieldFindings);
  if (!r.spec) {
    r.unusable = true;
  } else {
    const DeploymentSpec &d = *r.spec;
    std::vector<Finding> rules = checkDeployment(d);
    fieldFindings.insert(fieldFindings.end(), rules.begin(), rules.end());
    try {
      r.params = countModelParams(d.model);
      r.activeParams = activeParamsPerToken(d.model);
      r.weights = weightsPerGpu(d.model, d.strategy);
    } catch (const SizeOverflow &) {
      r.params.reset();  // model.size-overflow is among the findings already
      r.weights.clear();
    }
    if (d.strategy.world() <= FieldLimits::kGpus)
      r.stageGpus = DeviceMesh(d.strategy).ranksByStage();
    for (const StagePlacementSpec &p : d.strategy.placement)
      r.placementClaimedGpus += int64_t(p.gpus.size());
    // Repair what the strategy gets wrong; candidates are judged by the strategy rules, so
    // model errors (which no strategy fixes) neither trigger nor block it.
    bool strategyInvalid = false;
    for (const Finding &f : rules)
      if (f.severity == Severity::Error && f.rule.rfind("model.", 0) != 0) strategyInvalid = true;
    if (strategyInvalid && options.repairCount > 0)
      r.repairs = nearestValidStrategies(d, options.repairCount);
    bool lowers = true;
    for (const Finding &f : fieldFindings)
      if (f.severity == Severity::Error && blocksLowering(f.rule)) lowers = false;
    if (options.planRules && lowers) {
      PlanFacts facts = options.planRules(text, d);
      fieldFindings.insert(fieldFindings.end(), facts.findings.begin(), facts.findings.end());
      r.plan = std::move(facts.plan);
    }
  }
  locateFindings(fieldFindings, loaded.locations);
  r.findings.insert(r.findings.end(), fieldFindings.begin(), fieldFindings.end());
  sortByRule(r.findings);
  return r;
}

std::vector<CheckReport> checkFile(const std::string &path, bool split,
                                   const CheckOptions &options) {
  std::string error;
  std::optional<std::string> text;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    error = path + ": is a directory, not a description file";
  else
    text = readFile(path, error);
  if (!text) {
    CheckReport r;
    r.start = SourceLocation{path, 0, 0};
    r.unusable = true;
    Finding f;
    f.rule = "syntax";
    f.message = error;
    f.location = r.start;
    r.findings.push_back(f);
    return {r};
  }
  std::vector<CheckReport> reports;
  if (!split) {
    reports.push_back(checkDescription(*text, path, 1, options));
  } else {
    for (const InputChunk &c : splitInputFile(*text))
      reports.push_back(checkDescription(c.text, path, c.firstLine, options));
  }
  return reports;
}

std::string renderText(const CheckReport &r) {
  std::ostringstream o;
  std::string name = r.name.empty() ? "(unnamed)" : r.name;
  o << "deployment " << name << " at " << r.start.str() << "\n";
  for (const Finding &f : r.findings)
    o << f.location.str() << ": " << severityName(f.severity) << ": [" << f.rule << "] "
      << f.message << "\n";
  if (r.unusable) {
    o << "the description cannot be used until the errors above are fixed\n";
    return o.str();
  }
  const DeploymentSpec &d = *r.spec;
  const StrategySpec &s = d.strategy;

  o << "\nGPUs\n";
  o << "  cluster    " << d.cluster.gpus() << " (" << d.cluster.nodes << " node"
    << (d.cluster.nodes == 1 ? "" : "s") << " x " << d.cluster.gpusPerNode << ")\n";
  o << "  strategy   " << s.world() << " = tp " << s.tp << " x pp " << s.pp << " x dp " << s.dp;
  if (d.model.moeLayerCount() > 0) {
    o << "; experts: expert_tp " << s.expertTp << " x ep " << s.ep << " x edp ";
    if (s.expertDp() > 0) o << s.expertDp(); else o << "(does not fold)";
    o << " x pp " << s.pp;
  }
  o << "\n";
  if (!s.placement.empty())
    o << "  placement  " << r.placementClaimedGpus << " claimed over " << s.placement.size()
      << " stage" << (s.placement.size() == 1 ? "" : "s") << "\n";
  if (s.world() < d.cluster.gpus())
    o << "  idle       " << d.cluster.gpus() - s.world() << " (GPUs " << s.world() << "-"
      << d.cluster.gpus() - 1 << ")\n";

  if (r.params) {
    const ParamBreakdown &p = *r.params;
    o << "\nParameters, derived from the dimensions: " << formatCount(double(p.total()))
      << " (" << p.total() << "), " << formatCount(double(r.activeParams))
      << " active per token\n";
    std::vector<std::pair<const char *, int64_t>> rows = {
        {"attention", p.attention}, {"router", p.router},     {"experts", p.experts},
        {"dense FFN", p.denseFfn},  {"norms", p.norms},       {"embedding", p.embedding},
        {"LM head", p.lmHead}};
    if (p.sharedExperts) rows.insert(rows.begin() + 3, {"shared exp", p.sharedExperts});
    for (auto [label, v] : rows) {
      char line[128];
      std::snprintf(line, sizeof line, "  %-10s %10s  %5.1f%%\n", label,
                    formatCount(double(v)).c_str(), 100.0 * double(v) / double(p.total()));
      o << line;
    }
    if (d.model.declaredParams)
      o << "  declared   " << formatCount(*d.model.declaredParams) << " ("
        << fmt("%+.1f%%", 100.0 * (*d.model.declaredParams - double(p.total())) /
                              double(p.total()))
        << " against the derived count)\n";
  }

  if (!r.weights.empty()) {
    o << "\nWeights per GPU (" << dtypeName(d.model.dtype) << ", " << d.model.bytesPerParam()
      << " bytes per parameter; capacity " << formatBytes(d.cluster.memoryBytes) << ")\n";
    for (const StageWeights &w : r.weights) {
      o << "  stage " << w.stage << "  layers " << w.firstLayer << "-" << w.lastLayer;
      if (size_t(w.stage) < r.stageGpus.size())
        o << "  GPUs " << formatIdRanges(r.stageGpus[w.stage]);
      o << "  " << formatCount(double(w.perGpu.total())) << " parameters  "
        << formatBytes(w.bytesPerGpu) << " ("
        << fmt("%.1f%%", 100.0 * w.bytesPerGpu / d.cluster.memoryBytes) << " of capacity)\n";
    }
  }

  const RequirementsSpec &q = d.requirements;
  if (q.maxMemoryPerGpuGb && !r.weights.empty()) {
    double worst = 0;
    for (const StageWeights &w : r.weights) worst = std::max(worst, w.bytesPerGpu);
    o << "\nRequirements\n  memory per GPU below " << formatNumber(*q.maxMemoryPerGpuGb)
      << " GB: weights alone take " << formatBytes(worst)
      << " on the fullest GPU (activations, KV cache and buffers come from the compiled plan)\n";
  }
  if (r.plan) {
    o << "\n" << report::renderWorkloadPoints(*r.plan);
    if (r.plan->claims_size() > 0) o << "\n" << report::renderClaims(*r.plan);
  } else {
    o << "  requirements on memory, time, load balance or utilization: judged on the compiled "
         "plan, once no error blocks lowering\n";
  }

  if (!r.repairs.empty()) {
    o << "\nNearest valid strategies on this cluster (" << d.cluster.gpus() << " GPUs)\n";
    for (const RepairCandidate &c : r.repairs) {
      o << "  " << c.strategy.str() << "  weights " << formatBytes(c.maxWeightsBytesPerGpu)
        << "/GPU  changes:";
      for (size_t i = 0; i < c.changes.size(); ++i) o << (i ? ", " : " ") << c.changes[i];
      if (c.changes.empty()) o << " none";
      if (c.warnings) o << "  (" << c.warnings << " warning" << (c.warnings > 1 ? "s" : "") << ")";
      o << "\n";
    }
  }
  int errors = 0, warnings = 0;
  for (const Finding &f : r.findings) {
    errors += f.severity == Severity::Error;
    warnings += f.severity == Severity::Warning;
  }
  o << "\n" << errors << " error" << (errors == 1 ? "" : "s") << ", " << warnings << " warning"
    << (warnings == 1 ? "" : "s") << "\n";
  return o.str();
}

nlohmann::json toJson(const CheckReport &r) {
  using nlohmann::json;
  json j;
  j["file"] = r.start.file;
  j["line"] = r.start.line;
  j["exit_status"] = r.exitStatus();
  j["usable"] = !r.unusable;
  j["name"] = r.name;
  json findings = json::array();
  for (const Finding &f : r.findings) {
    json jf{{"rule", f.rule},
            {"severity", severityName(f.severity)},
            {"message", f.message},
            {"field", f.fieldPath},
            {"location", {{"file", f.location.file},
                          {"line", f.location.line},
                          {"column", f.location.column}}}};
    json values = json::object();
    for (const FindingValue &v : f.values) values[v.name] = v.value;
    jf["values"] = values;
    findings.push_back(jf);
  }
  j["findings"] = findings;
  if (!r.spec) return j;
  const DeploymentSpec &d = *r.spec;
  const StrategySpec &s = d.strategy;
  j["gpus"] = {{"cluster", d.cluster.gpus()},
               {"strategy", s.world()},
               {"idle", std::max<int64_t>(0, d.cluster.gpus() - s.world())},
               {"placement_claimed", r.placementClaimedGpus}};
  j["strategy"] = {{"tp", s.tp}, {"pp", s.pp}, {"dp", s.dp}, {"ep", s.ep},
                   {"expert_tp", s.expertTp}, {"expert_dp", s.expertDp()},
                   {"micro_batches", s.microBatches},
                   {"overlap", desc::Overlap_Name(s.overlap)}};
  if (r.params) {
    const ParamBreakdown &p = *r.params;
    j["parameters"] = {{"total", p.total()},       {"active_per_token", r.activeParams},
                       {"attention", p.attention}, {"router", p.router},
                       {"experts", p.experts},     {"dense_ffn", p.denseFfn},
                       {"norms", p.norms},         {"embedding", p.embedding},
                       {"lm_head", p.lmHead}};
    if (p.sharedExperts) j["parameters"]["shared_experts"] = p.sharedExperts;
    if (d.model.declaredParams) j["parameters"]["declared"] = *d.model.declaredParams;
  }
  json stages = json::array();
  for (const StageWeights &w : r.weights) {
    json js{{"stage", w.stage},
            {"first_layer", w.firstLayer},
            {"last_layer", w.lastLayer},
            {"parameters_per_gpu", w.perGpu.total()},
            {"bytes_per_gpu", w.bytesPerGpu},
            {"capacity_bytes", d.cluster.memoryBytes}};
    if (size_t(w.stage) < r.stageGpus.size()) js["gpus"] = r.stageGpus[w.stage];
    stages.push_back(js);
  }
  j["weights_per_gpu"] = stages;
  json repairs = json::array();
  for (const RepairCandidate &c : r.repairs)
    repairs.push_back({{"tp", c.strategy.tp}, {"pp", c.strategy.pp}, {"dp", c.strategy.dp},
                       {"ep", c.strategy.ep}, {"expert_tp", c.strategy.expertTp},
                       {"micro_batches", c.strategy.microBatches}, {"distance", c.distance},
                       {"changes", c.changes}, {"warnings", c.warnings},
                       {"max_weights_bytes_per_gpu", c.maxWeightsBytesPerGpu}});
  j["repairs"] = repairs;
  if (r.plan) {
    j["workload_points"] = report::workloadPointsJson(*r.plan);
    j["claims"] = report::claimsJson(*r.plan);
  }
  return j;
}

} // namespace moeplan
