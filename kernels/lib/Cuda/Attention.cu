// Causal self-attention: a fused prefill kernel (FlashAttention-style: K/V tiles streamed
// through shared memory, online softmax, the scores never in global memory) and a decode
// kernel (one new query per sequence against the KV cache).
//
// Layouts (CpuKernels.h): sequence s, position p at row p * sequences + s; q, o rows hold
// heads x headDim, k, v rows kvHeads x headDim; query head h reads KV head h / (heads /
// kvHeads). Scores are q.k / sqrt(headDim), in fp32.
//
// Prefill runs a thread block per (query tile, head, sequence) and visits the key tiles up to
// the one holding the block's last query; only tiles that reach past a warp's first query
// apply the causal mask. Head dims are bucketed (32, 64, 128, 256): a smaller head dim runs
// in the next bucket with its columns past headDim zero in shared memory.
//  - F16/BF16: tensor cores (nvcuda::wmma 16x16x16, fp32 accumulation) for Q K^T and P V;
//    each warp owns 16 query rows, its scores staged in shared memory for the softmax, its
//    output accumulated in shared memory (fp32) so that the softmax rescale can reach rows
//    (wmma fragments have no documented element layout). P is rounded to the storage type
//    for the P V product; the softmax denominator sums the rounded values.
//  - F32: CUDA cores, fp32 FMA; each warp owns 8 query rows, a lane per key for Q K^T and per
//    output column for P V, the output in registers.
#include "Common.cuh"

#include <mma.h>

#include <cmath>
#include <type_traits>

namespace moeplan::kernels::cuda {

using namespace detail;

namespace {

// Flip to false to run F16/BF16 prefill on the CUDA-core kernel as well.
constexpr bool kPrefillTensorCores = true;

constexpr int kMaxHeadDim = 256;

struct AttentionShape {
  int64_t sequences, seqLen, heads, kvHeads, perKv; // perKv = heads / kvHeads
  int64_t queryTiles;                               // prefill only
  int headDim;
  float scale;
};

// Block -> (query tile, head, sequence). Heads vary fastest, so blocks sharing a KV head run
// together; the longest causal rows (last query tiles) are scheduled first.
struct BlockCoordinates {
  int64_t queryTile, head, sequence;
};
__device__ BlockCoordinates blockCoordinates(const AttentionShape &shape) {
  const int64_t block = blockIdx.x, perTile = shape.heads * shape.sequences;
  const int64_t rest = block % perTile;
  return {shape.queryTiles - 1 - block / perTile, rest % shape.heads, rest / shape.heads};
}

// -- prefill, CUDA cores ------------------------------------------------------------------

constexpr int kCoreWarps = 4, kCoreBq = 32, kCoreBk = 32;
constexpr int kCoreRows = kCoreBq / kCoreWarps; // query rows per warp
static_assert(kCoreBk == 32, "a lane per key of the tile");

// Shared memory in floats. Q and K rows are padded to D + 4: float4 reads stay aligned and the
// eight lanes of a quarter warp reading eight K rows hit distinct banks.
template <int D> struct CoreLayout {
  static constexpr int kQk = D + 4;
  static constexpr int q = 0, k = q + kCoreBq * kQk, v = k + kCoreBk * kQk;
  static constexpr int p = v + kCoreBk * D, floats = p + kCoreBq * kCoreBk;
  static constexpr size_t bytes = size_t(floats) * sizeof(float);
};

template <typename T, int D>
__global__ void __launch_bounds__(kCoreWarps * 32)
    prefillCoreKernel(const T *q, const T *k, const T *v, T *o, AttentionShape shape) {
  using Layout = CoreLayout<D>;
  constexpr int kBlocks = D / 32; // output columns per lane: lane + 32 b
  extern __shared__ __align__(16) float coreTile[];
  float *qTile = coreTile + Layout::q, *kTile = coreTile + Layout::k;
  float *vTile = coreTile + Layout::v, *pTile = coreTile + Layout::p;

  const BlockCoordinates at = blockCoordinates(shape);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, d = shape.headDim;
  const int64_t len = shape.seqLen, sequences = shape.sequences, s = at.sequence;
  const int64_t qWidth = shape.heads * d, kvWidth = shape.kvHeads * d;
  const int64_t qColumn = at.head * d, kvColumn = (at.head / shape.perKv) * d;
  const int64_t firstQuery = at.queryTile * kCoreBq;

  for (int i = threadIdx.x; i < kCoreBq * D; i += blockDim.x) {
    const int r = i / D, c = i % D;
    const int64_t p = firstQuery + r;
    qTile[r * Layout::kQk + c] =
        p < len && c < d ? toFloat(q[(p * sequences + s) * qWidth + qColumn + c]) : 0.0f;
  }

  const int64_t warpFirst = firstQuery + warp * kCoreRows;
  const int64_t warpLast = min(warpFirst + kCoreRows - 1, len - 1);
  const bool active = warpFirst < len; // else the warp's rows are all padding
  float m[kCoreRows], l[kCoreRows], acc[kCoreRows][kBlocks];
#pragma unroll
  for (int r = 0; r < kCoreRows; ++r) {
    m[r] = -INFINITY, l[r] = 0;
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) acc[r][b] = 0;
  }
  const int dRounded = (d + 3) / 4 * 4; // columns past d are zero

