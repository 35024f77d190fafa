// Which backends this build has, and the factories that choose between them by name.
#include "moeplan/Runtime/Backend.h"

namespace moeplan::runtime {

std::unique_ptr<ComputeBackend> makeCpuBackend(const plan::Plan &plan, bool queued);
std::unique_ptr<CommBackend> makeMpiComm(ComputeBackend &compute, bool queued);
#if MOEPLAN_HAVE_CUDA
std::unique_ptr<ComputeBackend> makeCudaBackend(const plan::Plan &plan, const BackendOptions &options);
std::unique_ptr<CommBackend> makeNcclComm(ComputeBackend &compute, const BackendOptions &options);
int cudaDeviceCount();
#endif

bool haveCudaBackend() { return MOEPLAN_HAVE_CUDA != 0; }

int visibleCudaDevices() {
#if MOEPLAN_HAVE_CUDA
  return cudaDeviceCount();
#else
  return 0;
#endif
}

std::unique_ptr<ComputeBackend> makeComputeBackend(const std::string &name,
                                                   const plan::Plan &plan,
                                                   const BackendOptions &options) {
  if (name == "cpu" || name == "cpu-queued") return makeCpuBackend(plan, name == "cpu-queued");
  if (name == "cuda") {
#if MOEPLAN_HAVE_CUDA
    return makeCudaBackend(plan, options);
#else
    (void)options;
    throw UnusableInput("--backend cuda: this moeplan-run was built without CUDA (no nvcc was "
                        "found when it was configured)");
#endif
  }
  throw UnusableInput("--backend " + name + ": not a backend (cpu, cuda, cpu-queued)");
}

std::unique_ptr<CommBackend> makeCommBackend(const std::string &name, ComputeBackend &compute,
                                             const BackendOptions &options) {
  if (name == "mpi" || name == "mpi-queued") return makeMpiComm(compute, name == "mpi-queued");
  if (name == "nccl") {
#if MOEPLAN_HAVE_CUDA
    return makeNcclComm(compute, options);
#else
    (void)options;
    throw UnusableInput("--comm nccl: this moeplan-run was built without CUDA and NCCL");
#endif
  }
  throw UnusableInput("--comm " + name + ": not a communication backend (mpi, nccl, mpi-queued)");
}

} // namespace moeplan::runtime
