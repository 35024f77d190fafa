#include "moeplan/Support/Progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moeplan {

namespace {

// An estimate, so whole seconds, minutes or tenths of hours (planfile::formatSeconds keeps
// three digits and turns exponential past 999 s).
std::string roughDuration(double seconds) {
  char buf[32];
  if (seconds < 60)
    std::snprintf(buf, sizeof buf, "%.0f s", std::max(1.0, std::ceil(seconds)));
  else if (seconds < 3600)
    std::snprintf(buf, sizeof buf, "%.0f min", std::round(seconds / 60));
  else
    std::snprintf(buf, sizeof buf, "%.1f h", seconds / 3600);
  return buf;
}

} // namespace

std::string formatProgress(const std::string &what, const std::string &items, const Progress &p) {
  std::string line =
      what + ": " + std::to_string(p.done) + "/" + std::to_string(p.total) + " " + items;
  if (p.done == 0 || p.seconds <= 0) return line;
  const double rate = double(p.done) / p.seconds;
  char buf[32];
  std::snprintf(buf, sizeof buf, rate >= 100 ? ", %.0f/s" : ", %.3g/s", rate);
  line += buf;
  if (p.done < p.total)
    line += ", about " + roughDuration(double(p.total - p.done) / rate) + " left";
  return line;
}

ProgressCounter::ProgressCounter(ProgressCallback callback, size_t total,
                                 std::chrono::steady_clock::duration interval)
    : callback_(std::move(callback)), total_(total), interval_(interval),
      start_(std::chrono::steady_clock::now()) {}

void ProgressCounter::advance() {
  ++done_;
  if (!callback_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (last_ && std::chrono::steady_clock::now() - *last_ < interval_) return;
  report();
}

void ProgressCounter::finish() {
  if (!callback_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  report();
}

void ProgressCounter::report() {
  const auto now = std::chrono::steady_clock::now();
  last_ = now;
  // done_ read under the lock: the counts reported never go down.
  callback_({done_, total_, std::chrono::duration<double>(now - start_).count()});
}

ProgressLine::ProgressLine(std::string what, std::string items)
    : what_(std::move(what)), items_(std::move(items)), terminal_(isatty(fileno(stderr)) == 1) {}

ProgressLine::~ProgressLine() {
  if (printed_) std::fputs("\r\x1b[K", stderr);
}

ProgressCallback ProgressLine::callback() {
  if (!terminal_) return {};
  return [this](const Progress &p) {
    // \x1b[K: clears what a longer earlier line left past this one's end.
    std::fprintf(stderr, "\r%s\x1b[K", formatProgress(what_, items_, p).c_str());
    std::fflush(stderr);
    printed_ = true;
  };
}

} // namespace moeplan
