// Which rows of an expert buffer hold routed tokens, so that the expert step computes and
// moves only those (issue 14: measurement and prediction describe the same work).
//
// DISPATCH writes slotsX[experts, groups * capacity, n]: each (expert, dispatch group) owns
// `capacity` consecutive rows (a segment), filled from its first row in token order; the
// rest of the segment is padding. Every routed instruction after it (plan.proto,
// Instruction.routed) keeps rows in whole segments: all-to-alls and expert-TP gathers and
// scatters move segments between ranks, regroup transposes permute them, grouped GEMMs, bias
// and activation map each row to a row. So a buffer's filled rows are described by one count
// per segment, and that count vector follows the data: a kernel derives its output's from
// its input's (outputFill), a collective exchanges the counts first and then moves the
// filled rows only. Padding rows are never written nor read: COMBINE reads a token's rows
// through the slots DISPATCH gave it, which are always filled.
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace moeplan::runtime {

struct RowFill {
  int64_t segmentRows = 0;       // rows per segment (the dispatch group's capacity); 0: unknown
  std::vector<int32_t> filled;   // per segment, rows from its start holding tokens

  bool known() const { return segmentRows > 0; }
  int64_t segments() const { return int64_t(filled.size()); }
  int64_t rows() const { return segmentRows * segments(); }
  int64_t filledRows() const;
  int64_t filledRows(int64_t segBegin, int64_t segEnd) const;
  // The p-th of `parts` equal runs of segments (a collective's piece per peer).
  RowFill part(int64_t parts, int64_t p) const;
  // Calls f(firstRow, rows) for each maximal run of filled rows (rows counted from the
  // buffer's start), in order; no run crosses a multiple of `boundary` rows (a GEMM group's;
  // 0: none).
  template <class F> void forEachRun(F &&f, int64_t boundary = 0) const {
    int64_t begin = 0, count = 0;
    for (int64_t s = 0; s < segments(); ++s) {
      const int64_t first = s * segmentRows, n = filled[size_t(s)];
      if (n == 0) continue;
      if (count > 0 && begin + count == first && (boundary == 0 || first % boundary != 0)) {
        count += n;
      } else {
        if (count > 0) f(begin, count);
        begin = first, count = n;
      }
    }
    if (count > 0) f(begin, count);
  }
};

// Segments in order, one after the other (a gather's output).
RowFill concatenate(const std::vector<RowFill> &pieces);

// The fill of a routed kernel's output given its first input's: the same rows for grouped
// GEMM, bias and activation; TRANSPOSE's x[m, n, inner] -> y[n, m, inner] permutes whole
// segments (inner holds a multiple of one). Throws std::invalid_argument when the kernel's
// rows do not fall into the input's segments (`rows`: the input buffer's rows).
RowFill outputFill(const plan::Kernel &kernel, const RowFill &in);

// Copies the filled rows of segments [segBegin, segEnd) of `fill` from the padded buffer
// `padded` to `packed`, one after the other; returns the rows copied. unpackRows does the
// reverse (padding rows of `padded` are left as they are).
int64_t packRows(const std::byte *padded, uint64_t rowBytes, const RowFill &fill,
                 int64_t segBegin, int64_t segEnd, std::byte *packed);
int64_t unpackRows(const std::byte *packed, uint64_t rowBytes, const RowFill &fill,
                   int64_t segBegin, int64_t segEnd, std::byte *padded);

} // namespace moeplan::runtime
