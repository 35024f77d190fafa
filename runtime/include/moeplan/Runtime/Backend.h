// The executor's two seams (Executor.h walks the plan; these carry it out):
//
//   ComputeBackend  owns the rank's arena and runs kernels: "cpu" (OpenBLAS, host memory,
//                   each kernel done when launch returns) or "cuda" (cuBLAS and moeplan's
//                   CUDA kernels, device memory, kernels queued on CUDA streams).
//   CommBackend     owns the communicators of the rank's groups and runs the plan's
//                   collectives: "mpi" (non-blocking MPI progressed by the host; with a
//                   device arena, buffers are staged through pinned host memory) or "nccl"
//                   (queued on the compute backend's CUDA streams). "mpi-queued" queues
//                   MPI operations on the streams of "cpu-queued" as NCCL queues its own,
//                   to test the executor's paths for queued communication without GPUs.
//
// Plan streams and events map onto the compute backend: on cpu a stream is the thread that
// issues it and an event a flag; on cuda each plan stream is a CUDA stream and each event a
// cudaEvent. The walker keeps host-side flags for every event either way (an event may be
// waited for only after it was recorded), and calls waitEvent/recordEvent so that queued
// work also orders on the device.
#pragma once

#include "moeplan/Runtime/RoutedRows.h"
#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace moeplan::runtime {

// A problem with the plan, the world, the device or the data, found before compute: every
// rank reports it and stops (exit 2).
struct UnusableInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One plan kernel with its operands resolved to addresses in the backend's arena, and what
// the kernel's dimensions do not say but the plan does.
struct KernelCall {
  const plan::Kernel *kernel = nullptr;
  std::vector<std::byte *> in, out;  // in the order plan.proto documents per kind
  plan::DType dtype = plan::F32;     // storage of the float operands: the model's dtype
  int64_t firstId = 0;               // EMBEDDING: first row of embedding.weight in the table;
                                     // ARGMAX: first vocabulary column of the logits slice
  int32_t layer = -1;                // DISPATCH: the layer its routing counts belong to
  int64_t step = 0;                  // a GENERATE plan's decode step (0-based) being run
  // Routed rows (RoutedRows.h), on backends that compute them (routedRows()): a routed
  // kernel's rows of in[0] that hold tokens (null: every row); DISPATCH's count per (expert,
  // group) goes to dispatchFill (null: the padded slots are zeroed instead).
  const RowFill *rows = nullptr;
  RowFill *dispatchFill = nullptr;
};

// The positions a kernel works at in the call's decode step: a per_step kernel's plan values
// are step 0's, and each step moves one position on (plan.proto, Kernel.per_step). Every
// backend reads first_position (ROPE, KV_APPEND) and kv_len (ATTENTION) through this.
struct StepPositions {
  int64_t firstPosition = 0, kvLen = 0;
};
inline StepPositions stepPositions(const KernelCall &call) {
  const int64_t add = call.kernel->per_step() ? call.step : 0;
  return {call.kernel->first_position() + add, call.kernel->kv_len() + add};
}

// Routing counts of one forward pass: routed[layer * experts + e] choices routed to expert
// e (dropped ones included), dropped[layer] choices that found no free slot.
struct RoutingCounts {
  std::vector<int64_t> routed, dropped;
};

// A block of a full tensor to fill with `moeplan init-weights` values (Runtime/InitWeights.h).
struct SeededBlock {
  std::vector<int64_t> begin, count, full;
  uint64_t key = 0;  // kernels::streamKey(seed, tensor name)
  float scale = 1, offset = 0;
};

class ComputeBackend {
public:
  virtual ~ComputeBackend() = default;
  virtual const char *name() const = 0;  // "cpu", "cuda"
  virtual std::string device() const = 0;  // "host", "GPU 0 (NVIDIA H200, 139 GiB)"
  // True when launch only queues work: host-side readers of the arena must then wait for
  // eventComplete, and timing marks resolve after synchronize.
  virtual bool queued() const = 0;

  // What this backend cannot run in plan.programs[program] (dtypes, kernel kinds); throws
  // UnusableInput.
  virtual void check(const plan::Plan &plan, uint32_t program) const = 0;
  // The arena (zero-filled), `events` plan events (1..events) and `marks` timing marks.
  // Throws UnusableInput when the arena does not fit.
  virtual void allocate(uint64_t arenaBytes, uint32_t streams, uint32_t events,
                        uint32_t marks) = 0;
  virtual uint64_t allocatedBytes() const = 0;
  virtual std::byte *arena() = 0;  // base address (a device address on cuda)

  // Synchronous copies between host memory and the arena, callable from any thread.
  virtual void upload(std::byte *dst, const void *src, uint64_t bytes) = 0;
  virtual void download(const std::byte *src, void *dst, uint64_t bytes) = 0;
  // Pinned host memory for staging (plain memory on cpu); freed with the backend.
  virtual void *hostStaging(uint64_t bytes) = 0;
  // dst (a buffer of `dtype`) = the block's init-weights values.
  virtual void fillSeeded(std::byte *dst, plan::DType dtype, const SeededBlock &block) = 0;
  // dst (`count` elements of `to`) = src (host, `count` elements of `from`) converted.
  virtual void uploadConverted(std::byte *dst, plan::DType to, const void *src,
                               plan::DType from, uint64_t count) = 0;

