#include "moeplan/Trace/Trace.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <tuple>

namespace moeplan::trace {

namespace {

constexpr double kMicrosecondsPerSecond = 1e6;

double endOf(const TraceEvent &e) { return e.startSeconds + e.durationSeconds; }

// Boundaries computed in floating point may miss each other by rounding: a nanosecond per
// second of trace time is far below anything a trace shows.
bool notAfter(double time, double limit) {
  return time <= limit + 1e-9 * std::max(1.0, std::abs(limit));
}

std::string describe(const TraceEvent &e) {
  std::ostringstream out;
  out << "\"" << e.name << "\" [" << e.startSeconds << " s, " << endOf(e) << " s]";
  return out.str();
}

// Events of one (rank, stream), sorted by start and longest first: each must end before the
// next starts or contain it.
void checkNesting(std::vector<const TraceEvent *>::const_iterator begin,
                  std::vector<const TraceEvent *>::const_iterator end) {
  std::vector<const TraceEvent *> open;
  for (auto it = begin; it != end; ++it) {
    const TraceEvent &e = **it;
    while (!open.empty() && notAfter(endOf(*open.back()), e.startSeconds)) open.pop_back();
    if (!open.empty() && !notAfter(endOf(e), endOf(*open.back())))
      throw std::invalid_argument("trace: on GPU " + std::to_string(e.rank) + " stream " +
                                  std::to_string(e.stream) + ", events " + describe(*open.back()) +
                                  " and " + describe(e) + " partially overlap");
    open.push_back(&e);
  }
}

void appendEvent(std::string &out, const nlohmann::json &event) {
  if (out.back() != '[') out += ",\n";
  out += event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

const std::vector<std::string> &planStreamNames() {
  static const std::vector<std::string> names = {"compute", "collectives", "pipeline"};
  return names;
}

std::string renderTrace(const std::vector<TraceEvent> &events,
                        const std::vector<std::string> &streamNames) {
  std::vector<const TraceEvent *> order;
  order.reserve(events.size());
  for (const TraceEvent &e : events) {
    if (!std::isfinite(e.startSeconds) || !std::isfinite(e.durationSeconds) ||
        e.durationSeconds < 0)
      throw std::invalid_argument("trace: event " + describe(e) + " on GPU " +
                                  std::to_string(e.rank) + " has no valid time span");
    order.push_back(&e);
  }
  // Ties keep the caller's order (the pointers follow it), so the output is deterministic.
  std::sort(order.begin(), order.end(), [](const TraceEvent *a, const TraceEvent *b) {
    return std::make_tuple(a->rank, a->stream, a->startSeconds, -a->durationSeconds, a) <
           std::make_tuple(b->rank, b->stream, b->startSeconds, -b->durationSeconds, b);
  });

  // Events stream by stream as one JSON array written piecewise: a trace of millions of
  // events would not fit a json document in memory.
  std::string out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [";
  for (auto first = order.begin(); first != order.end();) {
    const uint32_t rank = (*first)->rank, stream = (*first)->stream;
    auto last = std::find_if(first, order.end(), [&](const TraceEvent *e) {
      return e->rank != rank || e->stream != stream;
    });
    checkNesting(first, last);
    if (first == order.begin() || (*std::prev(first))->rank != rank)
      appendEvent(out, {{"name", "process_name"},
                        {"ph", "M"},
                        {"pid", rank},
                        {"args", {{"name", "GPU " + std::to_string(rank)}}}});
    appendEvent(out,
                {{"name", "thread_name"},
                 {"ph", "M"},
                 {"pid", rank},
                 {"tid", stream},
                 {"args",
                  {{"name", stream < streamNames.size() ? streamNames[stream]
                                                        : "stream " + std::to_string(stream)}}}});
    for (auto it = first; it != last; ++it) {
      const TraceEvent &e = **it;
      appendEvent(out, {{"name", e.name},
                        {"cat", e.category},
                        {"ph", "X"},
                        {"ts", e.startSeconds * kMicrosecondsPerSecond},
                        {"dur", e.durationSeconds * kMicrosecondsPerSecond},
                        {"pid", e.rank},
                        {"tid", e.stream},
                        {"args", e.args}});
    }
    first = last;
  }
  out += "]}\n";
  return out;
}

}  // namespace moeplan::trace
