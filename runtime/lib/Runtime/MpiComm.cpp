// The MPI communication backend: one communicator per mesh axis (MPI_Comm_split of the
// world by group), non-blocking operations posted by the walker's communication thread and
// progressed with MPI_Test. With a device arena (the cuda compute backend) each operation's
// buffers are staged through pinned host memory: the input is copied down before the
// operation is posted, the output copied up when it completes.
//
// "mpi-queued" (a test of the executor's paths for queued communication, as NCCL's): each
// operation is a host task queued on its plan stream of the cpu-queued backend, which posts
// it and polls it to completion in stream order; the stream workers take turns at MPI
// (a mutex), as one communication thread would.
//
// Plan counts are 64-bit, MPI's int: each collective is lowered (MpiLowering.h) to a list of
// primitive MPI operations, the one native call when its counts fit, and its request
// completes when all of theirs have. MOEPLAN_MPI_MAX_COUNT, a testing aid, lowers the
// limit from INT_MAX so that small plans take the cut paths (test/runtime/mpi-chunked.test).
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Runtime/Backend.h"
#include "moeplan/Runtime/DTypes.h"
#include "moeplan/Runtime/MpiLowering.h"

#include <mpi.h>

#include <chrono>
#include <climits>
#include <mutex>
#include <thread>
#include <cstring>
#include <map>
#include <set>
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

class MpiComm final : public CommBackend {
public:
  MpiComm(ComputeBackend &compute, bool queued)
      : compute_(compute), queued_(queued), maxCount_(mpiMaxCount()) {
    if (queued && std::string(compute.name()) != "cpu-queued")
      throw UnusableInput("--comm mpi-queued queues MPI on the streams of --backend cpu-queued "
                          "(a test of the executor); use --comm mpi or nccl");
  }
  ~MpiComm() override {
    for (auto &[axis, group] : groups_) MPI_Comm_free(&group.comm);
  }

  const char *name() const override { return queued_ ? "mpi-queued" : "mpi"; }
  bool queued() const override { return queued_; }

  void connect(const plan::Plan &plan, uint32_t rank) override {
    for (const plan::GroupMembership &m : plan.ranks(int(rank)).groups()) {
      Group g;
      MPI_Comm_split(MPI_COMM_WORLD, int(m.group()), int(m.index()), &g.comm);
      MPI_Comm_size(g.comm, &g.size);
      MPI_Comm_rank(g.comm, &g.index);
      groups_[m.axis()] = g;
    }
    pointToPointAllToAlls_ = pointToPointAllToAlls(plan, maxCount_);
  }

