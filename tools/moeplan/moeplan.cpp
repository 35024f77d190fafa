// moeplan: the command line. Subcommands are thin: parse flags, call the library, print.
#include "moeplan/Check/CheckReport.h"
#include "moeplan/Check/Rules.h"
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Report/Calibration.h"
#include "moeplan/Report/Diff.h"
#include "moeplan/Report/Html.h"
#include "moeplan/Report/Inspect.h"
#include "moeplan/Compiler/Pipeline.h"
#include "moeplan/Description/ImportHf.h"
#include "moeplan/Description/Load.h"
#include "moeplan/Search/Search.h"
#include "moeplan/Runtime/InitWeights.h"
#include "moeplan/Support/Files.h"
#include "moeplan/Support/Progress.h"

#include <CLI/CLI.hpp>
#include <google/protobuf/text_format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include <unistd.h>

namespace {

int runCheck(const std::vector<std::string> &files, bool json, bool split, size_t repairs,
             int seqPoints) {
  moeplan::CheckOptions options;
  options.repairCount = repairs;
  // A description that lowers is compiled too: its plan's memory, its requirements at each
  // point of the workload and its claims are judged with the rest.
  options.planRules = [seqPoints](const std::string &text, const moeplan::DeploymentSpec &) {
    return moeplan::compiledFacts(text, "check", seqPoints);
  };
  int status = 0;
  nlohmann::json all = nlohmann::json::array();
  for (const std::string &file : files) {
    for (const moeplan::CheckReport &r : moeplan::checkFile(file, split, options)) {
      status = std::max(status, r.exitStatus());
      if (json)
        all.push_back(moeplan::toJson(r));
      else
        std::cout << moeplan::renderText(r) << (split ? "\n" : "");
    }
  }
  if (json) std::cout << nlohmann::json{{"deployments", all}, {"exit_status", status}}.dump(2) << "\n";
  return status;
}

int runRules(bool json) {
  nlohmann::json all = nlohmann::json::array();
  for (const moeplan::RuleInfo &r : moeplan::ruleCatalog()) {
    if (json)
      all.push_back({{"rule", r.id}, {"severity", moeplan::severityName(r.severity)},
                     {"statement", r.statement}});
    else
      std::cout << r.id << " (" << moeplan::severityName(r.severity) << "): " << r.statement
                << "\n";
  }
  if (json) std::cout << all.dump(2) << "\n";
  return 0;
}

int runCompile(const std::string &file, const std::string &output,
               const std::vector<std::string> &emit, int seqPoints, bool quiet) {
  moeplan::CompileOptions options;
  options.emit.insert(emit.begin(), emit.end());
  options.seqPoints = seqPoints;
  moeplan::CompileResult result = moeplan::compileDescriptionFile(file, options);
  if (result.unusable) return 2;
  if (result.compilerBug) return 3;
  if (!result.plan) return 1;
  std::string error;
  if (!output.empty() && !moeplan::planfile::writePlanFile(*result.plan, output, error)) {
    std::cerr << "moeplan: error: " << error << "\n";
    return 2;
  }
  // The workload as the plan predicts it (what inspect prints too), unless MLIR was asked for.
  if (!quiet && emit.empty()) {
    std::cout << moeplan::report::renderWorkloadPoints(*result.plan);
    if (result.plan->claims_size() > 0)
      std::cout << "\n" << moeplan::report::renderClaims(*result.plan);
  }
  return result.errors > 0 ? 1 : 0;
}

// Compiles the description (its strategy decides nothing about the weights' full shapes) and
// writes every weight the plan names.
int runInitWeights(const std::string &file, const std::string &output, uint64_t seed,
                   const std::string &dtype) {
  moeplan::CompileResult result = moeplan::compileDescriptionFile(file, moeplan::CompileOptions{});
  if (result.unusable) return 2;
  if (result.compilerBug) return 3;
  if (!result.plan) return 1;
  try {
    moeplan::runtime::initWeights(*result.plan, seed, *moeplan::checkpoint::parseDType(dtype))
        .write(output);
  } catch (const std::exception &e) {
    std::cerr << "moeplan: error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

// Writes the description of a Hugging Face model directory (its config.json), with the rest
// of the deployment taken from `baseFile` when given.
int runImportHf(const std::string &dir, const std::string &baseFile, const std::string &output) {
  std::optional<moeplan::desc::Deployment> base;
  if (!baseFile.empty()) {
    std::string error;
    std::optional<std::string> text = moeplan::readFile(baseFile, error);
    if (!text) {
      std::cerr << "moeplan: error: " << error << "\n";
      return 2;
    }
    moeplan::LoadedDescription loaded = moeplan::parseDescription(*text, baseFile);
    if (!loaded.parseErrors.empty()) {
      for (const moeplan::Finding &f : loaded.parseErrors)
        std::cerr << f.location.str() << ": error: [" << f.rule << "] " << f.message << "\n";
      return 2;
    }
    base = loaded.deployment;
  }
  moeplan::HfImport imported = moeplan::importHf(dir, base ? &*base : nullptr);
  for (const moeplan::Finding &f : imported.errors)
    std::cerr << f.location.str() << ": error: [" << f.rule << "] " << f.message << "\n";
  if (!imported.deployment) return 1;
  const std::string text = moeplan::formatImportedDescription(imported, dir, baseFile);
  if (output.empty() || output == "-") {
    std::cout << text;
    return 0;
  }
  try {
    moeplan::files::writeAtomically(output, text);
  } catch (const moeplan::files::WriteError &e) {
    std::cerr << "moeplan: error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

// Reads a plan for inspect and diff; on failure prints one error line per problem.
std::optional<moeplan::plan::Plan> loadPlan(const std::string &file) {
  std::vector<moeplan::planfile::PlanError> errors;
  std::optional<moeplan::plan::Plan> p = moeplan::planfile::readPlanFile(file, errors);
  if (!p) {
    std::istringstream lines(moeplan::planfile::formatErrors(file, errors));
    for (std::string line; std::getline(lines, line);)
      std::cerr << "moeplan: error: " << line << "\n";
  }
  return p;
}

struct InspectOptions {
  std::string plan, traceFile, expertLoad, measured;
  uint32_t rank = 0;
  CLI::Option *rankGiven = nullptr;
  bool json = false;
};

CLI::App *addInspectCommand(CLI::App &app, InspectOptions &o) {
  CLI::App *inspect = app.add_subcommand(
      "inspect", "Summarise a compiled plan per GPU: memory, kernels, collectives, the simulated\n"
                 "prediction and the requirements. Exit status: 0, or 2 for an unusable plan.");
  inspect->add_option("PLAN", o.plan, "compiled plan (binary protobuf)")->required();
  o.rankGiven = inspect->add_option("--rank", o.rank, "list every instruction rank N runs instead");
  inspect->add_flag("--json", o.json, "print JSON");
  inspect->add_option("--trace", o.traceFile,
                      "write the simulated timeline to FILE (Chrome/Perfetto trace JSON)");
  inspect->add_option("--expert-load", o.expertLoad,
                      "predict routing from the per-layer expert loads a moeplan-run report\n"
                      "measured (--report-json) instead of the plan's");
  inspect->add_option("--measured", o.measured,
                      "compare the prediction with a moeplan-run report of this plan\n"
                      "(--report-json): time per kernel kind, per collective, per rank");
  return inspect;
}

// A moeplan-run report (--report-json), or nullopt with `error` set.
std::optional<nlohmann::json> readJsonFile(const std::string &path, std::string &error) {
  std::optional<std::string> text = moeplan::readFile(path, error);
  if (!text) return std::nullopt;
  nlohmann::json report = nlohmann::json::parse(*text, nullptr, false);
  if (report.is_discarded()) {
    error = "not JSON";
    return std::nullopt;
  }
  return report;
}

int runInspect(const InspectOptions &o) {
  std::optional<moeplan::plan::Plan> p = loadPlan(o.plan);
  if (!p) return 2;
  if (!o.expertLoad.empty()) {
    std::string error;
    moeplan::report::MeasuredRouting measured;
    if (std::optional<nlohmann::json> report = readJsonFile(o.expertLoad, error))
      measured = moeplan::report::routingFromRunReport(*p, *report, error);
    if (measured.expertLoad.empty()) {
      std::cerr << "moeplan: error: --expert-load " << o.expertLoad << ": " << error << "\n";
      return 2;
    }
    moeplan::plan::Model &model = *p->mutable_model();
    model.clear_expert_load();
    for (double v : measured.expertLoad) model.add_expert_load(v);
    model.clear_routing_stickiness();
    for (double v : measured.stickiness) model.add_routing_stickiness(v);
    for (int64_t layer : measured.unfitted)
      std::cerr << "moeplan: note: --expert-load " << o.expertLoad << ": layer " << layer
                << " has no dispatch geometry (a generation, or an older report): its drops "
                   "cannot be fitted, stickiness 0\n";
  }
  try {
    if (o.rankGiven->count() > 0) {
      if (o.json)
        std::cout << moeplan::report::rankJson(*p, o.rank).dump(2) << "\n";
      else
        std::cout << moeplan::report::renderRankText(*p, o.rank);
    }
    if (o.rankGiven->count() > 0 && o.traceFile.empty()) return 0;
    moeplan::sim::Prediction prediction = moeplan::sim::simulate(*p);
    if (!o.traceFile.empty()) {
      try {
        moeplan::files::writeAtomically(o.traceFile, moeplan::report::renderTraceJson(*p, prediction));
      } catch (const moeplan::files::WriteError &e) {
        std::cerr << "moeplan: error: " << e.what() << "\n";
        return 2;
      }
    }
    if (o.rankGiven->count() > 0) return 0;
    std::optional<moeplan::report::MeasuredComparison> measured;
    if (!o.measured.empty()) {
      std::string error;
      if (std::optional<nlohmann::json> report = readJsonFile(o.measured, error))
        measured = moeplan::report::compareWithMeasured(*p, prediction, *report, error);
      if (!error.empty()) {
        std::cerr << "moeplan: error: --measured " << o.measured << ": " << error << "\n";
        return 2;
      }
    }
    moeplan::report::InspectReport r = moeplan::report::inspectPlan(*p, std::move(prediction));
    if (o.json) {
      nlohmann::json j = moeplan::report::inspectJson(r);
      j["workload_points"] = moeplan::report::workloadPointsJson(*p);
      j["claims"] = moeplan::report::claimsJson(*p);
      if (measured) j["measured"] = moeplan::report::measuredJson(*measured);
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << moeplan::report::renderInspectText(r);
      if (p->workload_points_size() > 0)
        std::cout << "\n" << moeplan::report::renderWorkloadPoints(*p);
      if (p->claims_size() > 0) std::cout << "\n" << moeplan::report::renderClaims(*p);
      if (measured) std::cout << "\n" << moeplan::report::renderMeasured(*measured);
    }
  } catch (const std::out_of_range &e) {
    std::cerr << "moeplan: error: --rank " << o.rank << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception &e) {  // a plan the simulator cannot run
    std::cerr << "moeplan: error: " << o.plan << ": " << e.what() << "\n";
    return 2;
  }
  return 0;
}

struct SearchCommand {
  std::string file, writeBest, objective;  // empty: search::defaultObjective
  int seqPoints = 3;
  unsigned threads = 0;
  size_t listed = 5;
  bool json = false, noPrune = false;
};

CLI::App *addSearchCommand(CLI::App &app, SearchCommand &o) {
  CLI::App *search = app.add_subcommand(
      "search", "Find the best parallel strategy for a deployment's model on its cluster: every\n"
                "strategy compiled and simulated over the workload, judged against the\n"
                "requirements. Exit status: 0 a strategy meets every requirement; 1 none does\n"
                "(the closest are listed) or some requirement cannot hold on the cluster;\n"
                "2 unusable input.");
  search->add_option("DESC", o.file, "deployment description (its strategy gives defaults)")
      ->required();
  search->add_option("--objective", o.objective,
                     "throughput (per GPU; the default), latency or memory (per GPU); for a\n"
                     "GENERATE workload also ttft, tpot (p99 step) or decode-throughput (per\n"
                     "GPU; its default)")
      ->check(CLI::IsMember({"throughput", "latency", "memory", "ttft", "tpot",
                             "decode-throughput"}));
  search->add_option("--seq-points", o.seqPoints,
                     "sequence lengths of a seq_len_range to judge (default 3)")
      ->check(CLI::Range(1, 64));
  search->add_option("--threads", o.threads, "threads evaluating candidates (default: all)");
  search->add_option("--list", o.listed, "strategies listed per section (default 5)");
  search->add_flag("--no-prune", o.noPrune, "compile every valid candidate (no bound prunes)");
  search->add_flag("--json", o.json, "print JSON");
  search->add_option("--write-best", o.writeBest,
                     "write the best strategy as a complete description to FILE");
  return search;
}

int runSearch(const SearchCommand &o) {
  std::string error;
  std::optional<std::string> text = moeplan::readFile(o.file, error);
  if (!text) {
    std::cerr << "moeplan: error: " << error << "\n";
    return 2;
  }
  moeplan::LoadedDescription loaded = moeplan::parseDescription(*text, o.file, 1);
  std::vector<moeplan::Finding> findings = loaded.parseErrors;
  std::optional<moeplan::DeploymentSpec> spec;
  if (!moeplan::hasErrors(findings)) spec = moeplan::resolveSpec(loaded.deployment, findings);
  if (!spec) {
    moeplan::locateFindings(findings, loaded.locations);
    for (const moeplan::Finding &f : findings)
      if (f.severity == moeplan::Severity::Error)
        std::cerr << f.location.str() << ": error: [" << f.rule << "] " << f.message << "\n";
    return 2;
  }
  // The model alone must be sound: no strategy fixes a model error.
  std::vector<moeplan::Finding> model;
  moeplan::checkModel(*spec, model);
  bool modelBroken = false;
  for (moeplan::Finding &f : model)
    if (f.severity == moeplan::Severity::Error && f.rule != "model.params-declared") {
      moeplan::locateFindings(model, loaded.locations);
      std::cerr << f.location.str() << ": error: [" << f.rule << "] " << f.message << "\n";
      modelBroken = true;
    }
  if (modelBroken) return 1;
  moeplan::search::SearchOptions options;
  options.objective = o.objective.empty()
                          ? moeplan::search::defaultObjective(spec->workload)
                          : *moeplan::search::parseObjective(o.objective);  // CLI checked it
  options.seqPoints = o.seqPoints;
  options.threads = o.threads;
  options.prune = !o.noPrune;
  options.listed = o.listed;
  moeplan::search::SearchResult r;
  {
    moeplan::ProgressLine line("search", "strategies");
    options.progress = line.callback();
    r = moeplan::search::searchStrategies(loaded.deployment, *spec, options);
    options.progress = nullptr;  // the line goes here, before the results print
  }
  if (!r.refused.empty()) {
    std::cerr << "moeplan: error: " << o.file << ": " << r.refused << "\n";
    return 2;
  }
  if (o.json)
    std::cout << moeplan::search::searchJson(r).dump(2) << "\n";
  else
    std::cout << moeplan::search::renderSearchText(r, options);
  if (!o.writeBest.empty()) {
    if (!r.best) {
      std::cerr << "moeplan: error: --write-best: no strategy meets the requirements the cluster "
                   "can meet; nothing written\n";
      return 1;
    }
    std::string out;
    google::protobuf::TextFormat::Printer printer;
    printer.PrintToString(
        moeplan::search::withStrategy(loaded.deployment, r.candidates[*r.best].strategy), &out);
    try {
      moeplan::files::writeAtomically(
          o.writeBest, "# The best strategy moeplan search found for " + o.file + " (objective " +
                           moeplan::search::objectiveName(options.objective) + ").\n# proto-file: compiler/schema/deployment.proto\n"
                           "# proto-message: moeplan.desc.Deployment\n\n" + out);
    } catch (const moeplan::files::WriteError &e) {
      std::cerr << "moeplan: error: " << e.what() << "\n";
      return 2;
    }
  }
  return r.best && r.unreachable.empty() && r.candidates[*r.best].feasible ? 0 : 1;
}

struct DiffOptions {
  std::vector<std::string> plans;
  std::string html;
  bool json = false;
};

CLI::App *addDiffCommand(CLI::App &app, DiffOptions &o) {
  CLI::App *diff = app.add_subcommand(
      "diff", "Compare two compiled plans: fields, memory and work per stage, communication,\n"
              "prediction, instructions. Exit status: 0 identical, 1 different, 2 unusable plan.");
  diff->add_option("A B", o.plans, "the two plans")->required()->expected(2);
  diff->add_flag("--json", o.json, "print JSON");
  diff->add_option("--html", o.html,
                   "also write the two plans side by side as a self-contained HTML page to FILE");
  return diff;
}

int runDiff(const DiffOptions &o) {
  std::optional<moeplan::plan::Plan> a = loadPlan(o.plans[0]), b = loadPlan(o.plans[1]);
  if (!a || !b) return 2;
  moeplan::report::DiffReport r = moeplan::report::diffPlans(*a, *b);
  if (!o.html.empty()) {
    try {
      moeplan::files::writeAtomically(
          o.html, moeplan::report::renderHtmlDiff(*a, moeplan::sim::simulate(*a), o.plans[0], *b,
                                                  moeplan::sim::simulate(*b), o.plans[1]));
    } catch (const moeplan::files::WriteError &e) {
      std::cerr << "moeplan: error: " << e.what() << "\n";
      return 2;
    } catch (const std::exception &e) {  // a plan the simulator cannot run
      std::cerr << "moeplan: error: " << e.what() << "\n";
      return 2;
    }
  }
  if (o.json)
    std::cout << moeplan::report::diffJson(r).dump(2) << "\n";
  else
    std::cout << moeplan::report::renderDiffText(r, o.plans[0], o.plans[1]);
  return r.exitStatus();
}

// moeplan report: the plan (and a search) as one self-contained HTML page (Report/Html.h).
struct ReportCommand {
  std::string plan, output, measured, trace, search;
};

CLI::App *addReportCommand(CLI::App &app, ReportCommand &o) {
  CLI::App *cmd = app.add_subcommand(
      "report", "Write a plan as one self-contained HTML page (inline SVG, nothing fetched): the\n"
                "device mesh, memory per GPU, the simulated timeline, communication per axis,\n"
                "requirements and claims; with --search, a search's strategies as a plot.\n"
                "Exit status: 0, or 2 for unusable input.");
  cmd->add_option("PLAN", o.plan, "compiled plan (binary protobuf); optional with --search");
  cmd->add_option("-o,--output", o.output, "where to write the page")->required();
  cmd->add_option("--trace", o.trace,
                  "a moeplan-run --trace of this plan: the measured timeline beside the simulated");
  cmd->add_option("--measured", o.measured,
                  "a moeplan-run --report-json of this plan: predicted against measured per "
                  "component");
  cmd->add_option("--search", o.search, "a moeplan search --json: every evaluated strategy plotted");
  return cmd;
}

int runReport(const ReportCommand &o) {
  if (o.plan.empty() && o.search.empty()) {
    std::cerr << "moeplan: error: report: give a PLAN, a --search, or both\n";
    return 2;
  }
  if (o.plan.empty() && (!o.trace.empty() || !o.measured.empty())) {
    std::cerr << "moeplan: error: report: --trace and --measured describe a run of a PLAN; give it\n";
    return 2;
  }
  try {
    moeplan::report::HtmlInputs in;
    std::optional<moeplan::plan::Plan> p;
    std::optional<moeplan::sim::Prediction> prediction;
    std::optional<moeplan::report::MeasuredComparison> comparison;
    std::optional<nlohmann::json> search;
    std::string error;
    if (!o.plan.empty()) {
      p = loadPlan(o.plan);
      if (!p) return 2;
      prediction = moeplan::sim::simulate(*p);
      in.plan = &*p;
      in.prediction = &*prediction;
    }
    if (!o.trace.empty()) {
      if (std::optional<nlohmann::json> trace = readJsonFile(o.trace, error))
        in.measured = moeplan::report::measuredSpans(*p, *trace, error);
      if (!error.empty()) {
        std::cerr << "moeplan: error: --trace " << o.trace << ": " << error << "\n";
        return 2;
      }
    }
    if (!o.measured.empty()) {
      if (std::optional<nlohmann::json> report = readJsonFile(o.measured, error))
        comparison = moeplan::report::compareWithMeasured(*p, *prediction, *report, error);
      if (!error.empty()) {
        std::cerr << "moeplan: error: --measured " << o.measured << ": " << error << "\n";
        return 2;
      }
      in.comparison = &*comparison;
    }
    if (!o.search.empty()) {
      search = readJsonFile(o.search, error);
      if (search) error = moeplan::report::checkSearchJson(*search);
      if (!error.empty()) {
        std::cerr << "moeplan: error: --search " << o.search << ": " << error << "\n";
        return 2;
      }
      in.search = &*search;
    }
    moeplan::files::writeAtomically(o.output, moeplan::report::renderHtmlReport(in));
  } catch (const moeplan::files::WriteError &e) {
    std::cerr << "moeplan: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception &e) {  // a plan the simulator cannot run
    std::cerr << "moeplan: error: " << o.plan << ": " << e.what() << "\n";
    return 2;
  }
  return 0;
}

} // namespace

// moeplan calibrate: runs moeplan-calibrate (beside this executable) under mpirun, or reads
// its measurements, and writes the fitted cluster section (Report/Calibration.h).
struct CalibrateCommand {
  std::string output, mpirun = "mpirun", backend = "cpu", comm = "mpi", measurements, keep;
  int ranks = 2;
  double secondsPerPoint = 0.02;
};

CLI::App *addCalibrateCommand(CLI::App &app, CalibrateCommand &c) {
  CLI::App *cmd = app.add_subcommand(
      "calibrate",
      "Measure this machine (GEMM rates by rows, attention, memory bandwidth, launch overhead,\n"
      "the collectives over 2..N ranks by size) and write it as a deployment description's\n"
      "cluster section, fitted to the cost model's formulas.\n"
      "Exit status: 0 written; 2 unusable command line, measurement or run.");
  cmd->add_option("-o,--output", c.output, "where to write the cluster section")->required();
  cmd->add_option("--ranks", c.ranks,
                  "processes measured at once, one per core or GPU (default 2; 1 measures no "
                  "collectives and describes a one-GPU cluster)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--mpirun", c.mpirun,
                  "the launcher and its options, run by the shell (default mpirun)");
  cmd->add_option("--backend", c.backend, "compute backend measured: cpu (default) or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--comm", c.comm, "communication backend measured: mpi (default) or nccl")
      ->check(CLI::IsMember({"mpi", "nccl"}));
  cmd->add_option("--seconds-per-point", c.secondsPerPoint,
                  "each measurement repeats until it took this long (default 0.02)")
      ->check(CLI::Range(1e-4, 10.0));
  cmd->add_option("--measurements", c.measurements,
                  "fit these measurements (moeplan-calibrate --json) instead of measuring");
  cmd->add_option("--keep-measurements", c.keep, "also write the raw measurements here");
  return cmd;
}

// A word for the shell, single-quoted.
std::string shellQuoted(const std::string &s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

int runCalibrate(const CalibrateCommand &c) {
  std::string json = c.measurements;
  std::filesystem::path temp;
  if (json.empty()) {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::filesystem::path tool = self.parent_path() / "moeplan-calibrate";
    if (ec || !std::filesystem::exists(tool)) {
      std::cerr << "moeplan: error: calibrate: no moeplan-calibrate beside this executable (" << tool.string()
                << ")\n";
      return 2;
    }
    if (c.keep.empty())
      temp = std::filesystem::temp_directory_path() / ("moeplan-calibrate-" + std::to_string(getpid()) + ".json");
    json = c.keep.empty() ? temp.string() : c.keep;
    std::ostringstream cmd;
    cmd << c.mpirun << " -np " << c.ranks << " " << shellQuoted(tool.string()) << " --json "
        << shellQuoted(json) << " --backend " << c.backend << " --comm " << c.comm
        << " --seconds-per-point " << c.secondsPerPoint;
    std::cerr << "moeplan: calibrate: " << cmd.str() << "\n";
    if (const int status = std::system(cmd.str().c_str()); status != 0) {
      std::cerr << "moeplan: error: calibrate: the measurement run failed (status " << status << ")\n";
      return 2;
    }
  }
  std::string error;
  std::optional<nlohmann::json> measured = readJsonFile(json, error);
  if (!temp.empty()) std::filesystem::remove(temp);
  std::optional<moeplan::report::FittedCluster> fitted;
  if (measured) fitted = moeplan::report::fitCluster(*measured, error);
  if (!fitted) {
    std::cerr << "moeplan: error: calibrate: " << json << ": " << error << "\n";
    return 2;
  }
  moeplan::files::writeAtomically(c.output, moeplan::report::renderCluster(*fitted));
  std::cout << moeplan::report::renderCluster(*fitted);
  return 0;
}

int main(int argc, char **argv) {
  CLI::App app{"moeplan: compile, check and run parallel plans for Mixture-of-Experts models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "moeplan 0.1");

  CLI::App *check = app.add_subcommand(
      "check", "Validate a deployment description and report what follows from it.\n"
               "Exit status: 0 clean, 1 error findings, 2 unusable input.");
  std::vector<std::string> files;
  bool json = false, split = false;
  size_t repairs = 3;
  check->add_option("FILE", files, "deployment description(s), protobuf text format")
      ->required();
  check->add_flag("--json", json, "print one JSON document instead of text");
  check->add_flag("--split-input-file", split,
                  "check each chunk between lines '# -----' as its own description");
  check->add_option("--repairs", repairs, "nearest valid strategies to list (0: none)")
      ->check(CLI::Range(0, 100));
  int checkSeqPoints = 3;
  check->add_option("--seq-points", checkSeqPoints,
                    "sequence lengths of a seq_len_range to judge: min, geometric midpoints, "
                    "max (default 3)")
      ->check(CLI::Range(1, 64));

  CLI::App *rules = app.add_subcommand("rules", "List every rule check applies.");
  bool rulesJson = false;
  rules->add_flag("--json", rulesJson, "print JSON");

  CLI::App *compile = app.add_subcommand(
      "compile", "Lower a deployment description to its per-GPU plan (protobuf binary).\n"
                 "Exit status: 0 compiled; 1 errors found (the plan is still written when\n"
                 "none of them blocks lowering); 2 unusable input; 3 the compiled plan\n"
                 "failed the runtime's validator (a compiler bug; nothing written).");
  std::string compileFile, compileOutput;
  std::vector<std::string> emit;
  compile->add_option("DESC", compileFile, "deployment description, protobuf text format")
      ->required();
  compile->add_option("-o,--output", compileOutput, "where to write the plan");
  compile->add_option("--emit", emit, "print the MLIR after these stages")
      ->delimiter(',')
      ->check(CLI::IsMember({"model", "sharded", "plan"}));
  int compileSeqPoints = 3;
  compile->add_option("--seq-points", compileSeqPoints,
                      "sequence lengths of a seq_len_range to judge: min, geometric midpoints, "
                      "max (default 3); the plan is the maximum's")
      ->check(CLI::Range(1, 64));
  bool compileQuiet = false;
  compile->add_flag("-q,--quiet", compileQuiet, "print no workload table");

  CLI::App *initWeights = app.add_subcommand(
      "init-weights", "Write a deterministic random checkpoint (safetensors, unsharded layout)\n"
                      "for the weights of a deployment's model.");
  std::string initFile, initOutput;
  uint64_t initSeed = 0;
  initWeights->add_option("DESC", initFile, "deployment description, protobuf text format")
      ->required();
  initWeights->add_option("-o,--output", initOutput, "where to write the checkpoint")->required();
  initWeights->add_option("--seed", initSeed, "random seed (default 0)");
  std::string initDType = "F32";
  initWeights
      ->add_option("--dtype", initDType,
                   "stored element type: F32 (default), F16 or BF16 (values rounded once; "
                   "moeplan-run converts to the plan's dtype on load)")
      ->check(CLI::IsMember({"F32", "F16", "BF16"}));

  CLI::App *importHf = app.add_subcommand(
      "import-hf", "Describe a Hugging Face model directory (config.json of MixtralForCausalLM,\n"
                   "Qwen2MoeForCausalLM, LlamaForCausalLM or Qwen2ForCausalLM) as a deployment\n"
                   "description's model section.\n"
                   "Exit status: 0 written; 1 the config names a model moeplan cannot compute\n"
                   "exactly (each field located); 2 unusable input.");
  std::string importDir, importBase, importOutput;
  importHf->add_option("DIR", importDir, "model directory (config.json)")->required();
  importHf->add_option("--base", importBase,
                       "take name, cluster, workload, strategy, requirements and search from "
                       "this description");
  importHf->add_option("-o,--output", importOutput, "where to write the description (default stdout)");

  InspectOptions inspectOptions;
  CLI::App *inspect = addInspectCommand(app, inspectOptions);
  DiffOptions diffOptions;
  CLI::App *diff = addDiffCommand(app, diffOptions);
  SearchCommand searchCommand;
  CLI::App *search = addSearchCommand(app, searchCommand);
  ReportCommand reportCommand;
  CLI::App *report = addReportCommand(app, reportCommand);
  CalibrateCommand calibrateCommand;
  CLI::App *calibrate = addCalibrateCommand(app, calibrateCommand);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    std::cerr << "moeplan: error: " << e.what() << "\n(run 'moeplan --help' for usage)\n";
    return 2;
  }
  if (*check) return runCheck(files, json, split, repairs, checkSeqPoints);
  if (*rules) return runRules(rulesJson);
  if (*inspect) return runInspect(inspectOptions);
  if (*diff) return runDiff(diffOptions);
  if (*search) return runSearch(searchCommand);
  if (*report) return runReport(reportCommand);
  if (*calibrate) return runCalibrate(calibrateCommand);
  if (*compile) return runCompile(compileFile, compileOutput, emit, compileSeqPoints, compileQuiet);
  if (*initWeights) return runInitWeights(initFile, initOutput, initSeed, initDType);
  if (*importHf) return runImportHf(importDir, importBase, importOutput);
  return 2;
}
