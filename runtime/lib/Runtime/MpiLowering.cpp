// Plan collectives as MPI calls with int counts (MpiLowering.h). The choice per kind, when
// the counts do not fit one call, is documented where each kind is lowered.
#include "moeplan/Runtime/MpiLowering.h"

#include "moeplan/Runtime/Backend.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>

namespace moeplan::runtime {

namespace {

void checkMaxCount(uint64_t maxCount) {
  if (maxCount < 1 || maxCount > uint64_t(INT_MAX))
    throw std::invalid_argument("MPI count limit " + std::to_string(maxCount) + " is not in 1.." +
                                std::to_string(INT_MAX));
}

std::string describe(const plan::Collective &c) {
  return plan::CollectiveKind_Name(c.kind()) + " (sequence " + std::to_string(c.sequence()) + ")";
}

MpiOp makeOp(MpiOp::Kind kind, const MpiChunk &chunk, uint64_t sendOffset, uint64_t recvOffset) {
  MpiOp op;
  op.kind = kind;
  op.count = chunk.count;
  op.sendOffset = sendOffset;
  op.recvOffset = recvOffset;
  return op;
}

// Displacements (elements) of counts sent or received contiguously in peer order.
std::vector<uint64_t> displacements(const google::protobuf::RepeatedField<uint64_t> &counts) {
  std::vector<uint64_t> d(size_t(counts.size()), 0);
  for (size_t j = 1; j < d.size(); ++j) d[j] = d[j - 1] + counts[int(j) - 1];
  return d;
}

} // namespace

uint64_t mpiMaxCount() {
  const char *value = std::getenv("MOEPLAN_MPI_MAX_COUNT");
  if (!value || !*value) return uint64_t(INT_MAX);
  char *end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(value, &end, 10);
  // strtoull would take a sign and leading blanks; only plain digits are a count.
  if (!std::isdigit(static_cast<unsigned char>(value[0])) || *end || errno || n < 1 ||
      n > uint64_t(INT_MAX))
    throw UnusableInput(std::string("MOEPLAN_MPI_MAX_COUNT is \"") + value +
                        "\", not a count in 1.." + std::to_string(INT_MAX));
  return n;
}

std::vector<MpiChunk> mpiChunks(uint64_t total, uint64_t maxCount) {
  checkMaxCount(maxCount);
  std::vector<MpiChunk> chunks;
  chunks.reserve(size_t(total / maxCount + 1));
  uint64_t offset = 0;
  do {
    const uint64_t n = std::min(total - offset, maxCount);
    chunks.push_back({offset, int(n)});
    offset += n;
  } while (offset < total);
  return chunks;
}

int mpiTag(uint64_t sequence) { return int(sequence % kFeedTag); }

bool allToAllvFits(const plan::Collective &c, uint64_t maxCount) {
  for (const auto *counts : {&c.send_counts(), &c.recv_counts()}) {
    uint64_t displacement = 0;
    for (uint64_t n : *counts) {
      if (n > maxCount || displacement > maxCount) return false;
      displacement += n;  // both at most INT_MAX: no overflow
    }
  }
  return true;
}

std::set<std::pair<std::string, uint64_t>> pointToPointAllToAlls(const plan::Plan &plan,
                                                                 uint64_t maxCount) {
  std::set<std::pair<std::string, uint64_t>> chosen;
  for (const plan::Program &program : plan.programs())
    for (const plan::Instruction &inst : program.instructions())
      if (inst.has_collective() && inst.collective().kind() == plan::ALL_TO_ALL &&
          !allToAllvFits(inst.collective(), maxCount))
        chosen.emplace(inst.collective().axis(), inst.collective().sequence());
  return chosen;
}

std::vector<MpiOp> lowerCollective(const plan::Collective &c, uint32_t groupSize,
                                   uint32_t groupIndex, uint64_t maxCount, bool allToAllNative) {
  checkMaxCount(maxCount);
  if (groupSize == 0 || groupIndex >= groupSize)
    throw std::invalid_argument(describe(c) + ": position " + std::to_string(groupIndex) +
                                " in a group of " + std::to_string(groupSize));
  const uint64_t n = c.count();
  // ALL_GATHER and REDUCE_SCATTER: Open MPI's libnbc sizes the gathered or scattered buffer
  // (group x n) and each rank's offset in it as int, so the native call needs those to fit.
  const bool wholeFits = n <= maxCount / groupSize;
  const int tag = c.feeds_next_step() ? kFeedTag : mpiTag(c.sequence());
  std::vector<MpiOp> ops;
  switch (c.kind()) {
  case plan::ALL_REDUCE:
    // Sums are elementwise: each piece of the vector is an all-reduce of its own.
    for (const MpiChunk &chunk : mpiChunks(n, maxCount))
      ops.push_back(makeOp(MpiOp::ALLREDUCE, chunk, chunk.offset, chunk.offset));
    break;

  case plan::ALL_GATHER:
    if (wholeFits) {
      ops.push_back(makeOp(MpiOp::ALLGATHER, {0, int(n)}, 0, 0));
      break;
    }
    // Piece [o, o + k) of every rank's input in one all-gather: the receive type is k
    // elements resized to an extent of n (the full piece), one per rank, so rank i's lands
    // at i x n + o with a receive count of 1 while MPI steps by the MPI_Aint extent. Its type
    // signature, k elements, matches the k plain elements sent.
    for (const MpiChunk &chunk : mpiChunks(n, maxCount)) {
      ops.push_back(makeOp(MpiOp::ALLGATHER, chunk, chunk.offset, chunk.offset));
      ops.back().recvStride = n;
    }
    break;

  case plan::REDUCE_SCATTER:
    if (wholeFits) {
      ops.push_back(makeOp(MpiOp::REDUCE_SCATTER_BLOCK, {0, int(n)}, 0, 0));
      break;
    }
    // Rank r's result is the sum of every rank's piece r: a reduce to root r, in pieces.
    // A chunked reduce-scatter would need a strided derived type, and MPI_SUM is defined on
    // predefined types only (not portably on derived ones).
    for (uint32_t root = 0; root < groupSize; ++root)
      for (const MpiChunk &chunk : mpiChunks(n, maxCount)) {
        ops.push_back(makeOp(MpiOp::REDUCE, chunk, root * n + chunk.offset, chunk.offset));
        ops.back().peer = int(root);
      }
    break;

  case plan::ALL_TO_ALL: {
    if (uint32_t(c.send_counts_size()) != groupSize || uint32_t(c.recv_counts_size()) != groupSize)
      throw std::invalid_argument(describe(c) + ": " + std::to_string(c.send_counts_size()) +
                                  " send and " + std::to_string(c.recv_counts_size()) +
                                  " receive counts for a group of " + std::to_string(groupSize));
    const std::vector<uint64_t> sendDispls = displacements(c.send_counts());
    const std::vector<uint64_t> recvDispls = displacements(c.recv_counts());
    if (allToAllNative) {
      if (!allToAllvFits(c, maxCount))
        throw std::invalid_argument(describe(c) + ": a count or displacement passes " +
                                    std::to_string(maxCount) +
                                    ", but the group was to post one MPI_Ialltoallv");
      MpiOp op;
      op.kind = MpiOp::ALLTOALLV;
      for (uint32_t j = 0; j < groupSize; ++j) {
        op.sendCounts.push_back(int(c.send_counts(int(j))));
        op.sendDispls.push_back(int(sendDispls[j]));
        op.recvCounts.push_back(int(c.recv_counts(int(j))));
        op.recvDispls.push_back(int(recvDispls[j]));
      }
      ops.push_back(std::move(op));
      break;
    }
    // Point to point, per peer in pieces: receives first (so that messages find them
    // posted), then sends; the rank's own piece is a local copy. No collective call, so
    // members need not agree on the list; both sides of a pair cut their message from the
    // same count (rank a's send_counts[b] is rank b's recv_counts[a]).
    const uint32_t me = groupIndex;
    if (c.send_counts(int(me)) != c.recv_counts(int(me)))
      throw std::invalid_argument(describe(c) + ": sends " + std::to_string(c.send_counts(int(me))) +
                                  " elements to itself but receives " +
                                  std::to_string(c.recv_counts(int(me))));
    for (uint32_t j = 0; j < groupSize; ++j) {
      if (j == me || c.recv_counts(int(j)) == 0) continue;
      for (const MpiChunk &chunk : mpiChunks(c.recv_counts(int(j)), maxCount)) {
        ops.push_back(makeOp(MpiOp::RECV, chunk, 0, recvDispls[j] + chunk.offset));
        ops.back().peer = int(j), ops.back().tag = tag;
      }
    }
    for (uint32_t j = 0; j < groupSize; ++j) {
      if (j == me || c.send_counts(int(j)) == 0) continue;
      for (const MpiChunk &chunk : mpiChunks(c.send_counts(int(j)), maxCount)) {
        ops.push_back(makeOp(MpiOp::SEND, chunk, sendDispls[j] + chunk.offset, 0));
        ops.back().peer = int(j), ops.back().tag = tag;
      }
    }
    if (c.send_counts(int(me)) != 0)
      for (const MpiChunk &chunk : mpiChunks(c.send_counts(int(me)), maxCount))
        ops.push_back(makeOp(MpiOp::COPY, chunk, sendDispls[me] + chunk.offset,
                             recvDispls[me] + chunk.offset));
    break;
  }

  case plan::SEND:
  case plan::RECV: {
    // Pieces in order; the receiver cuts the same count alike, and pieces with one tag
    // between two ranks match in order.
    if (c.peer() >= groupSize)
      throw std::invalid_argument(describe(c) + ": peer " + std::to_string(c.peer()) +
                                  " in a group of " + std::to_string(groupSize));
    const bool send = c.kind() == plan::SEND;
    for (const MpiChunk &chunk : mpiChunks(n, maxCount)) {
      ops.push_back(makeOp(send ? MpiOp::SEND : MpiOp::RECV, chunk, send ? chunk.offset : 0,
                           send ? 0 : chunk.offset));
      ops.back().peer = int(c.peer()), ops.back().tag = tag;
    }
    break;
  }

  default:
    throw std::invalid_argument("collective kind " + plan::CollectiveKind_Name(c.kind()) +
                                " is not supported");
  }
  return ops;
}

} // namespace moeplan::runtime