  const int64_t lastTile = min(firstQuery + kCoreBq - 1, len - 1) / kCoreBk;
  for (int64_t tile = 0; tile <= lastTile; ++tile) {
    const int64_t keyBase = tile * kCoreBk;
    __syncthreads(); // the previous tile is consumed (and, first time, the Q tile is stored)
    for (int i = threadIdx.x; i < kCoreBk * D; i += blockDim.x) {
      const int r = i / D, c = i % D;
      const int64_t key = keyBase + r;
      const bool inside = key < len && c < d;
      const int64_t from = (key * sequences + s) * kvWidth + kvColumn + c;
      kTile[r * Layout::kQk + c] = inside ? toFloat(k[from]) : 0.0f;
      vTile[r * D + c] = inside ? toFloat(v[from]) : 0.0f;
    }
    __syncthreads();
    if (!active || keyBase > warpLast) continue; // every key here is after the warp's rows

    float score[kCoreRows];
#pragma unroll
    for (int r = 0; r < kCoreRows; ++r) score[r] = 0;
    for (int c = 0; c < dRounded; c += 4) {
      const float4 key4 = *reinterpret_cast<const float4 *>(kTile + lane * Layout::kQk + c);
#pragma unroll
      for (int r = 0; r < kCoreRows; ++r) {
        const float4 q4 =
            *reinterpret_cast<const float4 *>(qTile + (warp * kCoreRows + r) * Layout::kQk + c);
        score[r] += q4.x * key4.x + q4.y * key4.y + q4.z * key4.z + q4.w * key4.w;
      }
    }

    // Online softmax, a row at a time across the warp (lane = key). Key 0 is visible to every
    // row on the first tile, so m is finite from then on and corr never sees -inf - -inf.
    const bool needMask = keyBase + kCoreBk - 1 > warpFirst;
    const int64_t key = keyBase + lane;
#pragma unroll
    for (int r = 0; r < kCoreRows; ++r) {
      const int64_t query = min(warpFirst + r, len - 1); // padding rows act as the last
      const float x = needMask && key > query ? -INFINITY : score[r] * shape.scale;
      const float mNew = fmaxf(m[r], warpMax(x));
      const float corr = expf(m[r] - mNew), p = expf(x - mNew);
      pTile[(warp * kCoreRows + r) * kCoreBk + lane] = p;
      l[r] = l[r] * corr + warpSum(p);
      m[r] = mNew;
#pragma unroll
      for (int b = 0; b < kBlocks; ++b) acc[r][b] *= corr;
    }
    __syncwarp();

    for (int j = 0; j < kCoreBk; ++j) {
      float value[kBlocks];
#pragma unroll
      for (int b = 0; b < kBlocks; ++b) value[b] = vTile[j * D + lane + 32 * b];
#pragma unroll
      for (int r = 0; r < kCoreRows; ++r) {
        const float p = pTile[(warp * kCoreRows + r) * kCoreBk + j];
#pragma unroll
        for (int b = 0; b < kBlocks; ++b) acc[r][b] += p * value[b];
      }
    }
    __syncwarp(); // pTile is rewritten by the next tile
  }

