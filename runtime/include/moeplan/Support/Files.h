// Writing result files so that nobody reads half of one: plans, checkpoints, outputs,
// traces and reports are written beside their target under a temporary name, flushed to
// disk, and renamed into place. A process killed while writing leaves no file at the
// target path (at most a stray "<path>.tmp.<pid>" beside it), never a truncated result.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace moeplan::files {

struct WriteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Replaces `path` with `bytes` atomically. Throws WriteError ("PATH: cannot write: why").
void writeAtomically(const std::string &path, std::string_view bytes);

} // namespace moeplan::files
