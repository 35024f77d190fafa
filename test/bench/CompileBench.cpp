// moeplan-compile-bench: compile time of the seed deployment and of generated deployments
// from 16 to 1024 GPUs and 16 to 128 layers, with the growth exponent of time against
// ranks x layers (least squares on log-log). A benchmark that prints figures, not a test.
//
//   moeplan-compile-bench [--quick]      (--quick: up to 64 GPUs and 32 layers)
//   moeplan-compile-bench --session DESC N
//     DESC compiled N times in one CompileSession as search compiles a candidate (quiet, no
//     verifier or validator, the plan on an arena) and simulated: milliseconds per compile
//     and per simulation. For profiling a search's unit of work.
#include "moeplan/Compiler/Pipeline.h"
#include "moeplan/Simulate/Simulator.h"

#include <google/protobuf/arena.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

double compileSeconds(const std::string &path, int repeats) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    moeplan::CompileResult r = moeplan::compileDescriptionFile(path);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.plan) {
      std::fprintf(stderr, "compile failed: %s\n", path.c_str());
      std::exit(1);
    }
    best = std::min(best, s);
  }
  return best;
}

// A 64-expert MoE model of `layers` layers on `gpus` GPUs (8 per node): tp 8 (4 below 64
// GPUs), pp 4, the rest data parallel, experts over all of tp x dp, 8 micro-batches.
std::string generated(int64_t gpus, int64_t layers) {
  int64_t tp = gpus >= 64 ? 8 : 4, pp = 4, dp = gpus / (tp * pp);
  int64_t ep = std::min<int64_t>(64, tp * dp);
  int64_t sequences = dp * 8 * 2;
  return "name: \"bench\"\nmodel { layers: " + std::to_string(layers) +
         " d_model: 4096 heads: 32 head_dim: 128 experts: 64 top_k: 2 expert_hidden: 8192"
         " norm: RMS_NORM activation: SWIGLU vocab_size: 32000 dtype: BF16 }\n"
         "cluster { nodes: " + std::to_string(gpus / 8) + " gpus_per_node: 8"
         " gpu { peak_tflops: 989 mfu: 0.5 memory_gb: 80 memory_bandwidth_tb_per_s: 3.35"
         " memory_bandwidth_utilization: 0.8 }"
         " intra_node { bandwidth_gb_per_s: 450 latency_us: 5 }"
         " inter_node { bandwidth_gb_per_s: 50 latency_us: 10 } }\n"
         "workload { sequences: " + std::to_string(sequences) + " seq_len: 4096 phase: PREFILL }\n"
         "strategy { tp: " + std::to_string(tp) + " pp: " + std::to_string(pp) + " dp: " +
         std::to_string(dp) + " ep: " + std::to_string(ep) +
         " expert_tp: 1 micro_batches: 8 capacity_factor: 1.25 }\n";
}

int sessionMode(const std::string &path, int repeats) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 2;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  moeplan::CompileSession session;
  moeplan::CompileOptions quiet;
  quiet.printDiagnostics = false;
  quiet.judgeWorkload = false;
  quiet.verifyEachPass = false;
  quiet.validatePlan = false;
  double compileS = 0, simulateS = 0;
  for (int i = 0; i < repeats; ++i) {
    google::protobuf::Arena arena;
    moeplan::plan::Plan *plan = google::protobuf::Arena::CreateMessage<moeplan::plan::Plan>(&arena);
    quiet.into = plan;
    auto t0 = std::chrono::steady_clock::now();
    if (!session.compile(text, path, quiet).exported) {
      std::fprintf(stderr, "compile failed: %s\n", path.c_str());
      return 1;
    }
    auto t1 = std::chrono::steady_clock::now();
    moeplan::sim::applyExpectedWork(*plan);
    moeplan::sim::Prediction p = moeplan::sim::simulateExpectedWork(*plan);
    auto t2 = std::chrono::steady_clock::now();
    compileS += std::chrono::duration<double>(t1 - t0).count();
    simulateS += std::chrono::duration<double>(t2 - t1).count();
  }
  std::printf("%s: %.3f ms per compile, %.3f ms per simulation (mean of %d)\n", path.c_str(),
              1e3 * compileS / repeats, 1e3 * simulateS / repeats, repeats);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc == 4 && std::strcmp(argv[1], "--session") == 0)
    return sessionMode(argv[2], std::atoi(argv[3]));
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  // Findings of the seed go to stderr; keep the figures readable.
  std::string seed = std::string(MOEPLAN_SOURCE_DIR) + "/examples/seed-moe-30b/deployment.textproto";
  std::freopen("/dev/null", "w", stderr);
  std::printf("seed-moe-30b: %.3f s (best of 5)\n", compileSeconds(seed, 5));
  std::printf("%8s %8s %14s %12s\n", "gpus", "layers", "ranks*layers", "seconds");
  std::vector<double> xs, ys;
  char path[] = "/tmp/moeplan-bench-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  for (int64_t gpus : {16, 64, 256, 1024}) {
    if (quick && gpus > 64) break;
    for (int64_t layers : {16, 32, 64, 128}) {
      if (quick && layers > 32) break;
      std::ofstream(path) << generated(gpus, layers);
      double s = compileSeconds(path, gpus * layers <= 4096 ? 3 : 1);
      std::printf("%8lld %8lld %14lld %12.3f\n", (long long)gpus, (long long)layers,
                  (long long)(gpus * layers), s);
      std::fflush(stdout);
      xs.push_back(std::log(double(gpus * layers)));
      ys.push_back(std::log(s));
    }
  }
  std::remove(path);
  double n = double(xs.size()), sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < xs.size(); ++i)
    sx += xs[i], sy += ys[i], sxx += xs[i] * xs[i], sxy += xs[i] * ys[i];
  double exponent = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  std::printf("growth exponent of compile time in ranks x layers: %.2f (1.00 = linear)\n", exponent);
  return 0;
}
