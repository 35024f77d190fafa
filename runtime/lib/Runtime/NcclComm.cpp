// The NCCL communication backend. NCCL is loaded with dlopen (libnccl.so.2), so moeplan-run
// starts, and runs --comm mpi, where NCCL is not installed. The world communicator is
// bootstrapped over MPI (rank 0's ncclUniqueId broadcast), then one communicator per mesh
// axis is split from it (ncclCommSplit: color = the rank's group on that axis, key = its
// position in it). Communicators are non-blocking, so that no call can wait forever: every
// call that reports ncclInProgress is polled with ncclCommGetAsyncError under a time limit,
// and the walker polls asyncError while the device runs; ncclCommAbort ends what is in
// flight. Collectives are queued on the compute backend's CUDA streams in the plan's global
// order; the variable all-to-all is ncclSend/ncclRecv to every peer in one group.
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Runtime/Backend.h"

#include <mpi.h>
#include <nccl.h>

#include <dlfcn.h>

#include <chrono>
#include <map>
#include <thread>

namespace moeplan::runtime {

namespace {

// The NCCL entry points moeplan calls, resolved from the loaded library.
struct NcclApi {
  void *library = nullptr;
  decltype(&::ncclGetVersion) getVersion = nullptr;
  decltype(&::ncclGetUniqueId) getUniqueId = nullptr;
  decltype(&::ncclCommInitRankConfig) commInitRankConfig = nullptr;
  decltype(&::ncclCommSplit) commSplit = nullptr;
  decltype(&::ncclCommAbort) commAbort = nullptr;
  decltype(&::ncclCommDestroy) commDestroy = nullptr;
  decltype(&::ncclCommGetAsyncError) commGetAsyncError = nullptr;
  decltype(&::ncclGetErrorString) getErrorString = nullptr;
  decltype(&::ncclGetLastError) getLastError = nullptr;
  decltype(&::ncclAllReduce) allReduce = nullptr;
  decltype(&::ncclAllGather) allGather = nullptr;
  decltype(&::ncclReduceScatter) reduceScatter = nullptr;
  decltype(&::ncclSend) send = nullptr;
  decltype(&::ncclRecv) recv = nullptr;
  decltype(&::ncclGroupStart) groupStart = nullptr;
  decltype(&::ncclGroupEnd) groupEnd = nullptr;

  // Loads libnccl.so.2 once; throws UnusableInput naming what is missing.
  static const NcclApi &get() {
    static NcclApi api = load();
    return api;
  }

private:
  static NcclApi load() {
    NcclApi api;
    api.library = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!api.library)
      throw UnusableInput(std::string("--comm nccl: cannot load libnccl.so.2 (") + dlerror() +
                          "); install NCCL, add its folder to LD_LIBRARY_PATH, or use --comm mpi");
    auto resolve = [&](auto &fn, const char *symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(api.library, symbol));
      if (!fn)
        throw UnusableInput(std::string("--comm nccl: libnccl.so.2 has no ") + symbol +
                            " (moeplan needs NCCL 2.18 or newer)");
    };
    resolve(api.getVersion, "ncclGetVersion");
    resolve(api.getUniqueId, "ncclGetUniqueId");
    resolve(api.commInitRankConfig, "ncclCommInitRankConfig");
    resolve(api.commSplit, "ncclCommSplit");
    resolve(api.commAbort, "ncclCommAbort");
    resolve(api.commDestroy, "ncclCommDestroy");
    resolve(api.commGetAsyncError, "ncclCommGetAsyncError");
    resolve(api.getErrorString, "ncclGetErrorString");
    resolve(api.getLastError, "ncclGetLastError");
    resolve(api.allReduce, "ncclAllReduce");
    resolve(api.allGather, "ncclAllGather");
    resolve(api.reduceScatter, "ncclReduceScatter");
    resolve(api.send, "ncclSend");
    resolve(api.recv, "ncclRecv");
    resolve(api.groupStart, "ncclGroupStart");
    resolve(api.groupEnd, "ncclGroupEnd");
    return api;
  }
};

ncclDataType_t ncclType(plan::DType t) {
  switch (t) {
  case plan::F32: return ncclFloat32;
  case plan::F16: return ncclFloat16;
  case plan::BF16: return ncclBfloat16;
  case plan::I32: return ncclInt32;
  default: throw std::runtime_error("NCCL moves F32, F16, BF16 and I32, not " + plan::DType_Name(t));
  }
}

class NcclComm final : public CommBackend {
public:
  NcclComm(ComputeBackend &compute, const BackendOptions &options)
      : api_(NcclApi::get()), compute_(compute), limitSeconds_(options.stallSeconds) {
    if (std::string(compute.name()) != "cuda")
      throw UnusableInput("--comm nccl moves device memory; it needs --backend cuda");
  }
  ~NcclComm() override {
    if (aborted_) return;
    for (auto &[axis, comm] : comms_) api_.commDestroy(comm);
    if (world_) api_.commDestroy(world_);
  }

  const char *name() const override { return "nccl"; }
  bool queued() const override { return true; }