  if (!active) return;
#pragma unroll
  for (int r = 0; r < kCoreRows; ++r) {
    const int64_t p = warpFirst + r;
    if (p >= len) continue;
    T *row = o + (p * sequences + s) * qWidth + qColumn;
#pragma unroll
    for (int b = 0; b < kBlocks; ++b)
      if (lane + 32 * b < d) row[lane + 32 * b] = fromFloat<T>(acc[r][b] / l[r]);
  }
}

// -- prefill, tensor cores ------------------------------------------------------------------

constexpr int kTcWarps = 4, kTcBq = 16 * kTcWarps; // a 16-row wmma tile per warp

// Shared memory, byte offsets. Rows of T are padded by 16 bytes and rows of float by 16 bytes
// (wmma wants leading dimensions in multiples of 16 bytes; the padding spreads rows over
// banks). Every region starts on 32 bytes, as wmma loads and stores need.
template <typename T, int D, int Bk> struct TcLayout {
  static constexpr int kT = D + 8;  // Q, K, V rows (T)
  static constexpr int kO = D + 4;  // output rows (float)
  static constexpr int kS = Bk + 4; // score rows (float)
  static constexpr int kP = Bk + 8; // probability rows (T)
  static constexpr size_t q = 0;
  static constexpr size_t k = q + size_t(kTcBq) * kT * sizeof(T);
  static constexpr size_t v = k + size_t(Bk) * kT * sizeof(T);
  static constexpr size_t o = v + size_t(Bk) * kT * sizeof(T);
  static constexpr size_t s = o + size_t(kTcBq) * kO * sizeof(float);
  static constexpr size_t p = s + size_t(kTcBq) * kS * sizeof(float);
  static constexpr size_t corr = p + size_t(kTcBq) * kP * sizeof(T);
  static constexpr size_t bytes = corr + size_t(kTcBq) * sizeof(float);
  static_assert(k % 32 == 0 && v % 32 == 0 && o % 32 == 0 && s % 32 == 0 && p % 32 == 0 &&
                    corr % 32 == 0,
                "wmma needs 32-byte aligned tiles");
};

// Rows [first, first + count) of sequence s of a position-major [len * sequences, width]
// tensor, columns [column, column + d), into a tile of D columns with leading dimension ld.
// Rows past len and columns past d are zero: masked keys then multiply zeros, never garbage.
template <typename T, int D>
__device__ void loadTile(T *tile, int ld, const T *src, int64_t first, int count, int64_t len,
                         int64_t sequences, int64_t s, int64_t width, int64_t column, int d,
                         bool vectorized) {
  if (vectorized) { // 16-byte chunks; d % 8 == 0 and src 16-byte aligned
    constexpr int kChunks = D / 8;
    for (int i = threadIdx.x; i < count * kChunks; i += blockDim.x) {
      const int r = i / kChunks, c = i % kChunks * 8;
      const int64_t position = first + r;
      uint4 chunk = make_uint4(0, 0, 0, 0);
      if (position < len && c < d)
        chunk = *reinterpret_cast<const uint4 *>(src + (position * sequences + s) * width +
                                                 column + c);
      *reinterpret_cast<uint4 *>(tile + r * ld + c) = chunk;
    }
  } else {
    for (int i = threadIdx.x; i < count * D; i += blockDim.x) {
      const int r = i / D, c = i % D;
      const int64_t position = first + r;
      tile[r * ld + c] = position < len && c < d
                             ? src[(position * sequences + s) * width + column + c]
                             : fromFloat<T>(0.0f);
    }
  }
}

template <typename T, int D, int Bk>
__global__ void __launch_bounds__(kTcWarps * 32)
    prefillTensorCoreKernel(const T *q, const T *k, const T *v, T *o, AttentionShape shape,
                            bool vectorized) {
  using namespace nvcuda;
  using Layout = TcLayout<T, D, Bk>;
  using ScoreFragment = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  using RowFragment = wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;
  constexpr int kKeyBlocks = Bk / 16, kHalf = Bk / 2;
  extern __shared__ __align__(128) unsigned char tcShared[];
  T *qTile = reinterpret_cast<T *>(tcShared + Layout::q);
  T *kTile = reinterpret_cast<T *>(tcShared + Layout::k);
  T *vTile = reinterpret_cast<T *>(tcShared + Layout::v);
  float *oTile = reinterpret_cast<float *>(tcShared + Layout::o);
  float *sTile = reinterpret_cast<float *>(tcShared + Layout::s);
  T *pTile = reinterpret_cast<T *>(tcShared + Layout::p);
  float *corrTile = reinterpret_cast<float *>(tcShared + Layout::corr);

  const BlockCoordinates at = blockCoordinates(shape);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, d = shape.headDim;
  const int64_t len = shape.seqLen, sequences = shape.sequences, s = at.sequence;
  const int64_t qWidth = shape.heads * d, kvWidth = shape.kvHeads * d;
  const int64_t qColumn = at.head * d, kvColumn = (at.head / shape.perKv) * d;
  const int64_t firstQuery = at.queryTile * kTcBq;

  loadTile<T, D>(qTile, Layout::kT, q, firstQuery, kTcBq, len, sequences, s, qWidth, qColumn, d,
                 vectorized);
  for (int i = threadIdx.x; i < kTcBq * Layout::kO; i += blockDim.x) oTile[i] = 0;

  // This warp's 16 rows; for the softmax, lane = (row r, half of the key columns).
  const T *qWarp = qTile + 16 * warp * Layout::kT;
  float *oWarp = oTile + 16 * warp * Layout::kO, *sWarp = sTile + 16 * warp * Layout::kS;
  T *pWarp = pTile + 16 * warp * Layout::kP;
  float *corrWarp = corrTile + 16 * warp;
  const int r = lane % 16, half = lane / 16;
  const int64_t warpFirst = firstQuery + 16 * warp;
  const int64_t warpLast = min(warpFirst + 15, len - 1);
  const int64_t query = min(warpFirst + r, len - 1); // padding rows act as the last
  const bool active = warpFirst < len;               // else the rows are all padding
  const int dTiles = (d + 15) / 16, dColumns = 16 * dTiles;
  float m = -INFINITY, l = 0; // row r's running max and denominator (both halves agree)

  const int64_t lastTile = min(firstQuery + kTcBq - 1, len - 1) / Bk;
  for (int64_t tile = 0; tile <= lastTile; ++tile) {
    const int64_t keyBase = tile * Bk;
    __syncthreads(); // the previous tile is consumed (and, first time, Q and O are stored)
    loadTile<T, D>(kTile, Layout::kT, k, keyBase, Bk, len, sequences, s, kvWidth, kvColumn, d,
                   vectorized);
    loadTile<T, D>(vTile, Layout::kT, v, keyBase, Bk, len, sequences, s, kvWidth, kvColumn, d,
                   vectorized);
    __syncthreads();
    if (!active || keyBase > warpLast) continue; // every key here is after the warp's rows
    // Key blocks of 16 that hold a key some row of this warp can see.
    const int keyBlocks = int(min(int64_t(kKeyBlocks), (warpLast - keyBase) / 16 + 1));
    const int keysSeen = 16 * keyBlocks;

    // S = Q K^T: K^T is K's rows read column-major.
    for (int kb = 0; kb < keyBlocks; ++kb) {
      ScoreFragment scores;
      wmma::fill_fragment(scores, 0.0f);
      for (int kk = 0; kk < dTiles; ++kk) {
        RowFragment qFragment;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kFragment;
        wmma::load_matrix_sync(qFragment, qWarp + 16 * kk, Layout::kT);
        wmma::load_matrix_sync(kFragment, kTile + 16 * kb * Layout::kT + 16 * kk, Layout::kT);
        wmma::mma_sync(scores, qFragment, kFragment, scores);
      }
      wmma::store_matrix_sync(sWarp + 16 * kb, scores, Layout::kS, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax of row r over this lane's half of the columns (visited rotated by r to
    // spread the rows over banks). Key 0 is visible to every row on the first tile, so m is
    // finite from then on and corr never sees -inf - -inf.
    const bool needMask = keyBase + Bk - 1 > warpFirst;
    auto scoreAt = [&](int column) {
      const bool visible = column < keysSeen && !(needMask && keyBase + column > query);
      return visible ? sWarp[r * Layout::kS + column] * shape.scale : -INFINITY;
    };
    float tileMax = -INFINITY;
    for (int jj = 0; jj < kHalf; ++jj)
      tileMax = fmaxf(tileMax, scoreAt(half * kHalf + (jj + r) % kHalf));
    tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 16));
    const float mNew = fmaxf(m, tileMax), corr = expf(m - mNew);
    float sum = 0;
    for (int jj = 0; jj < kHalf; ++jj) {
      const int column = half * kHalf + (jj + r) % kHalf;
      const T p = fromFloat<T>(expf(scoreAt(column) - mNew));
      if (column < keysSeen) pWarp[r * Layout::kP + column] = p;
      sum += toFloat(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 16);
    l = l * corr + sum;
    m = mNew;
    if (half == 0) corrWarp[r] = corr;
    __syncwarp();

    for (int i = lane; i < 16 * dColumns; i += 32)
      oWarp[(i / dColumns) * Layout::kO + i % dColumns] *= corrWarp[i / dColumns];
    __syncwarp();

    // O += P V, the output tile through shared memory.
    // (Loops over key blocks unrolled with a guard: the P fragments stay in registers.)
    RowFragment pFragment[kKeyBlocks];
#pragma unroll
    for (int kb = 0; kb < kKeyBlocks; ++kb)
      if (kb < keyBlocks) wmma::load_matrix_sync(pFragment[kb], pWarp + 16 * kb, Layout::kP);
    for (int ct = 0; ct < dTiles; ++ct) {
      ScoreFragment out;
      wmma::load_matrix_sync(out, oWarp + 16 * ct, Layout::kO, wmma::mem_row_major);
#pragma unroll
      for (int kb = 0; kb < kKeyBlocks; ++kb) {
        if (kb >= keyBlocks) continue;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vFragment;
        wmma::load_matrix_sync(vFragment, vTile + 16 * kb * Layout::kT + 16 * ct, Layout::kT);
        wmma::mma_sync(out, pFragment[kb], vFragment, out);
      }
      wmma::store_matrix_sync(oWarp + 16 * ct, out, Layout::kO, wmma::mem_row_major);
    }
    __syncwarp();
  }

  if (!active) return;
  for (int row = 0; row < 16; ++row) {
    const float rowL = __shfl_sync(0xffffffffu, l, row); // lane row holds row row's l
    const int64_t p = warpFirst + row;
    if (p >= len) continue;
    T *out = o + (p * sequences + s) * qWidth + qColumn;
    for (int c = lane; c < d; c += 32) out[c] = fromFloat<T>(oWarp[row * Layout::kO + c] / rowL);
  }
}

// -- decode -----------------------------------------------------------------------------

constexpr int kDecodeWarps = 8, kDecodePerLane = kMaxHeadDim / 32;

// A block per (head, sequence); warp w takes keys w, w + 8, ... with its own online softmax
// (lane = columns lane + 32 b), then the warps' partial results are merged.
template <typename T>
__global__ void __launch_bounds__(kDecodeWarps * 32)
    decodeKernel(const T *q, const T *k, const T *v, const T *kCache, const T *vCache, T *o,
                 AttentionShape shape, int64_t kvLen) {
  __shared__ float warpMaxes[kDecodeWarps], warpSums[kDecodeWarps];
  __shared__ float warpOut[kDecodeWarps][kMaxHeadDim];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, d = shape.headDim;
  const int64_t head = blockIdx.x % shape.heads, s = blockIdx.x / shape.heads;
  const int64_t sequences = shape.sequences;
  const int64_t qWidth = shape.heads * d, kvWidth = shape.kvHeads * d;
  const int64_t kvColumn = (head / shape.perKv) * d;
  const T *qRow = q + s * qWidth + head * d;

  float query[kDecodePerLane], acc[kDecodePerLane];
#pragma unroll
  for (int b = 0; b < kDecodePerLane; ++b) {
    const int c = lane + 32 * b;
    query[b] = c < d ? toFloat(qRow[c]) : 0.0f;
    acc[b] = 0;
  }
  float m = -INFINITY, l = 0;
  for (int64_t i = warp; i <= kvLen; i += kDecodeWarps) { // key kvLen is the new token's
    const bool cached = i < kvLen;
    const int64_t row = (cached ? i * sequences + s : s) * kvWidth + kvColumn;
    const T *key = (cached ? kCache : k) + row, *value = (cached ? vCache : v) + row;
    float dot = 0;
#pragma unroll
    for (int b = 0; b < kDecodePerLane; ++b)
      if (lane + 32 * b < d) dot += query[b] * toFloat(key[lane + 32 * b]);
    const float x = warpSum(dot) * shape.scale;
    const float mNew = fmaxf(m, x), corr = expf(m - mNew), p = expf(x - mNew);
    l = l * corr + p;
#pragma unroll
    for (int b = 0; b < kDecodePerLane; ++b)
      acc[b] = acc[b] * corr + (lane + 32 * b < d ? p * toFloat(value[lane + 32 * b]) : 0.0f);
    m = mNew;
  }
  if (lane == 0) warpMaxes[warp] = m, warpSums[warp] = l;
#pragma unroll
  for (int b = 0; b < kDecodePerLane; ++b)
    if (lane + 32 * b < d) warpOut[warp][lane + 32 * b] = acc[b];
  __syncthreads();

  // A warp with no key (kvLen + 1 < warps) has m = -inf and weighs nothing.
  float mAll = -INFINITY;
  for (int w = 0; w < kDecodeWarps; ++w) mAll = fmaxf(mAll, warpMaxes[w]);
  float weight[kDecodeWarps], lAll = 0;
#pragma unroll
  for (int w = 0; w < kDecodeWarps; ++w) {
    weight[w] = warpMaxes[w] == -INFINITY ? 0.0f : expf(warpMaxes[w] - mAll);
    lAll += warpSums[w] * weight[w];
  }
  T *out = o + s * qWidth + head * d;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float sum = 0;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) sum += warpOut[w][c] * weight[w];
    out[c] = fromFloat<T>(sum / lAll);
  }
}

