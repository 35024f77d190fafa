// Progress of long work (search's candidates, calibrate's measurements): the libraries count
// items done and call a callback; a tool shows it as one line on stderr, rewritten in place,
// only when stderr is a terminal, so that pipes, files and tests see no change at all.
// Shared by the runtime and the compiler (no MLIR here).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace moeplan {

struct Progress {
  size_t done = 0, total = 0;
  double seconds = 0;  // since the work began
};
using ProgressCallback = std::function<void(const Progress &)>;

// "search: 812/1568 strategies, 27.3/s, about 28 s left" (`what` "search", `items`
// "strategies"); no rate or time left before the first item, no time left after the last.
std::string formatProgress(const std::string &what, const std::string &items, const Progress &p);

// Counts items done, from any number of threads, and calls the callback (if any) with at
// most one call per `interval` and never two at once: a terminal need not be rewritten more
// often, and one call per item would cost a lock per item. The first item is reported at
// once; finish() reports the final count.
class ProgressCounter {
public:
  ProgressCounter(ProgressCallback callback, size_t total,
                  std::chrono::steady_clock::duration interval = std::chrono::milliseconds(100));
  void advance();  // one more item done
  void finish();
  size_t done() const { return done_; }

private:
  void report();  // with mutex_ held
  ProgressCallback callback_;
  const size_t total_;
  const std::chrono::steady_clock::duration interval_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<size_t> done_{0};
  std::mutex mutex_;
  std::optional<std::chrono::steady_clock::time_point> last_;  // guarded by mutex_
};

// The tools' progress line: callback() prints formatProgress on stderr, over the previous
// line, when stderr is a terminal, and is empty otherwise (so the library reports nothing);
// the destructor clears the line, leaving the terminal as it was for the results.
class ProgressLine {
public:
  ProgressLine(std::string what, std::string items);
  ~ProgressLine();
  ProgressLine(const ProgressLine &) = delete;
  ProgressLine &operator=(const ProgressLine &) = delete;
  ProgressCallback callback();

private:
  const std::string what_, items_;
  const bool terminal_;
  bool printed_ = false;
};

} // namespace moeplan
