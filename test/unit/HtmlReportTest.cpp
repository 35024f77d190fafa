// moeplan report's page and the two files it reads besides the plan: a moeplan-run --trace
// and a moeplan search --json. The page has one box and one memory bar per GPU and a span per
// instruction; the readers take every well-formed file and refuse every damaged one with the
// field named, never throwing (seeded mutations of each field).
#include "TestPlans.h"

#include "moeplan/Report/Html.h"
#include "moeplan/Simulate/Simulator.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace moeplan {
namespace {

size_t count(const std::string &text, const std::string &what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The trace moeplan-run --trace writes, from spans (its fields: ph, pid, tid, ts and dur in
// microseconds, args.instruction).
nlohmann::json traceOf(const std::vector<report::TimelineSpan> &spans) {
  nlohmann::json events = nlohmann::json::array();
  for (const report::TimelineSpan &s : spans)
    events.push_back({{"name", "x"},
                      {"ph", "X"},
                      {"pid", s.rank},
                      {"tid", s.stream},
                      {"ts", s.start * 1e6},
                      {"dur", (s.end - s.start) * 1e6},
                      {"args", {{"instruction", std::to_string(s.instruction)}}}});
  return {{"displayTimeUnit", "ms"}, {"traceEvents", events}};
}

// Values a damaged file may hold where another was expected.
nlohmann::json strangeValue(std::mt19937 &rng) {
  static const std::vector<nlohmann::json> values = {
      nullptr, "x", -1, 1.5, true, nlohmann::json::array(), nlohmann::json::object(), 1e300,
      4294967296ull, "17", -1e-300};
  return values[rng() % values.size()];
}

// Replaces one leaf, or the object holding it, or drops the leaf, at random.
nlohmann::json mutate(const nlohmann::json &doc, std::mt19937 &rng) {
  const nlohmann::json flat = doc.flatten();
  std::vector<std::string> keys;
  for (const auto &[key, value] : flat.items()) keys.push_back(key);
  nlohmann::json::json_pointer at(keys[rng() % keys.size()]);
  if (rng() % 5 == 0 && !at.parent_pointer().empty()) at = at.parent_pointer();
  nlohmann::json out = doc;
  if (rng() % 4 == 0 && out.at(at.parent_pointer()).is_object())
    out.at(at.parent_pointer()).erase(at.back());
  else
    out[at] = strangeValue(rng);
  return out;
}

TEST(HtmlReport, OneBoxAndOneBarPerGpuAndASpanPerInstruction) {
  plan::Plan p = testing::moePlan();
  sim::Prediction pred = sim::simulate(p);
  report::HtmlInputs in;
  in.plan = &p;
  in.prediction = &pred;
  const std::string html = report::renderHtmlReport(in);
  EXPECT_EQ(count(html, "class=\"gpu stage-"), size_t(p.ranks_size()));
  EXPECT_EQ(count(html, "class=\"memory-bar\""), size_t(p.ranks_size()));
  size_t instructions = 0;
  for (const sim::RankTimeline &t : pred.ranks) instructions += t.instructions.size();
  EXPECT_EQ(report::simulatedSpans(p, pred).size(), instructions);
  EXPECT_EQ(html.find("http"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("<svg class=\"timeline simulated\""), std::string::npos);
}

TEST(HtmlReport, TraceRoundTripsAndDamagedTracesAreRefused) {
  plan::Plan p = testing::moePlan();
  sim::Prediction pred = sim::simulate(p);
  const std::vector<report::TimelineSpan> spans = report::simulatedSpans(p, pred);
  const nlohmann::json trace = traceOf(spans);
  std::string error;
  std::vector<report::TimelineSpan> read = report::measuredSpans(p, trace, error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(read.size(), spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    EXPECT_EQ(read[i].rank, spans[i].rank);
    EXPECT_EQ(read[i].instruction, spans[i].instruction);
    EXPECT_NEAR(read[i].end, spans[i].end, 1e-12);
  }
  // A rank or an instruction the plan does not have: another plan's trace.
  nlohmann::json other = trace;
  other["traceEvents"][0]["pid"] = p.ranks_size();
  EXPECT_TRUE(report::measuredSpans(p, other, error).empty());
  EXPECT_NE(error.find("traceEvents[0]: pid"), std::string::npos) << error;
  other = trace;
  other["traceEvents"][1]["args"]["instruction"] = "100000";
  EXPECT_TRUE(report::measuredSpans(p, other, error).empty());
  EXPECT_NE(error.find("traceEvents[1]: args.instruction \"100000\""), std::string::npos) << error;
  // Seeded damage anywhere: refused with a reason, or read; never a throw, and what is read
  // renders.
  std::mt19937 rng(7);
  int refused = 0;
  for (int i = 0; i < 400; ++i) {
    nlohmann::json damaged = mutate(trace, rng);
    std::string why;
    std::vector<report::TimelineSpan> got;
    ASSERT_NO_THROW(got = report::measuredSpans(p, damaged, why)) << damaged.dump();
    if (got.empty()) {
      EXPECT_FALSE(why.empty());
      ++refused;
      continue;
    }
    report::HtmlInputs in;
    in.plan = &p;
    in.prediction = &pred;
    in.measured = got;
    EXPECT_NO_THROW(report::renderHtmlReport(in));
  }
  EXPECT_GT(refused, 100);
}

// A moeplan search --json, as searchJson writes the fields the plot reads.
nlohmann::json searchDocument() {
  auto strategy = [](int tp, int gpus) {
    return nlohmann::json{{"tp", tp}, {"pp", 1}, {"dp", gpus / tp}, {"ep", 1}, {"expert_tp", 1},
                          {"micro_batches", 1}, {"schedule", "ONE_F_ONE_B"}, {"gpus", gpus}};
  };
  nlohmann::json all = nlohmann::json::array();
  all.push_back({{"strategy", strategy(1, 1)}, {"latency_s", 2e-3}, {"throughput_tokens_per_s_per_gpu", 5e5},
                 {"memory_bytes", 7e9}, {"feasible", true}, {"best", true}, {"frontier", true}});
  all.push_back({{"strategy", strategy(2, 2)}, {"latency_s", 1e-3}, {"throughput_tokens_per_s_per_gpu", 4e5},
                 {"memory_bytes", 4e9}, {"feasible", true}, {"best", false}, {"frontier", true}});
  all.push_back({{"strategy", strategy(4, 4)}, {"latency_s", 9e-4}, {"throughput_tokens_per_s_per_gpu", 1e5},
                 {"memory_bytes", 3e9}, {"feasible", false}, {"best", false}, {"frontier", false}});
  return {{"schema", "moeplan-search"},
          {"name", "small"},
          {"objective", "throughput"},
          {"cluster_gpus", 4},
          {"enumerated", 40},
          {"limits", {{"max_latency_s", 1.5e-3}, {"min_throughput_tokens_per_s", nullptr}}},
          {"unreachable", nlohmann::json::array({{{"rule", "requirements.latency-reachable"}}})},
          {"evaluated_strategies", all}};
}

TEST(HtmlReport, SearchPlotAndDamagedSearchesAreRefused) {
  const nlohmann::json doc = searchDocument();
  ASSERT_EQ(report::checkSearchJson(doc), "");
  report::HtmlInputs in;
  in.search = &doc;
  const std::string html = report::renderHtmlReport(in);
  EXPECT_EQ(count(html, "<circle class=\"strategy "), 3u);
  EXPECT_EQ(count(html, "<circle class=\"strategy best\""), 1u);
  EXPECT_EQ(count(html, "<circle class=\"strategy frontier\""), 1u);
  EXPECT_EQ(count(html, "<circle class=\"strategy infeasible\""), 1u);
  EXPECT_NE(html.find("required latency ≤ 1.5 ms (no strategy on this cluster can meet it)"),
            std::string::npos);
  nlohmann::json bad = doc;
  bad["evaluated_strategies"][2]["strategy"]["tp"] = "4";
  EXPECT_EQ(report::checkSearchJson(bad), "evaluated_strategies[2].strategy.tp: not a count");
  std::mt19937 rng(11);
  int refused = 0;
  for (int i = 0; i < 400; ++i) {
    const nlohmann::json damaged = mutate(doc, rng);
    std::string why;
    ASSERT_NO_THROW(why = report::checkSearchJson(damaged)) << damaged.dump();
    if (!why.empty()) {
      ++refused;
      continue;
    }
    report::HtmlInputs accepted;
    accepted.search = &damaged;
    EXPECT_NO_THROW(report::renderHtmlReport(accepted)) << damaged.dump();
  }
  EXPECT_GT(refused, 200);
}

} // namespace
} // namespace moeplan
