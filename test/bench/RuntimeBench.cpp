// moeplan-runtime-bench: the executor's costs, measured in one run, printed (a benchmark,
// not a test). Runs as one MPI process (singleton; no mpirun needed).
//   1. dispatch overhead per instruction: plans of N no-op kernels (ADD of one element), and
//      of kernels alternating with one-element all-reduces handed to the communication
//      thread through events;
//   2. plan load time (read + validate) of the seed deployment's plan;
//   3. the tiny model's single-rank forward pass against the OpenBLAS SGEMM rate measured
//      here: at 1024^3 and at the plan's own largest GEMM shape.
#include "moeplan/Compiler/Pipeline.h"
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Runtime/Executor.h"
#include "moeplan/Runtime/InitWeights.h"
#include "TestPlans.h"

#include <mpi.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
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

// Runs a plan file on this one rank and returns the report (wall time, kernel seconds).
nlohmann::json runOnce(const std::string &planPath, const std::string &checkpoint = "",
                       bool seededInput = false) {
  runtime::RunOptions o;
  o.planPath = planPath;
  o.checkpoint = checkpoint;
  if (seededInput) o.inputSeed = 7;
  o.reportJson = scratch("report.json");
  o.printReport = false;
  if (runtime::runPlan(o) != 0) {
    std::fprintf(stderr, "moeplan-runtime-bench: running %s failed\n", planPath.c_str());
    std::exit(1);
  }
  std::ifstream in(o.reportJson);
  return nlohmann::json::parse(in);
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

plan::Plan compiled(const std::string &description) {
  CompileResult r = compileDescriptionFile(description);
  if (!r.plan) {
    std::fprintf(stderr, "moeplan-runtime-bench: %s does not compile\n", description.c_str());
    std::exit(1);
  }
  return *r.plan;
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

} // namespace

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  kernels::useOneBlasThread();
  const std::string src = MOEPLAN_SOURCE_DIR;

  std::printf("1. executor dispatch overhead (one rank; wall time / instructions)\n");
  for (bool collectives : {false, true}) {
    const int n = 20000;
    const std::string path = noOpPlan(n, collectives);
    runOnce(path);  // warm-up
    const nlohmann::json r = runOnce(path);
    const double wall = r["wall_seconds_per_rank"][0];
    const int instructions = collectives ? 2 * n : n;
    std::printf("   %-44s %6d instructions  %8.3f ms  %6.2f us per instruction\n",
                collectives ? "no-op kernels + one-element all-reduces" : "no-op kernels",
                instructions, wall * 1e3, wall / instructions * 1e6);
    std::remove(path.c_str());
  }

  std::printf("2. plan load (read + validate), seed deployment\n");
  {
    const plan::Plan seed = compiled(src + "/examples/seed-moe-30b/deployment.textproto");
    std::string path = scratch("seed.plan"), error;
    planfile::writePlanFile(seed, path, error);
    double best = 1e30;
    size_t instructions = 0;
    for (const plan::Program &prog : seed.programs()) instructions += size_t(prog.instructions_size());
    for (int i = 0; i < 10; ++i) {
      std::vector<planfile::PlanError> errors;
      auto t0 = Clock::now();
      std::optional<plan::Plan> p = planfile::readPlanFile(path, errors);
      best = std::min(best, secondsSince(t0));
      if (!p) return 1;
    }
    std::printf("   %zu bytes, %d ranks, %zu instructions: %.3f ms (best of 10)\n",
                planfile::serializePlan(seed).size(), seed.ranks_size(), instructions, best * 1e3);
    std::remove(path.c_str());
  }

  std::printf("3. tiny model, one rank, forward pass against SGEMM measured here\n");
  {
    // The tiny model with every degree 1: one rank runs the whole model.
    std::ifstream in(src + "/examples/tiny-moe/deployment.textproto");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t begin = text.find("\nstrategy {"), end = text.find("\n}", begin);
    text.replace(begin, end + 2 - begin,
                 "\nstrategy { tp: 1 pp: 1 dp: 1 ep: 1 expert_tp: 1 micro_batches: 1 "
                 "capacity_factor: 1.25 }");
    const std::string desc = scratch("tiny-single.textproto");
    std::ofstream(desc) << text;
    const plan::Plan tiny = compiled(desc);
    std::string planPath = scratch("tiny-single.plan"), ckpt = scratch("tiny.ckpt"), error;
    planfile::writePlanFile(tiny, planPath, error);
    runtime::initWeights(tiny, 1).write(ckpt);
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
    runOnce(planPath, ckpt, true);  // warm-up: page cache, allocator
    double best = 1e30, gemmSeconds = 0;
    for (int i = 0; i < 5; ++i) {
      const nlohmann::json r = runOnce(planPath, ckpt, true);
      const double wall = r["wall_seconds_per_rank"][0];
      if (wall < best) {
        best = wall;
        gemmSeconds = r["kernel_seconds"].value("GEMM", nlohmann::json{{"seconds", 0.0}})["seconds"].get<double>() +
                      r["kernel_seconds"].value("GROUPED_GEMM", nlohmann::json{{"seconds", 0.0}})["seconds"].get<double>();
      }
    }
    const double peak = sgemmRate(1024, 1024, 1024, 5), atShape = sgemmRate(bm, bn, bk, 50);
    std::printf("   forward: %.3f ms (best of 5), %.3g FLOP (GEMMs %.3g): %.2f GFLOP/s\n", best * 1e3,
                flops, gemmFlops, flops / best / 1e9);
    std::printf("   the plan's GEMM kernels: %.3f ms, %.2f GFLOP/s\n", gemmSeconds * 1e3,
                gemmSeconds > 0 ? gemmFlops / gemmSeconds / 1e9 : 0.0);
    std::printf("   SGEMM 1024^3: %.2f GFLOP/s; at the plan's largest GEMM %lldx%lldx%lld: %.2f GFLOP/s\n",
                peak / 1e9, (long long)bm, (long long)bn, (long long)bk, atShape / 1e9);
    std::printf("   forward / SGEMM 1024^3 = %.3f; GEMM kernels / SGEMM at that shape = %.3f\n",
                flops / best / peak, gemmSeconds > 0 ? gemmFlops / gemmSeconds / atShape : 0.0);
    std::remove(planPath.c_str()), std::remove(ckpt.c_str()), std::remove(desc.c_str());
  }
  std::remove(scratch("report.json").c_str());
  MPI_Finalize();
  return 0;
}
