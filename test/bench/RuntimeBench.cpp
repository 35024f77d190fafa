// moeplan-runtime-bench: the executor's costs, measured in one run, printed (a benchmark,
// not a test). Runs as one MPI process (singleton; no mpirun needed) and links no MLIR, so
// that it runs where plans were only copied to (scripts/bench.sh compiles them).
//
//   --backend cpu (default)
//     1. dispatch overhead per instruction: plans of N no-op kernels (ADD of one element),
//        and of kernels alternating with one-element all-reduces handed to the
//        communication thread through events, on cpu and on cpu-queued (the cost of
//        queueing on stream workers, as a GPU backend queues);
//     2. plan load time (read + validate) of --seed-plan;
//     3. the one-rank --tiny-plan's forward pass against the OpenBLAS SGEMM rate measured
//        here: at 1024^3 and at the plan's own largest GEMM shape.
//   --backend cuda --plan P [--plan P ...] (one-rank plans; --random-weights, seeded input)
//     per plan: the forward pass measured (median of --iterations), against the simulator's
//     prediction for the plan's cluster and against the roofline (flops / peak, bytes / HBM
//     bandwidth, no efficiency factors), per kernel kind and in total; achieved TFLOP/s; and
//     every GEMM shape of the plan against cuBLAS alone at that shape.
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Runtime/Executor.h"
#include "moeplan/Runtime/InitWeights.h"
#include "moeplan/Simulate/CostModel.h"
#include "moeplan/Simulate/Simulator.h"
#include "TestPlans.h"

#if MOEPLAN_HAVE_CUDA
#include "moeplan/Kernels/CudaKernels.h"
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#endif

#include <CLI/CLI.hpp>
#include <mpi.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

using namespace moeplan;
using Clock = std::chrono::steady_clock;

