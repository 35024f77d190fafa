// moeplan: the command line. Subcommands are thin: parse flags, call the library, print.
#include "moeplan/Check/CheckReport.h"
#include "moeplan/Check/Rules.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>

namespace {

int runCheck(const std::vector<std::string> &files, bool json, bool split, size_t repairs) {
  moeplan::CheckOptions options;
  options.repairCount = repairs;
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

} // namespace

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

  CLI::App *rules = app.add_subcommand("rules", "List every rule check applies.");
  bool rulesJson = false;
  rules->add_flag("--json", rulesJson, "print JSON");

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
  if (*check) return runCheck(files, json, split, repairs);
  if (*rules) return runRules(rulesJson);
  return 2;
}
