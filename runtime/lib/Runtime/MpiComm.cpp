// The MPI communication backend: one communicator per mesh axis (MPI_Comm_split of the
// world by group), non-blocking operations posted by the walker's communication thread and
// progressed with MPI_Test. With a device arena (the cuda compute backend) each operation's
// buffers are staged through pinned host memory: the input is copied down before the
// operation is posted, the output copied up when it completes.
//
// "mpi-queued" (a test of the executor's paths for queued communication, as NCCL's): each
// operation is a host task queued on its plan stream of the cpu-queued backend, which posts
// it and polls it to completion in stream order; MPI calls from the stream workers are
// serialised by a mutex (MPI_THREAD_SERIALIZED).
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Runtime/Backend.h"
#include "moeplan/Runtime/DTypes.h"

#include <mpi.h>

#include <array>
#include <chrono>
#include <mutex>
#include <thread>
#include <climits>
#include <map>
#include <stdexcept>

namespace moeplan::runtime {

namespace {

MPI_Datatype mpiType(plan::DType t) {
  switch (t) {
  case plan::I32: return MPI_INT32_T;
  case plan::F32: return MPI_FLOAT;
  default: return MPI_UINT16_T;  // F16/BF16: moved as bits; reductions are widened (start)
  }
}

int mpiCount(uint64_t count, const plan::Collective &c) {
  if (count > uint64_t(INT_MAX))
    throw std::runtime_error(plan::CollectiveKind_Name(c.kind()) + " of " + std::to_string(count) +
                             " elements: more than MPI's int counts hold");
  return int(count);
}

class MpiComm final : public CommBackend {
public:
  MpiComm(ComputeBackend &compute, bool queued) : compute_(compute), queued_(queued) {
    if (queued && std::string(compute.name()) != "cpu-queued")
      throw UnusableInput("--comm mpi-queued queues MPI on the streams of --backend cpu-queued "
                          "(a test of the executor); use --comm mpi or nccl");
  }
  ~MpiComm() override {
    for (auto &[axis, comm] : comms_) MPI_Comm_free(&comm);
  }

  const char *name() const override { return queued_ ? "mpi-queued" : "mpi"; }
  bool queued() const override { return queued_; }

  void connect(const plan::Plan &plan, uint32_t rank) override {
    for (const plan::GroupMembership &m : plan.ranks(int(rank)).groups()) {
      MPI_Comm comm;
      MPI_Comm_split(MPI_COMM_WORLD, int(m.group()), int(m.index()), &comm);
      comms_[m.axis()] = comm;
    }
  }

  CommRequest start(int instruction, uint32_t stream, const plan::Collective &c, std::byte *in,
                    uint64_t inBytes, std::byte *out, uint64_t outBytes) override {
    if (queued_) {
      // The arena is host memory, read and written in stream order.
      compute_.enqueueHost(stream, [this, &c, in, out] {
        InFlight f;
        std::unique_lock<std::mutex> lock(mpiMutex_);
        post(c, in, out, c.dtype(), f);
        for (int done = 0;;) {
          MPI_Test(&f.request, &done, MPI_STATUS_IGNORE);
          if (done) return;
          lock.unlock();
          std::this_thread::sleep_for(std::chrono::microseconds(5));
          lock.lock();
        }
      });
      return CommRequest{instruction};
    }
    InFlight &f = inFlight_[instruction];
    void *sendBuf = in, *recvBuf = out;
    const bool reduction = c.kind() == plan::ALL_REDUCE || c.kind() == plan::REDUCE_SCATTER;
    plan::DType type = c.dtype();
    if (compute_.queued()) {
      // Host staging: pinned buffers per instruction and side, kept for later iterations.
      // MPI has no 16-bit float sum: reductions of F16/BF16 are staged as F32 (summed in
      // F32, rounded once when copied back).
      f.widened = reduction && type != plan::F32 && type != plan::I32 ? type : plan::DTYPE_UNSPECIFIED;
      const uint64_t widen = f.widened ? 2 : 1;
      Staging &s = staging_[instruction];
      if (in && !s.in) s.in = compute_.hostStaging(inBytes * widen);
      if (out && !s.out) s.out = in == out ? s.in : compute_.hostStaging(outBytes * widen);
      if (in) download(in, s.in, inBytes, f.widened);
      sendBuf = s.in;
      recvBuf = s.out;
      f.stagedOut = out, f.stagedOutHost = s.out, f.stagedOutBytes = out ? outBytes : 0;
      if (f.widened) type = plan::F32;
    } else if (reduction && type != plan::F32 && type != plan::I32) {
      throw std::runtime_error(plan::CollectiveKind_Name(c.kind()) + " of " +
                               plan::DType_Name(type) + " on host memory: MPI has no 16-bit sum");
    }
    post(c, sendBuf, recvBuf, type, f);
    return CommRequest{instruction};
  }

