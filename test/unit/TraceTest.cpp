// Chrome/Perfetto trace JSON (reference.md section 6) from simulated timelines.
#include "moeplan/Trace/Trace.h"

#include "moeplan/Simulate/Simulator.h"

#include "TestPlans.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <tuple>

using namespace moeplan;
using namespace moeplan::testing;
using json = nlohmann::json;

namespace {

trace::TraceEvent event(const std::string &name, uint32_t stream, double start, double duration) {
  trace::TraceEvent e;
  e.name = name;
  e.category = "kernel";
  e.stream = stream;
  e.startSeconds = start;
  e.durationSeconds = duration;
  return e;
}

std::string renderError(const std::vector<trace::TraceEvent> &events) {
  try {
    trace::renderTrace(events, sim::streamNames());
  } catch (const std::invalid_argument &e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Trace, SimulatedPipelineHasOneProcessPerGpuAndOneThreadPerStream) {
  const uint32_t stages = 3;
  plan::Plan plan = pipelinePlan(stages, 2, flopsCost(uint64_t(1e12)), 1 << 20);
  std::vector<trace::TraceEvent> events = sim::traceEvents(plan, sim::simulate(plan));
  json doc = json::parse(trace::renderTrace(events, sim::streamNames()));

  EXPECT_EQ(doc["displayTimeUnit"], "ms");
  std::set<uint32_t> pids, named;
  std::set<std::pair<uint32_t, uint32_t>> threads, namedThreads;
  std::vector<json> spans;
  for (const json &e : doc["traceEvents"]) {
    if (e["ph"] == "X") {
      pids.insert(e["pid"].get<uint32_t>());
      threads.emplace(e["pid"], e["tid"]);
      spans.push_back(e);
    } else if (e["ph"] == "M" && e["name"] == "process_name") {
      EXPECT_EQ(e["args"]["name"], "GPU " + std::to_string(e["pid"].get<uint32_t>()));
      named.insert(e["pid"].get<uint32_t>());
    } else if (e["ph"] == "M" && e["name"] == "thread_name") {
      EXPECT_EQ(e["args"]["name"], sim::streamNames().at(e["tid"].get<uint32_t>()));
      namedThreads.emplace(e["pid"], e["tid"]);
    }
  }
  EXPECT_EQ(pids.size(), stages);
  EXPECT_EQ(named, pids);
  EXPECT_EQ(namedThreads, threads);

  // One span per executed instruction, in microseconds.
  ASSERT_EQ(spans.size(), events.size());
  auto key = [](uint32_t pid, uint32_t tid, double ts) { return std::make_tuple(pid, tid, ts); };
  std::sort(events.begin(), events.end(),
            [&](const trace::TraceEvent &a, const trace::TraceEvent &b) {
              return key(a.rank, a.stream, a.startSeconds) < key(b.rank, b.stream, b.startSeconds);
            });
  for (size_t i = 0; i < spans.size(); ++i) {
    EXPECT_EQ(spans[i]["pid"], events[i].rank);
    EXPECT_EQ(spans[i]["tid"], events[i].stream);
    EXPECT_EQ(spans[i]["name"], events[i].name);
    EXPECT_EQ(spans[i]["cat"], events[i].category);
    EXPECT_DOUBLE_EQ(spans[i]["ts"].get<double>(), events[i].startSeconds * 1e6);
    EXPECT_DOUBLE_EQ(spans[i]["dur"].get<double>(), events[i].durationSeconds * 1e6);
    EXPECT_EQ(spans[i]["args"]["micro_batch"], events[i].args.at("micro_batch"));
  }
}

// Four ranks in one tp group; ranks 0 and 2 send to 1 and 3 over their pp groups.
TEST(Trace, EventsDescribeTheirInstructions) {
  PlanBuilder b(4, 8);
  b.addGroup("tp", {0, 1, 2, 3});
  b.addGroup("pp", {0, 1});
  b.addGroup("pp", {2, 3});
  auto sharedPart = [](ProgramBuilder prog) {
    prog.kernel(makeCost(10, 20), kComputeStream, {}, "layers.0.attention.q");
    prog.collective(plan::ALL_REDUCE, "tp", 30);
    return prog;
  };
  sharedPart(b.addProgram({0, 2})).send("pp", 1, 40);
  sharedPart(b.addProgram({1, 3})).recv("pp", 0, 40);
  plan::Plan plan = b.build();

  std::vector<trace::TraceEvent> events = sim::traceEvents(plan, sim::simulate(plan));
  ASSERT_EQ(events.size(), 4u * 3u);
  for (const trace::TraceEvent &e : events) {
    if (e.category == "kernel") {
      EXPECT_EQ(e.name, "layers.0.attention.q");
      EXPECT_EQ(e.args.at("flops"), "10");
      EXPECT_EQ(e.args.at("memory_bytes"), "20");
    } else if (e.category == "collective") {
      EXPECT_EQ(e.name, plan::CollectiveKind_Name(plan::ALL_REDUCE));  // no label: the kind
      EXPECT_EQ(e.args.at("group"), "0-3");
      EXPECT_EQ(e.args.at("comm_bytes"), "30");
    } else {
      ASSERT_EQ(e.category, "p2p");
      EXPECT_EQ(e.args.at("group"), e.rank < 2 ? "0-1" : "2-3");
      EXPECT_EQ(e.args.at("peer"), std::to_string(e.rank ^ 1u));
    }
  }
}

TEST(Trace, PartialOverlapOnOneStreamIsRejected) {
  std::string message = renderError({event("first", 0, 0, 2e-3), event("second", 0, 1e-3, 2e-3)});
  EXPECT_NE(message.find("\"first\""), std::string::npos) << message;
  EXPECT_NE(message.find("\"second\""), std::string::npos) << message;
}

TEST(Trace, NestedTouchingAndParallelEventsAreAccepted) {
  // 0.1 + 0.2 != 0.3 in binary: touching events may miss each other by rounding.
  EXPECT_EQ(renderError({event("outer", 0, 0, 3e-3), event("inner", 0, 1e-3, 1e-3),
                         event("a", 0, 0.1, 0.2), event("b", 0, 0.3, 0.1),
                         event("other stream", 1, 1e-3, 3e-3)}),
            "");
}
