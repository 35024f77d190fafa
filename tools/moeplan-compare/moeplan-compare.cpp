// moeplan-compare A B: compares two safetensors checkpoints tensor by tensor, B the reference.
// The logic is moeplan::checkpoint::compareCheckpoints (runtime/lib/Checkpoint/Compare.cpp).
#include "moeplan/Checkpoint/Compare.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <string>

int main(int argc, char **argv) {
  using namespace moeplan::checkpoint;
  CLI::App app{
      "Compare two safetensors checkpoints, B the reference: the same tensor names, dtypes and\n"
      "shapes; for F32 the largest |a - b|, within tolerance when |a - b| <= atol + rtol *\n"
      "max|B| holds for every element; for I32 the elements that differ.\n"
      "Exit status: 0 all within tolerance, 1 some differ, 2 unusable input."};
  std::string fileA, fileB;
  Tolerance tolerance;
  bool json = false;
  app.add_option("A", fileA, "the checkpoint to check (safetensors)")->required();
  app.add_option("B", fileB, "the reference")->required();
  app.add_option("--atol", tolerance.atol, "absolute tolerance")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rtol", tolerance.rtol, "tolerance relative to max|B|")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", json, "print JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    std::cerr << "moeplan-compare: error: " << e.what()
              << "\n(run 'moeplan-compare --help' for usage)\n";
    return 2;
  }

  try {
    SafetensorsReader a = SafetensorsReader::open(fileA);
    SafetensorsReader b = SafetensorsReader::open(fileB);
    CompareReport report = compareCheckpoints(a, b, tolerance);
    if (json)
      std::cout << compareJson(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
    else
      std::cout << renderCompareText(report);
    return report.exitStatus();
  } catch (const CheckpointError &e) {
    std::cerr << "moeplan-compare: error: " << e.what() << "\n";
    return 2;
  }
}
