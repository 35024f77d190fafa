// `moeplan report` and `moeplan diff --html`: a plan as one self-contained HTML page (inline
// SVG and CSS; nothing fetched, no script) that people look at instead of reading tables:
// - the device mesh: every GPU a box in its node, coloured by pipeline stage, labelled with
//   its TP and EP groups; idle GPUs marked;
// - memory per GPU: one stacked bar per GPU (weights, activations, KV cache, communication,
//   workspace, inputs/outputs, fragmentation) against the GPU's capacity and the
//   requirement;
// - the simulated timeline of every GPU, one row per stream (kernels by kind, collectives,
//   pipeline transfers; idle time is white), and a measured one (moeplan-run --trace) on
//   the same time scale beside it;
// - communication volume per mesh axis; requirements and claims with their verdicts at each
//   workload point; predicted against measured per component (moeplan-run --report-json);
// - a search (moeplan search --json): every evaluated strategy as a point, latency against
//   throughput per GPU (both log scales), memory per GPU as the marker's area, the Pareto
//   frontier and the best highlighted, the latency requirement as a line.
// Every figure comes from the plan, its simulation, or the files given; the SVG carries
// class names (gpu, stage-N, idle, memory-bar, span, strategy, frontier, best) that tests
// check.
#pragma once

#include "moeplan/Report/Inspect.h"
#include "moeplan/schema/plan.pb.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace moeplan::report {

// One instruction's run on one rank: simulated, or measured by moeplan-run --trace.
struct TimelineSpan {
  uint32_t rank = 0, stream = 0;
  uint32_t instruction = 0;  // index in the rank's program
  double start = 0, end = 0;
};

// The spans of a prediction (every rank's instructions).
std::vector<TimelineSpan> simulatedSpans(const plan::Plan &p, const sim::Prediction &prediction);
// The spans of a moeplan-run --trace file of plan `p` (its "X" events; args.instruction
// names the instruction); of a GENERATE plan, the prefill's only (as the simulated
// timeline). Empty with `error` set (naming the event) when the trace is not one of this
// plan's.
std::vector<TimelineSpan> measuredSpans(const plan::Plan &p, const nlohmann::json &trace,
                                        std::string &error);

struct HtmlInputs {
  const plan::Plan *plan = nullptr;               // absent: a search report alone
  const sim::Prediction *prediction = nullptr;    // the plan's (required with a plan)
  std::vector<TimelineSpan> measured;             // moeplan-run --trace; empty: none
  const MeasuredComparison *comparison = nullptr; // moeplan-run --report-json
  const nlohmann::json *search = nullptr;         // moeplan search --json
};

std::string renderHtmlReport(const HtmlInputs &in);

// Two plans side by side: their figures with the change, then each one's mesh, memory and
// timeline in two columns on the same scales.
std::string renderHtmlDiff(const plan::Plan &a, const sim::Prediction &predA,
                           const std::string &nameA, const plan::Plan &b,
                           const sim::Prediction &predB, const std::string &nameB);

// "" when `search` is a moeplan search --json document the plot can read, else what is wrong
// (the field).
std::string checkSearchJson(const nlohmann::json &search);

} // namespace moeplan::report
