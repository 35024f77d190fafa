// Progress lines (Support/Progress.h): the text, and the counter's calls: the first item at
// once, then at most one per interval, the final count at the end, from any thread.
#include "moeplan/Support/Progress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace moeplan {
namespace {

TEST(Progress, Format) {
  const struct {
    Progress progress;
    const char *line;
  } cases[] = {
      {{0, 1568, 0.5}, "0/1568 strategies"},
      {{812, 1568, 29.7}, "812/1568 strategies, 27.3/s, about 28 s left"},
      // Minutes, then hours; rates of 100 and more in whole items; under a second left is 1 s.
      {{10, 1000, 20}, "10/1000 strategies, 0.5/s, about 33 min left"},
      {{1, 20000, 1}, "1/20000 strategies, 1/s, about 5.6 h left"},
      {{999, 1000, 4}, "999/1000 strategies, 250/s, about 1 s left"},
      {{1000, 1000, 4}, "1000/1000 strategies, 250/s"},
  };
  for (const auto &c : cases)
    EXPECT_EQ(formatProgress("search", "strategies", c.progress), std::string("search: ") + c.line);
  EXPECT_EQ(formatProgress("calibrate", "measurements", {1, 100, 0.25}),
            "calibrate: 1/100 measurements, 4/s, about 25 s left");
}

TEST(Progress, CounterCallsOncePerIntervalAndAtTheEnd) {
  std::vector<Progress> calls;
  ProgressCounter counter([&](const Progress &p) { calls.push_back(p); }, 5, std::chrono::hours(1));
  for (int i = 0; i < 5; ++i) counter.advance();
  counter.finish();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].done, 1u);
  EXPECT_EQ(calls[1].done, 5u);
  EXPECT_EQ(calls[1].total, 5u);
  EXPECT_GE(calls[1].seconds, calls[0].seconds);

  calls.clear();
  ProgressCounter every([&](const Progress &p) { calls.push_back(p); }, 3,
                        std::chrono::steady_clock::duration::zero());
  for (int i = 0; i < 3; ++i) every.advance();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[2].done, 3u);
}

TEST(Progress, CounterFromThreads) {
  // One call at a time (the callback needs no lock) and counts that never go down.
  std::vector<size_t> seen;
  ProgressCounter counter([&](const Progress &p) { seen.push_back(p.done); }, 4000,
                          std::chrono::steady_clock::duration::zero());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) counter.advance();
    });
  for (std::thread &t : threads) t.join();
  counter.finish();
  EXPECT_EQ(counter.done(), 4000u);
  ASSERT_EQ(seen.size(), 4001u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.back(), 4000u);
}

TEST(Progress, CounterWithoutCallback) {
  ProgressCounter counter(nullptr, 2);
  counter.advance();
  counter.advance();
  counter.finish();
  EXPECT_EQ(counter.done(), 2u);
}

} // namespace
} // namespace moeplan
