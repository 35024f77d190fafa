// Blocking point-to-point transfers of any 64-bit count: MPI takes int counts, so the
// message goes as pieces of at most maxCount elements (mpiChunks, MpiLowering.h), which
// the receiver cuts alike and MPI matches in order (same source, tag and communicator).
// For the executor's gathers to rank 0 (outputs, trace), which may pass 2^31 elements.
#pragma once

#include <mpi.h>

#include <climits>
#include <cstdint>

namespace moeplan::runtime {

// Sends `count` elements of `type` at buf to `dest` (MPI_Send per piece).
void sendLarge(const void *buf, uint64_t count, MPI_Datatype type, int dest, int tag,
               MPI_Comm comm, uint64_t maxCount = INT_MAX);
// Receives what sendLarge sent with the same count and maxCount (MPI_Recv per piece); throws
// std::runtime_error when a piece arrives shorter than expected.
void recvLarge(void *buf, uint64_t count, MPI_Datatype type, int source, int tag,
               MPI_Comm comm, uint64_t maxCount = INT_MAX);

} // namespace moeplan::runtime