  bool test(CommRequest &r) override {
    InFlight &f = inFlight_.at(r.instruction);
    int done = 0;
    MPI_Test(&f.request, &done, MPI_STATUS_IGNORE);
    if (!done) return false;
    if (f.stagedOut) upload(f.stagedOut, f.stagedOutHost, f.stagedOutBytes, f.widened);
    inFlight_.erase(r.instruction);
    return true;
  }

  std::string asyncError() override { return ""; }
  void abort() override {}  // the walker's MPI_Abort ends every rank

private:
  struct InFlight;
  // Posts `c` on buffers sendBuf/recvBuf of `type` (the collective's, or F32 where staging
  // widened it); MPI keeps f's count arrays until the request completes.
  void post(const plan::Collective &c, void *sendBuf, void *recvBuf, plan::DType type, InFlight &f) {
    MPI_Comm comm = comms_.at(c.axis());
    const MPI_Datatype mpiDType = mpiType(type);
    const int count = mpiCount(c.count(), c);
    const int tag = int(c.sequence() % 32768);  // SEND/RECV pairs share their sequence
    MPI_Request &request = f.request;
    switch (c.kind()) {
    case plan::ALL_REDUCE:
      MPI_Iallreduce(sendBuf == recvBuf ? MPI_IN_PLACE : sendBuf, recvBuf, count, mpiDType, MPI_SUM,
                     comm, &request);
      break;
    case plan::ALL_GATHER:
      MPI_Iallgather(sendBuf, count, mpiDType, recvBuf, count, mpiDType, comm, &request);
      break;
    case plan::REDUCE_SCATTER:
      MPI_Ireduce_scatter_block(sendBuf, recvBuf, count, mpiDType, MPI_SUM, comm, &request);
      break;
    case plan::ALL_TO_ALL: {
      // MPI reads the count and displacement arrays until the request completes.
      auto &[sc, sd, rc, rd] = f.counts;
      for (uint64_t n : c.send_counts()) sc.push_back(mpiCount(n, c));
      for (uint64_t n : c.recv_counts()) rc.push_back(mpiCount(n, c));
      sd.assign(sc.size(), 0);
      rd.assign(rc.size(), 0);
      for (size_t j = 1; j < sc.size(); ++j) sd[j] = sd[j - 1] + sc[j - 1];
      for (size_t j = 1; j < rc.size(); ++j) rd[j] = rd[j - 1] + rc[j - 1];
      MPI_Ialltoallv(sendBuf, sc.data(), sd.data(), mpiDType, recvBuf, rc.data(), rd.data(), mpiDType,
                     comm, &request);
      break;
    }
    case plan::SEND:
      MPI_Isend(sendBuf, count, mpiDType, int(c.peer()), tag, comm, &request);
      break;
    case plan::RECV:
      MPI_Irecv(recvBuf, count, mpiDType, int(c.peer()), tag, comm, &request);
      break;
    default:
      throw std::runtime_error("collective kind " + plan::CollectiveKind_Name(c.kind()) +
                               " is not supported");
    }
  }

  // Copies between the arena and host staging; `widened` (a 16-bit dtype, or unspecified)
  // holds the host side as F32.
  void download(const std::byte *arena, void *host, uint64_t bytes, plan::DType widened) {
    if (!widened) return compute_.download(arena, host, bytes);
    std::vector<std::byte> narrow(bytes);
    compute_.download(arena, narrow.data(), bytes);
    convert(widened, narrow.data(), plan::F32, host, bytes / 2);
  }
  void upload(std::byte *arena, const void *host, uint64_t bytes, plan::DType widened) {
    if (!widened) return compute_.upload(arena, host, bytes);
    std::vector<std::byte> narrow(bytes);
    convert(plan::F32, host, widened, narrow.data(), bytes / 2);
    compute_.upload(arena, narrow.data(), bytes);
  }

  struct InFlight {
    MPI_Request request = MPI_REQUEST_NULL;
    plan::DType widened = plan::DTYPE_UNSPECIFIED;
    std::array<std::vector<int>, 4> counts;  // ALL_TO_ALL: send counts, displacements, recv ...
    std::byte *stagedOut = nullptr;
    void *stagedOutHost = nullptr;
    uint64_t stagedOutBytes = 0;
  };
  struct Staging {
    void *in = nullptr, *out = nullptr;
  };

  ComputeBackend &compute_;
  const bool queued_;
  std::mutex mpiMutex_;  // mpi-queued: the stream workers' MPI calls, one at a time
  std::map<std::string, MPI_Comm> comms_;
  std::map<int, InFlight> inFlight_;  // by instruction
  std::map<int, Staging> staging_;
};

} // namespace

std::unique_ptr<CommBackend> makeMpiComm(ComputeBackend &compute, bool queued) {
  return std::make_unique<MpiComm>(compute, queued);
}

} // namespace moeplan::runtime
