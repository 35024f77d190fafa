// moeplan-search-bench: how long `moeplan search` takes. The seed deployment's full search
// (every strategy on its 16 GPUs, three sequence lengths), and a 1024-GPU cluster (the seed
// model on 64 nodes x 16 GPUs, a batch 8 times the seed's, a latency requirement only
// large worlds meet) searched with pruning. A benchmark that prints figures, not a test.
//
//   moeplan-search-bench [--threads N] [--quick]   (--quick: the 1024-GPU search only)
#include "moeplan/Description/Load.h"
#include "moeplan/Search/Search.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace {

struct Loaded {
  moeplan::desc::Deployment deployment;
  moeplan::DeploymentSpec spec;
};

Loaded load(const std::string &text, const std::string &name) {
  moeplan::LoadedDescription loaded = moeplan::parseDescription(text, name);
  std::vector<moeplan::Finding> findings = loaded.parseErrors;
  std::optional<moeplan::DeploymentSpec> spec;
  if (findings.empty()) spec = moeplan::resolveSpec(loaded.deployment, findings);
  if (!spec) {
    std::fprintf(stderr, "%s does not resolve\n", name.c_str());
    std::exit(1);
  }
  return {loaded.deployment, *spec};
}

void report(const char *title, const moeplan::search::SearchResult &r) {
  const uint64_t compiled = r.evaluated + r.prunedAfterFirst;
  std::printf("%s\n", title);
  std::printf("  enumerated %llu, rejected %llu, equivalent %llu, pruned before compiling %llu, "
              "pruned by a one-micro-batch probe %llu (%llu by its layer probe), pruned after the "
              "longest sequence %llu, evaluated fully %llu\n",
              (unsigned long long)r.enumerated, (unsigned long long)r.rejected,
              (unsigned long long)(r.equivalentSchedule + r.equivalentRankOrder),
              (unsigned long long)r.pruned, (unsigned long long)r.prunedByProbe,
              (unsigned long long)r.prunedByLayerProbe,
              (unsigned long long)r.prunedAfterFirst,
              (unsigned long long)r.evaluated);
  std::printf("  %.2f s on %u thread%s: %.1f candidates compiled per second, %zu sequence "
              "lengths\n",
              r.seconds, r.threads, r.threads == 1 ? "" : "s",
              r.seconds > 0 ? double(compiled) / r.seconds : 0.0, r.seqPoints.size());
  if (r.best) {
    const moeplan::search::Evaluated &b = r.candidates[*r.best];
    std::printf("  best: %s on %lld GPUs, latency %.4g s, %.4g tokens/s per GPU, %.4g GB per GPU\n",
                b.strategy.str().c_str(), (long long)b.strategy.world(), b.latencyS,
                b.throughputPerGpu, b.memoryBytes / 1e9);
  } else {
    std::printf("  no strategy meets the requirements\n");
  }
}

// The seed model on 64 nodes of 16 GPUs, 1024 sequences of 128-10240 tokens, and a latency
// of 200 ms (the whole batch's roofline on all 1024 GPUs is about 42 ms at 10240 tokens):
// small worlds cannot meet it, and their bounds say so without compiling. Every tp, pp, dp
// and ep on every GPU count, with 4 micro-batches, experts whole and one rank order: the
// full space (24 rank orders, 11 expert_tp, 8 micro-batch counts) is 2000 times larger, and
// a compile at 1024 ranks takes about 0.1 s.
const char *kCluster1024 = R"(
name: "seed-model-1024-gpus"
model { layers: 16 d_model: 1024 heads: 16 head_dim: 64 kv_heads: 16 experts: 64 top_k: 1
        expert_hidden: 2048 moe_layers { all: true } norm: LAYER_NORM activation: GELU dtype: FP16 }
cluster { nodes: 64 gpus_per_node: 16
  gpu { peak_tflops: 400 mfu: 0.6 memory_gb: 64 memory_bandwidth_tb_per_s: 1.8 memory_bandwidth_utilization: 0.8 }
  intra_node { bandwidth_gb_per_s: 1440 latency_us: 5 }
  inter_node { bandwidth_gb_per_s: 50 latency_us: 10 } }
workload { sequences: 1024 seq_len_range { min: 128 max: 10240 } phase: PREFILL }
strategy { capacity_factor: 1.1 }
requirements { max_latency_ms: 200 max_memory_per_gpu_gb: 64 }
search { micro_batches: [4] expert_tp: [1] rank_order: ["tp-ep-dp-pp"] }
)";

} // namespace

int main(int argc, char **argv) {
  moeplan::search::SearchOptions options;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) options.threads = unsigned(std::atoi(argv[++i]));
    else if (std::strcmp(argv[i], "--quick") == 0) quick = true;
  }
  if (!quick) {
    std::string error;
    std::string path =
        std::string(MOEPLAN_SOURCE_DIR) + "/examples/seed-moe-30b/deployment.textproto";
    std::optional<std::string> text = moeplan::readFile(path, error);
    if (!text) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    Loaded seed = load(*text, path);
    report("seed: every strategy on 16 GPUs at 128, 1152 and 10240 tokens per sequence",
           moeplan::search::searchStrategies(seed.deployment, seed.spec, options));
  }
  Loaded big = load(kCluster1024, "cluster-1024");
  report("1024 GPUs (64 nodes x 16): the seed model, 1024 sequences, latency <= 200 ms, "
         "micro_batches {4}, expert_tp {1}, rank order tp-ep-dp-pp",
         moeplan::search::searchStrategies(big.deployment, big.spec, options));
  return 0;
}
