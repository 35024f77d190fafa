// Mixture-of-experts kernels: router (routeToken per token), dispatch (the CPU backend's
// slots exactly) and combine.
#include "Common.cuh"

#include "moeplan/Kernels/Elementwise.h"

namespace moeplan::kernels::cuda {

using namespace detail;

namespace {

// -- router -----------------------------------------------------------------------------

constexpr int kRouterMaxTopK = 32;
constexpr int kRouterThreads = 128;
constexpr int kRouterSharedBytes = 48 * 1024; // no opt-in needed

// A thread per token. The block first stages its tokens' logits as fp32 in shared memory
// (coalesced; routeToken reads each logit several times), one row per thread with an odd
// stride so that threads reading the same expert hit different banks.
template <typename T>
__global__ void routerKernel(const T *logits, int32_t *indices, T *gates, int64_t tokens,
                             int experts, int topK, bool renormalize, int stride) {
  extern __shared__ float rows[];
  const int64_t perPass = int64_t(gridDim.x) * blockDim.x;
  for (int64_t first = int64_t(blockIdx.x) * blockDim.x; first < tokens; first += perPass) {
    const int count = int(min(int64_t(blockDim.x), tokens - first));
    __syncthreads(); // the previous pass is done with rows
    for (int i = threadIdx.x; i < count * experts; i += blockDim.x)
      rows[(i / experts) * stride + i % experts] = toFloat(logits[first * experts + i]);
    __syncthreads();
    if (int(threadIdx.x) < count) {
      const int64_t t = first + threadIdx.x;
      float tokenGates[kRouterMaxTopK];
      routeToken(rows + threadIdx.x * stride, experts, topK, renormalize, indices + t * topK,
                 tokenGates);
      for (int j = 0; j < topK; ++j) gates[t * topK + j] = fromFloat<T>(tokenGates[j]);
    }
  }
}

// -- dispatch ---------------------------------------------------------------------------

// Drop policy probs, a thread per choice, quadratic in the choices of a group (correct first;
// the position policy is the fast path). Keep: a choice is kept when fewer than `capacity`
// choices of its group to its expert rank before it (higher gate, or equal and earlier);
// slots[c] = -2 kept, -1 dropped. Then a kept choice's slot is its group's base plus the kept
// choices to the same expert before it in token order; a concurrent write changes only -2
// into a slot, so "kept" (slot != -1) reads the same before and after.
template <typename T>
__global__ void probsKeepKernel(const int32_t *indices, const T *gates, int32_t *slots,
                                int64_t choices, int64_t perGroup, int experts, int64_t capacity) {
  for (int64_t c = firstIndex(); c < choices; c += gridStride()) {
    const int32_t e = indices[c];
    if (e < 0 || e >= experts) continue;  // reported by dispatchSlotsKernel
    const int64_t first = c / perGroup * perGroup;
    const float mine = toFloat(gates[c]);
    int64_t before = 0;
    for (int64_t o = first; o < first + perGroup && before < capacity; ++o) {
      if (o == c || indices[o] != e) continue;
      const float other = toFloat(gates[o]);
      before += other > mine || (other == mine && o < c);
    }
    slots[c] = before < capacity ? -2 : -1;
  }
}

__global__ void probsSlotsKernel(const int32_t *indices, int32_t *slots, int64_t choices,
                                 int64_t perGroup, int experts, int64_t capacity) {
  for (int64_t c = firstIndex(); c < choices; c += gridStride()) {
    const int32_t e = indices[c];
    if (e < 0 || e >= experts || slots[c] == -1) continue;
    const int64_t first = c / perGroup * perGroup;
    int64_t position = 0;
    for (int64_t o = first; o < c; ++o) position += indices[o] == e && slots[o] != -1;
    slots[c] = int32_t(c / perGroup * capacity + position);
  }
}

constexpr int kDispatchThreads = 256, kDispatchWarps = kDispatchThreads / 32;
constexpr int64_t kDispatchMaxExperts = 2048; // shared memory: 12 bytes per expert

// Slots: a block per dispatch group walks the group's choices (flat order t * topK + j is
// the CPU's token order) in chunks of one choice per thread. A choice's position among its
// expert's choices of the group = used[e] (earlier chunks) + the same-expert choices of lower
// warps in this chunk (per-warp counts in shared memory) + those of lower lanes in its warp
// (__match_any_sync). Position < capacity takes slot group * capacity + position; otherwise
// the choice is dropped. At the group's end used[e] is every choice of e (the routed count)
// and what exceeds capacity was dropped.
__global__ void __launch_bounds__(kDispatchThreads)
    dispatchSlotsKernel(const int32_t *indices, int32_t *slots, int64_t groups,
                        int64_t choicesPerGroup, int experts, int capacity,
                        unsigned long long *routed, unsigned long long *dropped,
                        long long *badIndex) {
  extern __shared__ int used[]; // [experts], then warpCount
  unsigned char *warpCount = reinterpret_cast<unsigned char *>(used + experts); // [warp][e]
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned lowerLanes = (1u << lane) - 1;
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {
    for (int e = threadIdx.x; e < experts; e += kDispatchThreads) used[e] = 0;
    for (int i = threadIdx.x; i < kDispatchWarps * experts; i += kDispatchThreads)
      warpCount[i] = 0;
    __syncthreads();
    const int64_t begin = g * choicesPerGroup, end = begin + choicesPerGroup;
    for (int64_t chunk = begin; chunk < end; chunk += kDispatchThreads) {
      const int64_t c = chunk + threadIdx.x;
      const bool active = c < end;
      const int e = active ? indices[c] : -1;
      const bool valid = active && e >= 0 && e < experts;
      if (active && !valid && badIndex) atomicMax(badIndex, (long long)c);
      // Invalid and inactive lanes share the key -1, never a valid expert's.
      const unsigned peers = __match_any_sync(0xffffffffu, valid ? e : -1);
      const int rank = __popc(peers & lowerLanes);
      const bool leader = valid && rank == 0; // lowest lane choosing e in this warp
      if (leader) warpCount[warp * experts + e] = (unsigned char)__popc(peers);
      __syncthreads();
      if (active) {
        int slot = -1;
        if (valid) {
          int position = used[e] + rank;
          for (int w = 0; w < warp; ++w) position += warpCount[w * experts + e];
          if (position < capacity) slot = int(g * capacity + position);
        }
        slots[c] = slot;
      }
      __syncthreads(); // every position is read before used and warpCount change
      if (leader) {
        atomicAdd(&used[e], __popc(peers));
        warpCount[warp * experts + e] = 0;
      }
      __syncwarp(); // the reset is ordered before this warp's next leader writes
    }
    __syncthreads();
    unsigned long long droppedHere = 0;
    for (int e = threadIdx.x; e < experts; e += kDispatchThreads) {
      if (used[e] == 0) continue;
      if (routed) atomicAdd(&routed[e], (unsigned long long)used[e]);
      if (used[e] > capacity) droppedHere += (unsigned long long)(used[e] - capacity);
    }
    droppedHere = warpSum(droppedHere);
    if (dropped && lane == 0 && droppedHere) atomicAdd(dropped, droppedHere);
    __syncthreads(); // used is read before the next group resets it
  }
}

// Rows: a block per choice copies token t's row to its slot (Unit: 16-byte vectors when the
// rows allow, else elements).
template <typename Unit>
__global__ void dispatchRowsKernel(const Unit *x, const int32_t *indices, const int32_t *slots,
                                   Unit *slotsX, int64_t choices, int64_t topK, int64_t rows,
                                   int64_t unitsPerRow) {
  for (int64_t c = blockIdx.x; c < choices; c += gridDim.x) {
    const int slot = slots[c];
    if (slot < 0) continue; // also every invalid expert index
    const Unit *src = x + (c / topK) * unitsPerRow;
    Unit *dst = slotsX + (int64_t(indices[c]) * rows + slot) * unitsPerRow;
    for (int64_t i = threadIdx.x; i < unitsPerRow; i += blockDim.x) dst[i] = src[i];
  }
}

// -- combine ----------------------------------------------------------------------------

// A thread per (token, column); the choices summed in j order in fp32, as the CPU backend.
template <typename T>
__global__ void combineKernel(const T *y, const int32_t *indices, const int32_t *slots,
                              const T *gates, T *x, int64_t tokens, int64_t n, int64_t experts,
                              int64_t rows, int64_t topK) {
  for (int64_t i = firstIndex(); i < tokens * n; i += gridStride()) {
    const int64_t t = i / n, column = i % n;
    float sum = 0;
    for (int64_t j = 0; j < topK; ++j) {
      const int64_t choice = t * topK + j, e = indices[choice], slot = slots[choice];
      // Out of range is skipped: dispatch has already reported it (badIndex).
      if (slot < 0 || slot >= rows || e < 0 || e >= experts) continue;
      sum += toFloat(gates[choice]) * toFloat(y[(e * rows + slot) * n + column]);
    }
    x[i] = fromFloat<T>(sum);
  }
}

bool aligned16(const void *p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

} // namespace

void router(DType dtype, const void *logits, int32_t *indices, void *gates, int64_t tokens,
            int64_t experts, int64_t topK, bool renormalize, cudaStream_t stream) {
  const char *kernel = "router";
  checkNonNegative(kernel, "tokens", tokens), checkNonNegative(kernel, "experts", experts);
  checkNonNegative(kernel, "topK", topK);
  if (tokens == 0 || topK == 0) return;
  if (topK > experts)
    fail(kernel, "top_k " + std::to_string(topK) + " exceeds " + std::to_string(experts) +
                     " experts");
  if (topK > kRouterMaxTopK)
    fail(kernel, "top_k " + std::to_string(topK) + " exceeds the supported " +
                     std::to_string(kRouterMaxTopK));
  // A row of logits must fit shared memory; checked before any int holds experts.
  constexpr int64_t kMaxExperts = kRouterSharedBytes / int64_t(sizeof(float)) - 1;
  if (experts > kMaxExperts)
    fail(kernel, std::to_string(experts) + " experts exceed the shared-memory limit of " +
                     std::to_string(kMaxExperts));
  const int stride = int(experts | 1); // odd: conflict-free shared-memory rows
  const int64_t rowBytes = int64_t(stride) * int64_t(sizeof(float));
  int threads = int(std::min<int64_t>(kRouterThreads, kRouterSharedBytes / rowBytes));
  if (threads > 32) threads -= threads % 32;
  const unsigned blocks = unsigned(std::min((tokens + threads - 1) / threads, kMaxBlocks));
  const size_t shared = size_t(threads) * size_t(rowBytes);
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    routerKernel<T><<<blocks, threads, shared, stream>>>(static_cast<const T *>(logits), indices,
                                                         static_cast<T *>(gates), tokens,
                                                         int(experts), int(topK), renormalize,
                                                         stride);
  });
  checkLaunch(kernel);
}

