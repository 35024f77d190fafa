// Whether the job is alive: a stall is a stall of the job, not of one rank.
//
// A rank waiting in a collective cannot tell a peer that is computing a long kernel from one
// that is gone; only the peers can. So every rank runs a liveness thread on a duplicate of
// MPI_COMM_WORLD (MPI_THREAD_MULTIPLE) that watches two things with --stall-timeout T:
//
//  - Heartbeats around a ring: each rank sends a beat to rank+1 every min(1 s, T/4). A rank
//    that hears nothing from rank-1 for T names it as stopped or unreachable and ends the
//    job. A busy rank's thread keeps beating; a stopped (SIGSTOP) or frozen one does not; a
//    dead one is ended by mpirun before the timer matters.
//  - Progress of the whole job: rank 0 sends a token around the ring each period; every rank
//    marks it active if it completed an instruction since the token last passed, is inside
//    a kernel, or is not executing the plan at all (loading, writing results). When no rank
//    has been active for T, the job is deadlocked although every rank is alive, and rank 0
//    ends it. (MPI and NCCL do not report partial progress of one operation, so T must
//    exceed the longest single collective: the default 120 s does by far.)
//
// Finishing: ranks say goodbye in ring order (rank 0 first, then each rank after its
// predecessor did and its own work is done), so no beat or token is ever left unreceived
// and a rank that finishes early is not mistaken for a stopped one.
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace moeplan::runtime {

class Liveness {
public:
  // Collective over MPI_COMM_WORLD. `lost` is called (from the liveness thread) with the
  // message to end the job with; it must not return.
  Liveness(double timeoutSeconds, std::function<void(const std::string &)> lost);
  ~Liveness();  // finish()
  Liveness(const Liveness &) = delete;
  Liveness &operator=(const Liveness &) = delete;

  // What the walker reports. Between beginExecute and endExecute a rank counts as active
  // only while it progresses or computes; outside, it always counts as active.
  void beginExecute() { executing_.store(true); }
  void endExecute() { executing_.store(false); }
  void progressed() { progress_.fetch_add(1, std::memory_order_relaxed); }
  // Inside a kernel (or a device has kernels in flight): calls nest.
  void busy(bool entering) { busy_.fetch_add(entering ? 1 : -1, std::memory_order_relaxed); }

  // Says goodbye in ring order and stops the thread (idempotent).
  void finish();

private:
  void watch();
  bool activeSinceLastAsked();

  const double timeout_;
  const std::function<void(const std::string &)> lost_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::atomic<bool> executing_{false}, finishing_{false};
  std::atomic<uint64_t> progress_{0};
  std::atomic<int> busy_{0};
  uint64_t lastSeenProgress_ = 0;
  std::thread thread_;
};

} // namespace moeplan::runtime
