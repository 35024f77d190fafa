#include "moeplan/Runtime/RoutedRows.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace moeplan::runtime {

int64_t RowFill::filledRows() const { return filledRows(0, segments()); }

int64_t RowFill::filledRows(int64_t segBegin, int64_t segEnd) const {
  int64_t rows = 0;
  for (int64_t s = segBegin; s < segEnd; ++s) rows += filled[size_t(s)];
  return rows;
}

RowFill RowFill::part(int64_t parts, int64_t p) const {
  if (parts <= 0 || segments() % parts != 0)
    throw std::invalid_argument(std::to_string(segments()) + " segments of routed rows do not split into " +
                                std::to_string(parts) + " equal parts");
  const int64_t each = segments() / parts;
  RowFill r{segmentRows, {}};
  r.filled.assign(filled.begin() + p * each, filled.begin() + (p + 1) * each);
  return r;
}

RowFill concatenate(const std::vector<RowFill> &pieces) {
  RowFill r;
  for (const RowFill &p : pieces) {
    if (r.segmentRows != 0 && p.segmentRows != r.segmentRows)
      throw std::invalid_argument("routed rows: pieces of " + std::to_string(r.segmentRows) +
                                  " and " + std::to_string(p.segmentRows) + " rows per segment");
    r.segmentRows = p.segmentRows;
    r.filled.insert(r.filled.end(), p.filled.begin(), p.filled.end());
  }
  return r;
}

RowFill outputFill(const plan::Kernel &k, const RowFill &in) {
  auto sameRows = [&](int64_t rows) {
    if (rows != in.rows())
      throw std::invalid_argument(plan::KernelKind_Name(k.kind()) + " of " + std::to_string(rows) +
                                  " rows on routed rows of " + std::to_string(in.rows()));
    return in;
  };
  switch (k.kind()) {
  case plan::GROUPED_GEMM:
  case plan::BIAS_ADD:
    return sameRows(std::max<int64_t>(1, k.groups()) * k.m());
  case plan::ACTIVATION_FUNCTION:
    return sameRows(k.m());
  case plan::TRANSPOSE: {
    // x[m, n, inner] in rows: each (i, j) block holds innerSegs whole segments.
    const int64_t m = k.m(), n = k.n(), blocks = m * n;
    if (blocks <= 0 || in.segments() % blocks != 0)
      throw std::invalid_argument("TRANSPOSE of " + std::to_string(m) + " x " + std::to_string(n) +
                                  " blocks does not move whole segments of " +
                                  std::to_string(in.segments()));
    const int64_t inner = in.segments() / blocks;
    RowFill out{in.segmentRows, std::vector<int32_t>(in.filled.size())};
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        std::copy_n(in.filled.begin() + (i * n + j) * inner, inner,
                    out.filled.begin() + (j * m + i) * inner);
    return out;
  }
  default:
    throw std::invalid_argument(plan::KernelKind_Name(k.kind()) + " does not compute on routed rows");
  }
}

int64_t packRows(const std::byte *padded, uint64_t rowBytes, const RowFill &fill,
                 int64_t segBegin, int64_t segEnd, std::byte *packed) {
  int64_t rows = 0;
  for (int64_t s = segBegin; s < segEnd; ++s) {
    const int64_t n = fill.filled[size_t(s)];
    std::memcpy(packed + uint64_t(rows) * rowBytes, padded + uint64_t(s * fill.segmentRows) * rowBytes,
                uint64_t(n) * rowBytes);
    rows += n;
  }
  return rows;
}

int64_t unpackRows(const std::byte *packed, uint64_t rowBytes, const RowFill &fill,
                   int64_t segBegin, int64_t segEnd, std::byte *padded) {
  int64_t rows = 0;
  for (int64_t s = segBegin; s < segEnd; ++s) {
    const int64_t n = fill.filled[size_t(s)];
    std::memcpy(padded + uint64_t(s * fill.segmentRows) * rowBytes, packed + uint64_t(rows) * rowBytes,
                uint64_t(n) * rowBytes);
    rows += n;
  }
  return rows;
}

} // namespace moeplan::runtime