  CommRequest start(int instruction, uint32_t stream, const plan::Collective &c, std::byte *in,
                    uint64_t inBytes, std::byte *out, uint64_t outBytes) override {
    if (queued_) {
      // The arena is host memory, read and written in stream order.
      compute_.enqueueHost(stream, [this, &c, in, out] {
        InFlight f;
        std::unique_lock<std::mutex> lock(mpiMutex_);
        post(c, in, out, c.dtype(), f);
        while (!complete(f)) {
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

  // Host memory and host progress only: staged (cuda) and queued (mpi-queued) operations
  // move the padded capacity.
  bool routedRows() const override { return !queued_ && !compute_.queued(); }

  // Progressed by test in up to three phases: the counts (each member's filled rows per
  // segment of what it receives: an all-to-all's pieces by MPI_Ialltoall, a gather's by
  // MPI_Iallgather; a reduce-scatter's members hold the same rows, the expert-TP peers having
  // computed on one gathered set, so it needs none), then the filled rows packed and moved
  // (Ialltoallv, Iallgatherv, Ireduce_scatter), then unpacked into the padded output.
  CommRequest startRouted(int instruction, const plan::Collective &c, std::byte *in,
                          std::byte *out, uint64_t rowBytes, const RowFill &inFill,
                          RowFill *outFill) override {
    if (c.kind() != plan::ALL_TO_ALL && c.kind() != plan::ALL_GATHER && c.kind() != plan::REDUCE_SCATTER)
      throw std::runtime_error(plan::CollectiveKind_Name(c.kind()) + " has no routed form");
    if (c.kind() == plan::REDUCE_SCATTER && c.dtype() != plan::F32)
      throw std::runtime_error("routed REDUCE_SCATTER of " + plan::DType_Name(c.dtype()) +
                               " on host memory: MPI has no 16-bit sum");
    const Group &g = groups_.at(c.axis());
    const int64_t segs = inFill.segments();
    if (c.kind() != plan::ALL_GATHER && segs % g.size != 0)
      throw std::runtime_error("routed " + plan::CollectiveKind_Name(c.kind()) + ": " +
                               std::to_string(segs) + " segments do not split over " +
                               std::to_string(g.size) + " members");
    Routed &r = routed_[instruction];
    r = Routed{};
    r.c = &c, r.in = in, r.out = out, r.rowBytes = rowBytes, r.inFill = inFill, r.outFill = outFill;
    r.comm = g.comm, r.size = g.size, r.index = g.index;
    r.result.segmentRows = inFill.segmentRows;
    if (c.kind() == plan::REDUCE_SCATTER) {
      r.result = inFill.part(g.size, g.index);
      postRows(r);
      return CommRequest{instruction};
    }
    // The output's fill: piece q from member q (its piece for this rank, or all of it).
    const int each = int(c.kind() == plan::ALL_TO_ALL ? segs / g.size : segs);
    r.result.filled.resize(size_t(each) * size_t(g.size));
    MPI_Request &request = r.requests.emplace_back(MPI_REQUEST_NULL);
    if (c.kind() == plan::ALL_TO_ALL)
      MPI_Ialltoall(r.inFill.filled.data(), each, MPI_INT32_T, r.result.filled.data(), each,
                    MPI_INT32_T, g.comm, &request);
    else
      MPI_Iallgather(r.inFill.filled.data(), each, MPI_INT32_T, r.result.filled.data(), each,
                     MPI_INT32_T, g.comm, &request);
    return CommRequest{instruction};
  }

  bool test(CommRequest &r) override {
    if (auto it = routed_.find(r.instruction); it != routed_.end()) {
      if (!progressRouted(it->second)) return false;
      routed_.erase(it);
      return true;
    }
    InFlight &f = inFlight_.at(r.instruction);
    if (!complete(f)) return false;
    if (f.stagedOut) upload(f.stagedOut, f.stagedOutHost, f.stagedOutBytes, f.widened);
    inFlight_.erase(r.instruction);
    return true;
  }

  std::string asyncError() override { return ""; }
  void abort() override {}  // the walker's MPI_Abort ends every rank

private:
  struct InFlight;
  // Posts `c` on buffers sendBuf/recvBuf of `type` (the collective's, or F32 where staging
  // widened it) as the operations of its lowering; f keeps them (Ialltoallv reads their
  // count arrays), their requests and derived types until they complete.
  void post(const plan::Collective &c, void *sendBuf, void *recvBuf, plan::DType type, InFlight &f) {
    const Group &g = groups_.at(c.axis());
    const bool allToAllNative = !pointToPointAllToAlls_.count({c.axis(), c.sequence()});
    f.ops = lowerCollective(c, uint32_t(g.size), uint32_t(g.index), maxCount_, allToAllNative);
    const MPI_Datatype mpiDType = mpiType(type);
    const uint64_t bytes = planfile::dtypeBytes(type);
    auto *send = static_cast<std::byte *>(sendBuf);
    auto *recv = static_cast<std::byte *>(recvBuf);
    for (MpiOp &op : f.ops) {
      std::byte *s = send ? send + op.sendOffset * bytes : nullptr;
      std::byte *r = recv ? recv + op.recvOffset * bytes : nullptr;
      if (op.kind == MpiOp::COPY) {
        std::memcpy(r, s, uint64_t(op.count) * bytes);
        continue;
      }
      MPI_Request &request = f.requests.emplace_back(MPI_REQUEST_NULL);
      switch (op.kind) {
      case MpiOp::ALLREDUCE:
        MPI_Iallreduce(s == r ? MPI_IN_PLACE : s, r, op.count, mpiDType, MPI_SUM, g.comm, &request);
        break;
      case MpiOp::ALLGATHER: {
        MPI_Datatype recvType = mpiDType;
        int recvCount = op.count;
        if (op.recvStride) {
          // A piece of a larger gather: `count` elements that step a whole piece apart.
          MPI_Datatype piece;
          MPI_Type_contiguous(op.count, mpiDType, &piece);
          MPI_Type_create_resized(piece, 0, MPI_Aint(op.recvStride * bytes), &recvType);
          MPI_Type_free(&piece);
          MPI_Type_commit(&recvType);
          f.types.push_back(recvType);
          recvCount = 1;
        }
        MPI_Iallgather(s, op.count, mpiDType, r, recvCount, recvType, g.comm, &request);
        break;
      }
      case MpiOp::REDUCE_SCATTER_BLOCK:
        MPI_Ireduce_scatter_block(s, r, op.count, mpiDType, MPI_SUM, g.comm, &request);
        break;
      case MpiOp::REDUCE:
        MPI_Ireduce(s, r, op.count, mpiDType, MPI_SUM, op.peer, g.comm, &request);
        break;
      case MpiOp::ALLTOALLV:
        MPI_Ialltoallv(s, op.sendCounts.data(), op.sendDispls.data(), mpiDType, r,
                       op.recvCounts.data(), op.recvDispls.data(), mpiDType, g.comm, &request);
        break;
      case MpiOp::SEND:
        MPI_Isend(s, op.count, mpiDType, op.peer, op.tag, g.comm, &request);
        break;
      case MpiOp::RECV:
        MPI_Irecv(r, op.count, mpiDType, op.peer, op.tag, g.comm, &request);
        break;
      case MpiOp::COPY:
        break;
      }
    }
  }

  // Whether all of f's operations completed; then frees its derived types.
  bool complete(InFlight &f) {
    int done = 0;
    MPI_Testall(int(f.requests.size()), f.requests.data(), &done, MPI_STATUSES_IGNORE);
    if (!done) return false;
    for (MPI_Datatype &t : f.types) MPI_Type_free(&t);
    f.types.clear();
    return true;
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

  // A routed collective in flight (startRouted).
  struct Routed {
    const plan::Collective *c = nullptr;
    MPI_Comm comm = MPI_COMM_NULL;
    int size = 1, index = 0;  // the group's size and this rank's position
    std::byte *in = nullptr, *out = nullptr;
    uint64_t rowBytes = 0;
    RowFill inFill;
    RowFill *outFill = nullptr;
    bool rowsPosted = false;     // else the counts are in flight
    std::vector<MPI_Request> requests;
    std::vector<std::byte> sendRows, recvRows;  // packed
    std::vector<int> sendCounts, sendDispls, recvCounts, recvDispls;
    MPI_Datatype row = MPI_DATATYPE_NULL;
    RowFill result;  // the output's fill
  };

  static int mpiCount(int64_t n, const char *what) {
    if (n > INT_MAX)
      throw std::runtime_error(std::string("routed ") + what + " of " + std::to_string(n) +
                               " exceeds MPI's int count");
    return int(n);
  }

  // Advances a routed collective; true once its output and fill are in place.
  bool progressRouted(Routed &r) {
    int done = 0;
    MPI_Testall(int(r.requests.size()), r.requests.data(), &done, MPI_STATUSES_IGNORE);
    if (!done) return false;
    r.requests.clear();
    if (!r.rowsPosted) {
      postRows(r);
      return false;
    }
    // Rows arrived: into their segments of the padded output.
    unpackRows(r.recvRows.data(), r.rowBytes, r.result, 0, r.result.segments(), r.out);
    if (r.row != MPI_DATATYPE_NULL) MPI_Type_free(&r.row);
    *r.outFill = std::move(r.result);
    return true;
  }

  // Packs the input's filled rows, piece by piece, and posts their move (r.result, the
  // output's fill, known).
  void postRows(Routed &r) {
    r.rowsPosted = true;
    const plan::Collective &c = *r.c;
    const int size = r.size;
    const int64_t segs = r.inFill.segments(), each = segs / size;  // a piece, but for a gather
    r.sendCounts.assign(size_t(size), 0), r.sendDispls.assign(size_t(size), 0);
    r.recvCounts.assign(size_t(size), 0), r.recvDispls.assign(size_t(size), 0);
    r.sendRows.resize(uint64_t(r.inFill.filledRows()) * r.rowBytes);
    int64_t at = 0;
    if (c.kind() == plan::ALL_GATHER) {
      at = packRows(r.in, r.rowBytes, r.inFill, 0, segs, r.sendRows.data());
    } else {
      for (int p = 0; p < size; ++p) {
        r.sendDispls[size_t(p)] = mpiCount(at, "rows");
        at += packRows(r.in, r.rowBytes, r.inFill, p * each, (p + 1) * each,
                       r.sendRows.data() + uint64_t(at) * r.rowBytes);
        r.sendCounts[size_t(p)] = mpiCount(at, "rows") - r.sendDispls[size_t(p)];
      }
    }
    MPI_Request &request = r.requests.emplace_back(MPI_REQUEST_NULL);
    if (c.kind() == plan::REDUCE_SCATTER) {
      // Summed as floats: piece p's filled rows from every member, the same on each.
      const int64_t floats = int64_t(r.rowBytes / sizeof(float));
      for (int p = 0; p < size; ++p)
        r.recvCounts[size_t(p)] = mpiCount(int64_t(r.sendCounts[size_t(p)]) * floats, "reduce-scatter elements");
      r.recvRows.resize(uint64_t(r.result.filledRows()) * r.rowBytes);
      MPI_Ireduce_scatter(r.sendRows.data(), r.recvRows.data(), r.recvCounts.data(), MPI_FLOAT,
                          MPI_SUM, r.comm, &request);
      return;
    }
    countsAndDispls(r);
    MPI_Type_contiguous(mpiCount(int64_t(r.rowBytes), "row bytes"), MPI_BYTE, &r.row);
    MPI_Type_commit(&r.row);
    if (c.kind() == plan::ALL_TO_ALL)
      MPI_Ialltoallv(r.sendRows.data(), r.sendCounts.data(), r.sendDispls.data(), r.row,
                     r.recvRows.data(), r.recvCounts.data(), r.recvDispls.data(), r.row, r.comm,
                     &request);
    else
      MPI_Iallgatherv(r.sendRows.data(), mpiCount(at, "rows"), r.row, r.recvRows.data(),
                      r.recvCounts.data(), r.recvDispls.data(), r.row, r.comm, &request);
  }
  // The receive side of an all-to-all or all-gather: member q's rows are those of the
  // output's piece q.
  static void countsAndDispls(Routed &r) {
    const int size = int(r.recvCounts.size());
    const int64_t each = r.result.segments() / size;
    int64_t at = 0;
    for (int q = 0; q < size; ++q) {
      r.recvDispls[size_t(q)] = mpiCount(at, "received rows");
      at += r.result.filledRows(q * each, (q + 1) * each);
      r.recvCounts[size_t(q)] = mpiCount(at, "received rows") - r.recvDispls[size_t(q)];
    }
    r.recvRows.resize(uint64_t(at) * r.rowBytes);
  }

  struct InFlight {
    std::vector<MpiOp> ops;  // the lowered collective
    std::vector<MPI_Request> requests;
    std::vector<MPI_Datatype> types;  // derived types of the requests
    plan::DType widened = plan::DTYPE_UNSPECIFIED;
    std::byte *stagedOut = nullptr;
    void *stagedOutHost = nullptr;
    uint64_t stagedOutBytes = 0;
  };
  struct Staging {
    void *in = nullptr, *out = nullptr;
  };
  struct Group {
    MPI_Comm comm = MPI_COMM_NULL;
    int size = 1, index = 0;  // this rank's position
  };

  ComputeBackend &compute_;
  const bool queued_;
  const uint64_t maxCount_;  // the largest count of one MPI call (mpiMaxCount)
  std::mutex mpiMutex_;  // mpi-queued: the stream workers' MPI calls, one at a time
  std::map<std::string, Group> groups_;  // by axis
  std::set<std::pair<std::string, uint64_t>> pointToPointAllToAlls_;
  std::map<int, InFlight> inFlight_;  // by instruction
  std::map<int, Routed> routed_;      // by instruction
  std::map<int, Staging> staging_;
};

} // namespace

std::unique_ptr<CommBackend> makeMpiComm(ComputeBackend &compute, bool queued) {
  return std::make_unique<MpiComm>(compute, queued);
}

} // namespace moeplan::runtime