  // Runs (cpu) or queues (cuda) a kernel on plan stream `stream`. Throws std::exception
  // on failure (the walker aborts the run naming the instruction).
  virtual void launch(uint32_t stream, const KernelCall &call) = 0;
  // Plan stream `stream` waits for plan event `event`, which the walker has recorded.
  virtual void waitEvent(uint32_t stream, uint32_t event) = 0;
  virtual void recordEvent(uint32_t stream, uint32_t event) = 0;
  // Whether the work before `event`'s record has completed (polled; never blocks).
  virtual bool eventComplete(uint32_t event) = 0;
  // A timestamp on plan stream `stream` into timing mark `mark`; markSeconds reads it as
  // seconds since startClock(), after synchronize().
  virtual void startClock() = 0;
  virtual void mark(uint32_t stream, uint32_t mark) = 0;
  virtual bool markComplete(uint32_t mark) = 0;
  virtual double markSeconds(uint32_t mark) = 0;
  virtual void synchronize() = 0;
  // The native stream of a plan stream (cudaStream_t on cuda, null on cpu): the NCCL
  // backend queues collectives on it.
  virtual void *nativeStream(uint32_t stream) = 0;
  // Runs `task` on the host in the order of plan stream `stream` (cudaLaunchHostFunc on
  // cuda; the task must not call CUDA). The queued MPI backend (mpi-queued) is built on it.
  virtual void enqueueHost(uint32_t stream, std::function<void()> task) = 0;

  // Whether launch honours KernelCall.rows and dispatchFill (computes routed rows only).
  virtual bool routedRows() const { return false; }

  // Routing counts since the last reset (what DISPATCH kernels recorded).
  virtual void resetCounts() = 0;
  virtual RoutingCounts counts() = 0;

  // CUDA graphs (--graph): capture everything launched between begin and end on every
  // stream, then replay it. Backends without graphs throw UnusableInput from beginCapture.
  virtual void beginCapture() = 0;
  virtual void endCapture() = 0;
  virtual double replay() = 0;  // seconds of one replay, measured on the device
};

// A collective or pipeline transfer in flight.
struct CommRequest {
  int instruction = -1;
};

class CommBackend {
public:
  virtual ~CommBackend() = default;
  virtual const char *name() const = 0;  // "mpi", "nccl"
  // True when start only queues the operation on the compute backend's streams (nccl):
  // the walker then orders it with events like a kernel.
  virtual bool queued() const = 0;
  // Collective over the world: a communicator for each of this rank's groups. Throws
  // UnusableInput when that fails (every rank must call it; failures are reported by the
  // walker after the same agreement as other start-up problems).
  virtual void connect(const plan::Plan &plan, uint32_t rank) = 0;
  // Starts collective `c` (instruction `instruction`, plan stream `stream`) whose inputs
  // are ready: on the host for mpi, ordered by the stream's waits for nccl. in/out are
  // arena addresses of its input and output buffers of inBytes/outBytes (null, 0 if none).
  virtual CommRequest start(int instruction, uint32_t stream, const plan::Collective &c,
                            std::byte *in, uint64_t inBytes, std::byte *out,
                            uint64_t outBytes) = 0;
  // Whether startRouted is implemented: the expert step's collectives moving filled rows only.
  virtual bool routedRows() const { return false; }
  // Starts routed collective `c` (ALL_TO_ALL, ALL_GATHER or REDUCE_SCATTER of an expert
  // step) on rows of rowBytes: the group first exchanges its members' `inFill`, then moves
  // only filled rows; `*outFill` holds the output's rows once test says complete.
  virtual CommRequest startRouted(int instruction, const plan::Collective &c, std::byte *in,
                                  std::byte *out, uint64_t rowBytes, const RowFill &inFill,
                                  RowFill *outFill) {
    (void)c, (void)in, (void)out, (void)rowBytes, (void)inFill, (void)outFill;
    throw std::logic_error(std::string(name()) + " has no routed collectives (instruction " +
                           std::to_string(instruction) + ")");
  }
  // Whether the request completed (its output is in the arena); queued backends: true.
  virtual bool test(CommRequest &request) = 0;
  // An asynchronous error of the communicators ("" if none); polled while waiting.
  virtual std::string asyncError() = 0;
  // Tears the communicators down so that operations in flight end (nccl: ncclCommAbort).
  virtual void abort() = 0;
};

// Options that choose and configure the backends.
struct BackendOptions {
  uint32_t localRank = 0;  // rank among the processes of this host (MPI_COMM_TYPE_SHARED)
  double stallSeconds = 120;
};

// Whether this build has the CUDA backend (and NCCL), and how many devices it sees
// (0 without a driver or device; never throws).
bool haveCudaBackend();
int visibleCudaDevices();

// Factories; throw UnusableInput naming the cause (no device, not built with CUDA, ...).
std::unique_ptr<ComputeBackend> makeComputeBackend(const std::string &name,
                                                   const plan::Plan &plan,
                                                   const BackendOptions &options);
std::unique_ptr<CommBackend> makeCommBackend(const std::string &name, ComputeBackend &compute,
                                             const BackendOptions &options);

} // namespace moeplan::runtime