// -- launch helpers -------------------------------------------------------------------------

AttentionShape shapeOf(const char *kernel, int64_t sequences, int64_t seqLen, int64_t heads,
                       int64_t kvHeads, int64_t headDim) {
  checkNonNegative(kernel, "sequences", sequences), checkNonNegative(kernel, "seqLen", seqLen);
  checkNonNegative(kernel, "heads", heads), checkNonNegative(kernel, "headDim", headDim);
  if (kvHeads <= 0 || heads % kvHeads != 0)
    fail(kernel, std::to_string(heads) + " heads are not a multiple of " +
                     std::to_string(kvHeads) + " KV heads");
  if (headDim > kMaxHeadDim)
    fail(kernel, "head dim " + std::to_string(headDim) + " exceeds " +
                     std::to_string(kMaxHeadDim));
  AttentionShape shape{};
  shape.sequences = sequences, shape.seqLen = seqLen, shape.heads = heads;
  shape.kvHeads = kvHeads, shape.perKv = heads / kvHeads, shape.headDim = int(headDim);
  shape.scale = 1.0f / std::sqrt(float(headDim)); // as attendRow
  return shape;
}

// Calls f(std::integral_constant<int, D>) with the smallest head-dim bucket D >= headDim.
template <typename F> void withHeadDimBucket(int headDim, F &&f) {
  if (headDim <= 32)
    f(std::integral_constant<int, 32>{});
  else if (headDim <= 64)
    f(std::integral_constant<int, 64>{});
  else if (headDim <= 128)
    f(std::integral_constant<int, 128>{});
  else
    f(std::integral_constant<int, 256>{});
}

