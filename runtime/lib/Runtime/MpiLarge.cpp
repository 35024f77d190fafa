// Blocking transfers of 64-bit counts as int-count pieces (MpiLarge.h).
#include "moeplan/Runtime/MpiLarge.h"

#include "moeplan/Runtime/MpiLowering.h"

#include <stdexcept>
#include <string>

namespace moeplan::runtime {

namespace {

// Bytes between consecutive elements of `type`, as MPI lays out count > 1 of them.
MPI_Aint extentOf(MPI_Datatype type) {
  MPI_Aint lb = 0, extent = 0;
  MPI_Type_get_extent(type, &lb, &extent);
  return extent;
}

} // namespace

void sendLarge(const void *buf, uint64_t count, MPI_Datatype type, int dest, int tag,
               MPI_Comm comm, uint64_t maxCount) {
  const MPI_Aint extent = extentOf(type);
  for (const MpiChunk &chunk : mpiChunks(count, maxCount))
    MPI_Send(static_cast<const char *>(buf) + MPI_Aint(chunk.offset) * extent, chunk.count, type,
             dest, tag, comm);
}

void recvLarge(void *buf, uint64_t count, MPI_Datatype type, int source, int tag,
               MPI_Comm comm, uint64_t maxCount) {
  const MPI_Aint extent = extentOf(type);
  for (const MpiChunk &chunk : mpiChunks(count, maxCount)) {
    MPI_Status status;
    MPI_Recv(static_cast<char *>(buf) + MPI_Aint(chunk.offset) * extent, chunk.count, type,
             source, tag, comm, &status);
    int got = 0;
    MPI_Get_count(&status, type, &got);
    if (got != chunk.count)
      throw std::runtime_error("receiving " + std::to_string(count) + " elements from rank " +
                               std::to_string(status.MPI_SOURCE) + ": the piece at " +
                               std::to_string(chunk.offset) + " has " + std::to_string(got) +
                               " elements, not " + std::to_string(chunk.count));
  }
}

} // namespace moeplan::runtime
