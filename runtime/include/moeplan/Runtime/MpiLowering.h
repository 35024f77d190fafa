// Plan collectives as MPI calls with `int` counts. MPI takes counts and displacements as
// int, but a plan's counts are 64-bit (a KV cache alone can pass 2^31 elements per rank):
// lowerCollective turns one plan::Collective into a list of primitive MPI operations, each
// within `maxCount` elements and placed by 64-bit element offsets, which MpiComm.cpp posts.
// When everything fits it is the one native call (the fast path). "Everything" includes
// the gathered or scattered buffer of ALL_GATHER and REDUCE_SCATTER (group x count): Open
// MPI's non-blocking collectives (coll/libnbc) compute its size and rank offsets in int.
// Pure arithmetic without MPI, so that test/unit/MpiLoweringTest.cpp checks it on a
// simulated communicator.
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <climits>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace moeplan::runtime {

// The largest count one MPI call takes: INT_MAX, or the environment's
// MOEPLAN_MPI_MAX_COUNT, a testing aid (a small value runs the chunked paths below on
// small plans, under real MPI). Throws UnusableInput for a value outside 1..INT_MAX.
uint64_t mpiMaxCount();

// [offset, offset + count) of [0, total): total cut into pieces of at most maxCount, in
// order; a total of 0 is one empty piece (the call is still made, so that both sides of a
// message or collective agree on the number of calls).
struct MpiChunk {
  uint64_t offset = 0;
  int count = 0;
};
std::vector<MpiChunk> mpiChunks(uint64_t total, uint64_t maxCount);

// The tag of every point-to-point message of the collective with this sequence: SEND/RECV
// pairs share their sequence, and the pieces of one collective's messages between two
// ranks share the tag and match in posting order (MPI's non-overtaking rule; both sides
// cut them alike). Two collectives in flight on one communicator have different sequences
// (they increase in issue order), so their messages cannot match each other unless 32767
// sequences apart. A GENERATE plan's feeding transfers (Collective.feeds_next_step) cross
// parts, whose sequences are unrelated: they take kFeedTag, and match in posting order
// (the only messages from the last stage to the first). 32767 is the least MPI_TAG_UB MPI
// guarantees.
constexpr int kFeedTag = 32767;
int mpiTag(uint64_t sequence);

// One primitive MPI operation. Counts are elements of the collective's MPI type; offsets
// are elements from the start of the send (input) and receive (output) buffer.
struct MpiOp {
  enum Kind {
    ALLREDUCE,             // MPI_Iallreduce, sum (in place where both buffers are one)
    ALLGATHER,             // MPI_Iallgather of `count` per rank (recvStride below)
    REDUCE_SCATTER_BLOCK,  // MPI_Ireduce_scatter_block, sum: `count` per rank
    REDUCE,                // MPI_Ireduce, sum, to root `peer`; recvOffset matters at the root
    ALLTOALLV,             // MPI_Ialltoallv with the four arrays below
    SEND,                  // MPI_Isend of `count` at sendOffset to `peer` with `tag`
    RECV,                  // MPI_Irecv of `count` at recvOffset from `peer` with `tag`
    COPY,                  // a local copy: ALL_TO_ALL's own piece, no message needed
  };
  Kind kind = ALLREDUCE;
  int count = 0;
  uint64_t sendOffset = 0, recvOffset = 0;
  // ALLGATHER: 0 for the native call (rank i's piece at recvOffset + i x count); else the
  // receive type is `count` elements resized to an extent of recvStride elements, one per
  // rank (rank i's piece at recvOffset + i x recvStride).
  uint64_t recvStride = 0;
  int peer = 0;  // position in the group
  int tag = 0;
  std::vector<int> sendCounts, sendDispls, recvCounts, recvDispls;  // ALLTOALLV
};

// Whether this rank's ALL_TO_ALL fits one MPI_Ialltoallv: every count and displacement
// (the prefix sums of the counts, peer order) is at most maxCount.
bool allToAllvFits(const plan::Collective &c, uint64_t maxCount);

// The ALL_TO_ALLs of the plan, as (axis, sequence), that some rank cannot post as one
// MPI_Ialltoallv. That call is collective, so the whole group must choose it or not, yet
// each member knows only its own counts; every member computes this same set from the plan.
std::set<std::pair<std::string, uint64_t>> pointToPointAllToAlls(const plan::Plan &plan,
                                                                 uint64_t maxCount);

// Collective `c` of this rank, at position groupIndex of a group of groupSize, as
// primitive operations in posting order: their collective operations come in the same
// order on every member (MPI requires it of non-blocking collectives on a communicator).
// `allToAllNative`: ALL_TO_ALL only, whether the group posts one Ialltoallv (no member's
// collective in pointToPointAllToAlls). Throws std::invalid_argument for counts that
// disagree with the group, a maxCount outside 1..INT_MAX or an unsupported kind.
std::vector<MpiOp> lowerCollective(const plan::Collective &c, uint32_t groupSize,
                                   uint32_t groupIndex, uint64_t maxCount, bool allToAllNative);

} // namespace moeplan::runtime