  void connect(const plan::Plan &plan, uint32_t rank) override {
    ncclUniqueId id{};
    ncclResult_t made = ncclSuccess;
    if (rank == 0) made = api_.getUniqueId(&id);
    MPI_Bcast(&made, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (made != ncclSuccess) throw UnusableInput("rank 0: ncclGetUniqueId: " + std::string(api_.getErrorString(made)));
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    startup(api_.commInitRankConfig(&world_, plan.ranks_size(), id, int(rank), &config), world_,
            "ncclCommInitRankConfig of the world (" + std::to_string(plan.ranks_size()) + " ranks)");
    // Every rank splits once per axis, in the order its memberships list the axes (the same
    // on every rank: tp dp pp ep etp edp).
    for (const plan::GroupMembership &m : plan.ranks(int(rank)).groups()) {
      ncclComm_t comm = nullptr;
      ncclConfig_t splitConfig = NCCL_CONFIG_INITIALIZER;
      splitConfig.blocking = 0;
      startup(api_.commSplit(world_, int(m.group()), int(m.index()), &comm, &splitConfig), world_,
              "ncclCommSplit for axis " + m.axis());
      settle(comm, "ncclCommSplit for axis " + m.axis(), true);
      comms_[m.axis()] = comm;
    }
  }

  CommRequest start(int instruction, uint32_t stream, const plan::Collective &c, std::byte *in,
                    uint64_t, std::byte *out, uint64_t) override {
    ncclComm_t comm = comms_.at(c.axis());
    cudaStream_t s = static_cast<cudaStream_t>(compute_.nativeStream(stream));
    const ncclDataType_t type = ncclType(c.dtype());
    const size_t count = size_t(c.count());
    const std::string what = plan::CollectiveKind_Name(c.kind());
    switch (c.kind()) {
    case plan::ALL_REDUCE:
      call(api_.allReduce(in, out, count, type, ncclSum, comm, s), comm, what);
      break;
    case plan::ALL_GATHER:
      call(api_.allGather(in, out, count, type, comm, s), comm, what);
      break;
    case plan::REDUCE_SCATTER:
      call(api_.reduceScatter(in, out, count, type, ncclSum, comm, s), comm, what);
      break;
    case plan::ALL_TO_ALL: {
      const uint64_t bytes = planfile::dtypeBytes(c.dtype());
      uint64_t sent = 0, received = 0;
      call(api_.groupStart(), comm, what);
      for (int j = 0; j < c.send_counts_size(); ++j) {
        if (c.send_counts(j)) call(api_.send(in + sent * bytes, c.send_counts(j), type, j, comm, s), comm, what);
        if (c.recv_counts(j)) call(api_.recv(out + received * bytes, c.recv_counts(j), type, j, comm, s), comm, what);
        sent += c.send_counts(j);
        received += c.recv_counts(j);
      }
      call(api_.groupEnd(), comm, what);
      break;
    }
    case plan::SEND:
      call(api_.send(in, count, type, int(c.peer()), comm, s), comm, what);
      break;
    case plan::RECV:
      call(api_.recv(out, count, type, int(c.peer()), comm, s), comm, what);
      break;
    default:
      throw std::runtime_error("collective kind " + what + " is not supported");
    }
    return CommRequest{instruction};
  }

  bool test(CommRequest &) override { return true; }

  std::string asyncError() override {
    for (ncclComm_t comm : all()) {
      ncclResult_t state = ncclSuccess;
      if (api_.commGetAsyncError(comm, &state) == ncclSuccess && state != ncclSuccess &&
          state != ncclInProgress)
        return describe(state, comm);
    }
    return "";
  }

  void abort() override {
    if (aborted_) return;
    aborted_ = true;
    for (ncclComm_t comm : all()) api_.commAbort(comm);
  }

private:
  std::vector<ncclComm_t> all() const {
    std::vector<ncclComm_t> list;
    for (const auto &[axis, comm] : comms_) list.push_back(comm);
    if (world_) list.push_back(world_);
    return list;
  }

  std::string describe(ncclResult_t result, ncclComm_t comm) const {
    std::string text = api_.getErrorString(result);
    const char *last = api_.getLastError(comm);
    if (last && *last) text += ": " + std::string(last);
    return text;
  }

  // A non-blocking call returns ncclInProgress until the communicator settles; wait for it
  // (bounded), then report any error. `startup`: errors are UnusableInput (before compute).
  void settle(ncclComm_t comm, const std::string &what, bool atStartup) const {
    const auto begin = std::chrono::steady_clock::now();
    for (;;) {
      ncclResult_t state = ncclSuccess;
      const ncclResult_t got = api_.commGetAsyncError(comm, &state);
      if (got != ncclSuccess) state = got;
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) fail(what + ": " + describe(state, comm), atStartup);
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count() > limitSeconds_)
        fail(what + ": not done after " + std::to_string(int(limitSeconds_)) +
                 " s (a peer did not join; see its messages)", atStartup);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  [[noreturn]] static void fail(const std::string &message, bool atStartup) {
    if (atStartup) throw UnusableInput(message);
    throw std::runtime_error(message);
  }
  void startup(ncclResult_t result, ncclComm_t comm, const std::string &what) const {
    if (result != ncclSuccess && result != ncclInProgress)
      throw UnusableInput(what + ": " + api_.getErrorString(result));
    settle(comm, what, true);
  }
  void call(ncclResult_t result, ncclComm_t comm, const std::string &what) const {
    if (result != ncclSuccess && result != ncclInProgress)
      throw std::runtime_error("NCCL " + what + ": " + describe(result, comm));
    if (result == ncclInProgress) settle(comm, "NCCL " + what, false);
  }

  const NcclApi &api_;
  ComputeBackend &compute_;
  const double limitSeconds_;
  ncclComm_t world_ = nullptr;
  std::map<std::string, ncclComm_t> comms_;  // by axis
  bool aborted_ = false;
};

} // namespace

std::unique_ptr<CommBackend> makeNcclComm(ComputeBackend &compute, const BackendOptions &options) {
  return std::make_unique<NcclComm>(compute, options);
}

} // namespace moeplan::runtime