void dispatch(DType dtype, const void *x, const int32_t *indices, void *slotsX, int32_t *slots,
              int64_t tokens, int64_t n, int64_t experts, int64_t topK, int64_t capacity,
              int64_t groups, unsigned long long *routed, unsigned long long *dropped,
              long long *badIndex, cudaStream_t stream, const void *gates) {
  const char *kernel = "dispatch";
  for (auto [what, value] : {std::pair<const char *, int64_t>{"tokens", tokens}, {"n", n},
                             {"experts", experts}, {"topK", topK}, {"capacity", capacity},
                             {"groups", groups}})
    checkNonNegative(kernel, what, value);
  groups = std::max<int64_t>(groups, 1);
  if (tokens % groups != 0)
    fail(kernel, std::to_string(groups) + " groups do not divide " + std::to_string(tokens) +
                     " tokens");
  if (experts > kDispatchMaxExperts)
    fail(kernel, std::to_string(experts) + " experts exceed the supported " +
                     std::to_string(kDispatchMaxExperts));
  const int bytes = dtypeBytes(dtype); // also rejects an unknown dtype
  // Each factor fits an int first, so the products cannot overflow int64.
  const int64_t rows =
      int64_t(toInt(kernel, "groups", groups)) * toInt(kernel, "capacity", capacity);
  toInt(kernel, "groups x capacity (the largest slot)", rows);
  toInt(kernel, "tokens x topK",
        int64_t(toInt(kernel, "tokens", tokens)) * toInt(kernel, "topK", topK));
  // Unused slots are zero (all-zero bits: 0.0 in every dtype).
  const size_t slotsBytes = size_t(experts) * size_t(rows) * size_t(n) * size_t(bytes);
  if (slotsBytes) check(cudaMemsetAsync(slotsX, 0, slotsBytes, stream), kernel);
  const int64_t choices = tokens * topK;
  if (choices == 0) return;

  const size_t shared = size_t(experts) * (sizeof(int) + kDispatchWarps);
  dispatchSlotsKernel<<<unsigned(std::min(groups, kMaxBlocks)), kDispatchThreads, shared,
                        stream>>>(indices, slots, groups, choices / groups, int(experts),
                                  int(capacity), routed, dropped, badIndex);
  checkLaunch(kernel);
  if (gates) {
    // Drop policy probs keeps as many choices per expert and group as the position policy
    // (so the counts above stand) but picks them by gate: mark, then number the kept.
    const unsigned choiceBlocks = unsigned(std::min((choices + 255) / 256, kMaxBlocks));
    withType(dtype, kernel, [&](auto tag) {
      using T = typename decltype(tag)::type;
      probsKeepKernel<T><<<choiceBlocks, 256, 0, stream>>>(indices, static_cast<const T *>(gates),
                                                         slots, choices, choices / groups,
                                                         int(experts), capacity);
    });
    checkLaunch(kernel);
    probsSlotsKernel<<<choiceBlocks, 256, 0, stream>>>(indices, slots, choices, choices / groups,
                                                       int(experts), capacity);
    checkLaunch(kernel);
  }
  if (n == 0 || rows == 0) return;

  const int64_t rowBytes = n * bytes;
  const unsigned blocks = unsigned(std::min(choices, kMaxBlocks));
  constexpr int kRowThreads = 128;
  if (rowBytes % 16 == 0 && aligned16(x) && aligned16(slotsX))
    dispatchRowsKernel<uint4><<<blocks, kRowThreads, 0, stream>>>(
        static_cast<const uint4 *>(x), indices, slots, static_cast<uint4 *>(slotsX), choices,
        topK, rows, rowBytes / 16);
  else if (bytes == 4)
    dispatchRowsKernel<uint32_t><<<blocks, kRowThreads, 0, stream>>>(
        static_cast<const uint32_t *>(x), indices, slots, static_cast<uint32_t *>(slotsX),
        choices, topK, rows, n);
  else
    dispatchRowsKernel<uint16_t><<<blocks, kRowThreads, 0, stream>>>(
        static_cast<const uint16_t *>(x), indices, slots, static_cast<uint16_t *>(slotsX),
        choices, topK, rows, n);
  checkLaunch(kernel);
}

void combine(DType dtype, const void *y, const int32_t *indices, const int32_t *slots,
             const void *gates, void *x, int64_t tokens, int64_t n, int64_t experts,
             int64_t topK, int64_t capacity, int64_t groups, cudaStream_t stream) {
  const char *kernel = "combine";
  for (auto [what, value] : {std::pair<const char *, int64_t>{"tokens", tokens}, {"n", n},
                             {"experts", experts}, {"topK", topK}, {"capacity", capacity},
                             {"groups", groups}})
    checkNonNegative(kernel, what, value);
  groups = std::max<int64_t>(groups, 1);
  // As dispatch: rows of I32 slots, each factor an int first so the product cannot overflow.
  const int64_t rows =
      int64_t(toInt(kernel, "groups", groups)) * toInt(kernel, "capacity", capacity);
  toInt(kernel, "groups x capacity (the largest slot)", rows);
  if (tokens == 0 || n == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    combineKernel<T><<<gridFor(tokens * n), kThreads, 0, stream>>>(
        static_cast<const T *>(y), indices, slots, static_cast<const T *>(gates),
        static_cast<T *>(x), tokens, n, experts, rows, topK);
  });
  checkLaunch(kernel);
}

} // namespace moeplan::kernels::cuda