namespace {

std::string scratch(const std::string &name) {
  return "/tmp/moeplan-runtime-bench-" + std::to_string(getpid()) + "-" + name;
}

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

plan::Plan readPlan(const std::string &path) {
  std::vector<planfile::PlanError> errors;
  std::optional<plan::Plan> p = planfile::readPlanFile(path, errors);
  if (!p) {
    std::fprintf(stderr, "%s", planfile::formatErrors(path, errors).c_str());
    std::exit(1);
  }
  return *p;
}

// Runs a plan file on this one rank; returns the report, and the rank's timings in `result`.
nlohmann::json runOnce(runtime::RunOptions o, runtime::RunResult *result = nullptr) {
  o.reportJson = scratch("report.json");
  o.printReport = false;
  if (runtime::runPlan(o, result) != 0) {
    std::fprintf(stderr, "moeplan-runtime-bench: running %s failed\n", o.planPath.c_str());
    std::exit(1);
  }
  std::ifstream in(o.reportJson);
  nlohmann::json j = nlohmann::json::parse(in);
  std::remove(o.reportJson.c_str());
  return j;
}

// N instructions on one rank: ADD kernels of one element, and with `collectives` an in-place
// one-element ALL_REDUCE on the tp group after each, chained by events both ways.
std::string noOpPlan(int n, bool collectives) {
  testing::PlanBuilder b(1, 8);
  plan::Plan &p = b.plan();
  plan::Model &m = *p.mutable_model();
  m.set_layers(1), m.set_d_model(1), m.set_heads(1), m.set_kv_heads(1), m.set_head_dim(1);
  m.set_dtype(plan::F32), m.set_norm(plan::RMS_NORM), m.set_activation(plan::GELU);
  p.mutable_strategy()->set_schedule(plan::GPIPE);
  p.mutable_strategy()->set_rank_order("tp-ep-dp-pp");
  p.mutable_workload()->set_sequences_per_micro_batch(1);
  p.mutable_workload()->set_tokens_per_micro_batch(1);
  for (const char *axis : {"tp", "dp", "pp", "ep", "etp", "edp"}) b.addGroup(axis, {0});
  testing::ProgramBuilder prog = b.addProgram({0});
  prog.program().set_end_layer(1);
  const uint32_t x = testing::addBuffer(prog.program(), "x", plan::ACTIVATION, plan::F32, {1});
  uint32_t last = 0;
  for (int i = 0; i < n; ++i) {
    plan::Instruction &k = prog.kernel(testing::makeCost(0, 8), testing::kComputeStream,
                                       last ? std::vector<uint32_t>{last} : std::vector<uint32_t>{},
                                       "add");
    testing::setOperands(*k.mutable_kernel(), plan::ADD, {x, x}, {x});
    k.mutable_kernel()->set_n(1);
    if (!collectives) continue;
    const uint32_t added = prog.record(k);
    plan::Instruction &c = prog.collective(plan::ALL_REDUCE, "tp", 4, testing::kCollectiveStream,
                                           {added}, "all_reduce");
    c.mutable_collective()->set_input(x), c.mutable_collective()->set_output(x);
    c.mutable_collective()->set_count(1), c.mutable_collective()->set_dtype(plan::F32);
    c.mutable_collective()->set_sequence(uint64_t(i));
    last = prog.record(c);
  }
  testing::placeBuffers(prog.program());
  std::vector<planfile::PlanError> errors = planfile::validatePlan(p);
  if (!errors.empty()) {
    std::fprintf(stderr, "%s", planfile::formatErrors("no-op plan", errors).c_str());
    std::exit(1);
  }
  std::string path = scratch(collectives ? "noop-collectives.plan" : "noop.plan"), error;
  if (!planfile::writePlanFile(p, path, error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::exit(1);
  }
  return path;
}

// Best-of-`repeats` SGEMM rate for c[m, n] = a[m, k] b[k, n], FLOP/s.
double sgemmRate(int64_t m, int64_t n, int64_t k, int repeats) {
  std::vector<float> a(size_t(m * k), 0.5f), b(size_t(k * n), 0.25f), c(size_t(m * n));
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = Clock::now();
    kernels::gemm(a.data(), b.data(), c.data(), m, n, k);
    best = std::min(best, secondsSince(t0));
  }
  return 2.0 * double(m) * double(n) * double(k) / best;
}

int cpuBench(const std::string &seedPlan, const std::string &tinyPlan) {
  kernels::useOneBlasThread();
  std::printf("1. executor dispatch overhead (one rank; wall time / instructions; median of 5)\n");
  for (bool collectives : {false, true})
    for (const char *backend : {"cpu", "cpu-queued"}) {
      const int n = 20000;
      runtime::RunOptions o;
      o.planPath = noOpPlan(n, collectives);
      o.backend = backend;
      o.iterations = 5;
      const nlohmann::json r = runOnce(o);
      const double wall = r["wall_seconds_per_rank"][0];
      const int instructions = collectives ? 2 * n : n;
      std::printf("   %-10s %-40s %6d instructions  %8.3f ms  %6.2f us per instruction\n", backend,
                  collectives ? "no-op kernels + one-element all-reduces" : "no-op kernels",
                  instructions, wall * 1e3, wall / instructions * 1e6);
      std::remove(o.planPath.c_str());
    }

  if (!seedPlan.empty()) {
    std::printf("2. plan load (read + validate), %s\n", seedPlan.c_str());
    double best = 1e30;
    const plan::Plan seed = readPlan(seedPlan);
    size_t instructions = 0;
    for (const plan::Program &prog : seed.programs()) instructions += size_t(prog.instructions_size());
    for (int i = 0; i < 10; ++i) {
      auto t0 = Clock::now();
      readPlan(seedPlan);
      best = std::min(best, secondsSince(t0));
    }
    std::printf("   %zu bytes, %d ranks, %zu instructions: %.3f ms (best of 10)\n",
                planfile::serializePlan(seed).size(), seed.ranks_size(), instructions, best * 1e3);
  }

  if (!tinyPlan.empty()) {
    std::printf("3. %s, one rank, forward pass against SGEMM measured here\n", tinyPlan.c_str());
    const plan::Plan tiny = readPlan(tinyPlan);
    double flops = 0, gemmFlops = 0;
    int64_t bm = 0, bn = 0, bk = 0;  // the largest GEMM of the plan
    for (const plan::Instruction &inst : tiny.programs(0).instructions()) {
      flops += double(inst.cost().flops());
      if (!inst.has_kernel()) continue;
      const plan::Kernel &k = inst.kernel();
      if (k.kind() == plan::GEMM || k.kind() == plan::GROUPED_GEMM) {
        gemmFlops += double(inst.cost().flops());
        if (k.m() * k.n() * k.k() > bm * bn * bk) bm = k.m(), bn = k.n(), bk = k.k();
      }
    }
    runtime::RunOptions o;
    o.planPath = tinyPlan;
    o.backend = "cpu";
    o.randomWeights = 1;
    o.inputSeed = 7;
    o.iterations = 5;
    const nlohmann::json r = runOnce(o);
    const double wall = r["wall_seconds_per_rank"][0];
    auto kindSeconds = [&](const char *kind) {
      return r["kernel_seconds"].value(kind, nlohmann::json{{"seconds", 0.0}})["seconds"].get<double>();
    };
    const double gemmSeconds = kindSeconds("GEMM") + kindSeconds("GROUPED_GEMM");
    const double peak = sgemmRate(1024, 1024, 1024, 5), atShape = sgemmRate(bm, bn, bk, 50);
    std::printf("   forward: %.3f ms (median of 5 after a warm-up), %.3g FLOP (GEMMs %.3g): %.2f GFLOP/s\n",
                wall * 1e3, flops, gemmFlops, flops / wall / 1e9);
    std::printf("   the plan's GEMM kernels: %.3f ms, %.2f GFLOP/s\n", gemmSeconds * 1e3,
                gemmSeconds > 0 ? gemmFlops / gemmSeconds / 1e9 : 0.0);
    std::printf("   SGEMM 1024^3: %.2f GFLOP/s; at the plan's largest GEMM %lldx%lldx%lld: %.2f GFLOP/s\n",
                peak / 1e9, (long long)bm, (long long)bn, (long long)bk, atShape / 1e9);
    std::printf("   forward / SGEMM 1024^3 = %.3f; GEMM kernels / SGEMM at that shape = %.3f\n",
                flops / wall / peak, gemmSeconds > 0 ? gemmFlops / gemmSeconds / atShape : 0.0);
  }
  return 0;
}

#if MOEPLAN_HAVE_CUDA

namespace kc = moeplan::kernels::cuda;

kc::DType cudaDType(plan::DType d) {
  return d == plan::BF16 ? kc::DType::BF16 : d == plan::F16 ? kc::DType::F16 : kc::DType::F32;
}

// Seconds per call of cuBLAS alone at one GEMM shape (median of 20 after 3 warm-ups), on
// operands of ones (values do not change a GEMM's time).
double cublasSeconds(cublasHandle_t blas, kc::DType dtype, const plan::Kernel &k) {
  const int64_t groups = k.kind() == plan::GROUPED_GEMM ? std::max<int64_t>(1, k.groups()) : 1;
  const size_t bytes = size_t(kc::dtypeBytes(dtype));
  void *a = nullptr, *b = nullptr, *c = nullptr;
  cudaMalloc(&a, size_t(groups * k.m() * k.k()) * bytes);
  cudaMalloc(&b, size_t(groups * k.k() * k.n()) * bytes);
  cudaMalloc(&c, size_t(groups * k.m() * k.n()) * bytes);
  cudaMemset(a, 0, size_t(groups * k.m() * k.k()) * bytes);
  cudaMemset(b, 0, size_t(groups * k.k() * k.n()) * bytes);
  cudaEvent_t start, end;
  cudaEventCreate(&start), cudaEventCreate(&end);
  auto call = [&] {
    if (k.kind() == plan::GROUPED_GEMM) kc::groupedGemm(blas, dtype, a, b, c, groups, k.m(), k.n(), k.k(), nullptr);
    else kc::gemm(blas, dtype, a, b, c, k.m(), k.n(), k.k(), k.transpose_b(), nullptr);
  };
  for (int i = 0; i < 3; ++i) call();
  std::vector<double> times;
  for (int i = 0; i < 20; ++i) {
    cudaEventRecord(start, nullptr);
    call();
    cudaEventRecord(end, nullptr);
    cudaEventSynchronize(end);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, end);
    times.push_back(double(ms) / 1e3);
  }
  cudaEventDestroy(start), cudaEventDestroy(end);
  cudaFree(a), cudaFree(b), cudaFree(c);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct KindFigures {
  int count = 0;
  double measured = 0, predicted = 0, roofline = 0, flops = 0;
};

void cudaBenchPlan(const std::string &path, uint32_t iterations) {
  const plan::Plan p = readPlan(path);
  if (p.ranks_size() != 1) {
    std::fprintf(stderr, "moeplan-runtime-bench: %s has %d ranks; the GPU benchmark runs one-rank plans\n",
                 path.c_str(), p.ranks_size());
    std::exit(1);
  }
  runtime::RunOptions o;
  o.planPath = path;
  o.backend = "cuda";
  o.randomWeights = 1;
  o.inputSeed = 7;
  o.iterations = iterations;
  runtime::RunResult measured;
  runOnce(o, &measured);

  const plan::Program &prog = p.programs(0);
  const plan::Cluster &cluster = p.cluster();
  const sim::Prediction prediction = sim::simulate(p);
  std::map<std::string, KindFigures> kinds;
  double roofline = 0, flops = 0;
  for (int i = 0; i < prog.instructions_size(); ++i) {
    const plan::Instruction &inst = prog.instructions(i);
    if (!inst.has_kernel()) continue;
    KindFigures &f = kinds[plan::KernelKind_Name(inst.kernel().kind())];
    const double roof = std::max(double(inst.cost().flops()) / cluster.peak_flops(),
                                 double(inst.cost().memory_bytes()) / cluster.memory_bandwidth_bytes_per_s());
    ++f.count;
    f.measured += measured.instructionSeconds[size_t(i)];
    f.predicted += sim::instructionSeconds(p, 0, inst);
    f.roofline += roof;
    f.flops += double(inst.cost().flops());
    roofline += roof;
    flops += double(inst.cost().flops());
  }
  const double tokens = double(p.workload().sequences()) * double(p.workload().seq_len());
  std::printf("\n%s: %s, %.0f tokens on %s\n", path.c_str(), p.name().c_str(), tokens, measured.device.c_str());
  std::printf("  forward: measured %.3f ms (median of %u), predicted %.3f ms (measured / predicted %.2f), "
              "roofline %.3f ms (measured / roofline %.2f; aim <= 1.5)\n",
              measured.wallSeconds * 1e3, iterations, prediction.latencySeconds * 1e3,
              measured.wallSeconds / prediction.latencySeconds, roofline * 1e3, measured.wallSeconds / roofline);
  std::printf("  achieved %.1f TFLOP/s (the plan's FLOPs, causal attention counted as the full "
              "square, / measured time; peak %.0f TFLOP/s from the cluster description), %.0f tokens/s\n",
              flops / measured.wallSeconds / 1e12, cluster.peak_flops() / 1e12, tokens / measured.wallSeconds);
  std::printf("  %-20s %6s %12s %12s %9s %12s %9s %9s\n", "kernel kind", "count", "measured ms",
              "predicted ms", "meas/pred", "roofline ms", "meas/roof", "TFLOP/s");
  for (const auto &[kind, f] : kinds)
    std::printf("  %-20s %6d %12.3f %12.3f %9.2f %12.3f %9.2f %9.1f\n", kind.c_str(), f.count,
                f.measured * 1e3, f.predicted * 1e3, f.predicted > 0 ? f.measured / f.predicted : 0.0,
                f.roofline * 1e3, f.roofline > 0 ? f.measured / f.roofline : 0.0,
                f.measured > 0 ? f.flops / f.measured / 1e12 : 0.0);

  // Every GEMM shape of the plan, in the plan and alone.
  using Shape = std::tuple<int, int64_t, int64_t, int64_t, int64_t, bool>;
  std::map<Shape, std::vector<int>> shapes;
  for (int i = 0; i < prog.instructions_size(); ++i) {
    const plan::Instruction &inst = prog.instructions(i);
    if (!inst.has_kernel()) continue;
    const plan::Kernel &k = inst.kernel();
    if (k.kind() != plan::GEMM && k.kind() != plan::GROUPED_GEMM) continue;
    shapes[{int(k.kind()), k.groups(), k.m(), k.n(), k.k(), k.transpose_b()}].push_back(i);
  }
  cublasHandle_t blas = nullptr;
  cublasCreate(&blas);
  double planGemm = 0, aloneGemm = 0;
  std::printf("  GEMM shapes, in the plan (median instruction) against cuBLAS alone (aim >= 60%%):\n");
  for (const auto &[shape, list] : shapes) {
    const plan::Kernel &k = prog.instructions(list.front()).kernel();
    std::vector<double> times;
    for (int i : list) times.push_back(measured.instructionSeconds[size_t(i)]);
    std::sort(times.begin(), times.end());
    const double inPlan = times[times.size() / 2];
    const double alone = cublasSeconds(blas, cudaDType(p.model().dtype()), k);
    const double gemmFlops = double(prog.instructions(list.front()).cost().flops());
    planGemm += inPlan * double(list.size());
    aloneGemm += alone * double(list.size());
    std::printf("    %-12s %s%lldx%lldx%lld%s x%-4zu plan %9.3f ms  cuBLAS %9.3f ms (%6.1f TFLOP/s)  %5.1f%%\n",
                plan::KernelKind_Name(plan::KernelKind(std::get<0>(shape))).c_str(),
                k.kind() == plan::GROUPED_GEMM ? (std::to_string(k.groups()) + " x ").c_str() : "",
                (long long)k.m(), (long long)k.n(), (long long)k.k(), k.transpose_b() ? "^T" : "",
                list.size(), inPlan * 1e3, alone * 1e3, gemmFlops / alone / 1e12, 100 * alone / inPlan);
  }
  cublasDestroy(blas);
  std::printf("  all GEMMs: plan %.3f ms, cuBLAS alone %.3f ms: %.1f%% of cuBLAS at their shapes\n",
              planGemm * 1e3, aloneGemm * 1e3, planGemm > 0 ? 100 * aloneGemm / planGemm : 0.0);
}

#endif

} // namespace

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  CLI::App app{"moeplan-runtime-bench: the executor's costs, measured and printed"};
  std::string backend = "cpu", seedPlan, tinyPlan;
  std::vector<std::string> plans;
  uint32_t iterations = 10;
  app.add_option("--backend", backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--seed-plan", seedPlan, "cpu: a plan to time loading (the seed deployment's)");
  app.add_option("--tiny-plan", tinyPlan, "cpu: a one-rank F32 plan to run (the tiny model)");
  app.add_option("--plan", plans, "cuda: one-rank plans to run and predict");
  app.add_option("--iterations", iterations, "cuda: measured passes per plan (median)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    const int status = app.exit(e);
    MPI_Finalize();
    return status;
  }
  int status = 0;
  if (backend == "cpu") {
    status = cpuBench(seedPlan, tinyPlan);
  } else {
#if MOEPLAN_HAVE_CUDA
    for (const std::string &path : plans) cudaBenchPlan(path, iterations);
#else
    std::fprintf(stderr, "moeplan-runtime-bench: built without CUDA\n");
    status = 2;
#endif
  }
  MPI_Finalize();
  return status;
}