// Opts the kernel in to `bytes` of dynamic shared memory, with a clear error where the device
// has less.
template <typename Kernel> void allowShared(Kernel kernel, size_t bytes, const char *name) {
  int device = 0, limit = 0;
  check(cudaGetDevice(&device), name);
  check(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), name);
  if (bytes > size_t(limit))
    fail(name, "needs " + std::to_string(bytes) + " bytes of shared memory per block, the device " +
                   "allows " + std::to_string(limit));
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)),
        name);
}

bool aligned16(const void *p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

} // namespace

void attentionPrefill(DType dtype, const void *q, const void *k, const void *v, void *o,
                      int64_t sequences, int64_t seqLen, int64_t heads, int64_t kvHeads,
                      int64_t headDim, cudaStream_t stream) {
  const char *kernel = "attentionPrefill";
  AttentionShape shape = shapeOf(kernel, sequences, seqLen, heads, kvHeads, headDim);
  if (sequences == 0 || seqLen == 0 || heads == 0 || headDim == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    withHeadDimBucket(shape.headDim, [&](auto bucket) {
      constexpr int D = decltype(bucket)::value;
      const T *qt = static_cast<const T *>(q), *kt = static_cast<const T *>(k);
      const T *vt = static_cast<const T *>(v);
      T *ot = static_cast<T *>(o);
      if constexpr (std::is_same_v<T, float> || !kPrefillTensorCores) {
        shape.queryTiles = (seqLen + kCoreBq - 1) / kCoreBq;
        const int64_t blocks = shape.queryTiles * heads * sequences;
        toInt(kernel, "query tiles x heads x sequences", blocks);
        auto *f = prefillCoreKernel<T, D>;
        allowShared(f, CoreLayout<D>::bytes, kernel);
        f<<<unsigned(blocks), kCoreWarps * 32, CoreLayout<D>::bytes, stream>>>(qt, kt, vt, ot,
                                                                              shape);
      } else {
        constexpr int Bk = D <= 128 ? 64 : 32; // D = 256 at Bk = 64 would not fit an A100
        using Layout = TcLayout<T, D, Bk>;
        shape.queryTiles = (seqLen + kTcBq - 1) / kTcBq;
        const int64_t blocks = shape.queryTiles * heads * sequences;
        toInt(kernel, "query tiles x heads x sequences", blocks);
        const bool vectorized =
            shape.headDim % 8 == 0 && aligned16(q) && aligned16(k) && aligned16(v);
        auto *f = prefillTensorCoreKernel<T, D, Bk>;
        allowShared(f, Layout::bytes, kernel);
        f<<<unsigned(blocks), kTcWarps * 32, Layout::bytes, stream>>>(qt, kt, vt, ot, shape,
                                                                     vectorized);
      }
    });
  });
  checkLaunch(kernel);
}

void attentionDecode(DType dtype, const void *q, const void *k, const void *v,
                     const void *kCache, const void *vCache, void *o, int64_t sequences,
                     int64_t kvLen, int64_t heads, int64_t kvHeads, int64_t headDim,
                     cudaStream_t stream) {
  const char *kernel = "attentionDecode";
  const AttentionShape shape = shapeOf(kernel, sequences, 1, heads, kvHeads, headDim);
  checkNonNegative(kernel, "kvLen", kvLen);
  if (sequences == 0 || heads == 0 || headDim == 0) return;
  const int64_t blocks = sequences * heads;
  toInt(kernel, "sequences x heads", blocks);
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    decodeKernel<T><<<unsigned(blocks), kDecodeWarps * 32, 0, stream>>>(
        static_cast<const T *>(q), static_cast<const T *>(k), static_cast<const T *>(v),
        static_cast<const T *>(kCache), static_cast<const T *>(vCache), static_cast<T *>(o),
        shape, kvLen);
  });
  checkLaunch(kernel);
}

} // namespace moeplan::kernels::cuda
