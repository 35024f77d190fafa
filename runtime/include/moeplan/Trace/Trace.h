// Chrome/Perfetto trace JSON (reference.md section 6): one process per GPU, one thread per
// stream. Written by `moeplan inspect --trace` (simulated) and `moeplan-run --trace`
// (measured) in the same shape so that the two can be laid side by side.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moeplan::trace {

struct TraceEvent {
  uint32_t rank = 0;    // pid
  uint32_t stream = 0;  // tid
  std::string name;     // instruction label
  std::string category; // "kernel", "collective", "p2p"
  double startSeconds = 0, durationSeconds = 0;
  std::map<std::string, std::string> args;
};

// The plan's streams by index (plan.proto, Instruction.stream): thread names of a trace.
const std::vector<std::string> &planStreamNames();

// Renders the trace. Process names are "GPU <rank>", thread names from `streamNames`
// (index = stream). Events on one stream must not partially overlap (checked: throws
// std::invalid_argument naming the two events).
std::string renderTrace(const std::vector<TraceEvent> &events,
                        const std::vector<std::string> &streamNames);

} // namespace moeplan::trace
