// The local sizes one rank works on, for one micro-batch: what model-shard writes into the
// types and model-to-plan into buffers and kernels. One place derives them from the strategy.
#pragma once

#include "moeplan/Description/Spec.h"

#include <cstdint>

namespace moeplan {

// Epsilon of every norm (LayerNorm and RMSNorm), as in Megatron-Core's default.
constexpr double kNormEpsilon = 1e-5;

struct LocalShapes {
  int64_t sequences = 0;  // per micro-batch and data-parallel replica
  int64_t queryLen = 0;   // query tokens per sequence (prefill: seq_len; decode: 1)
  int64_t kvLen = 0;      // decode: cached tokens per sequence (a GENERATE plan's decode
                          // step: at step 0, the prompt); prefill: 0
  int64_t cachePositions = 0;  // positions per sequence a KV cache buffer holds
  int64_t tokens = 0;     // T = sequences x queryLen, position-major
  // Between attention and the FFN: T / tp with sequence parallelism, T without (a decode
  // step tp does not divide; StrategySpec::sequenceParallel). The residual stream's rows.
  bool sequenceParallel = true;
  int64_t tokensPerRank = 0;
  int64_t heads = 0, kvHeads = 0;  // local attention heads; kv heads replicate below tp
  int64_t kvParts = 0;    // pieces the kv-head dim is cut into (kv_heads or tp)
  int64_t localExperts = 0;  // experts / ep
  int64_t dispatchGroups = 1;  // capacity groups of one rank's tokensPerRank tokens
  int64_t groupCapacity = 0;   // slots per expert in one group
  int64_t capacity = 0;      // slots per expert for one rank's tokens: groups x groupCapacity
  int64_t expertRows = 0;    // rows each local expert computes: etp x ep x capacity
  int64_t expertHidden = 0;  // expert_hidden / expert_tp
  int64_t denseHidden = 0;   // dense_ffn_hidden / tp
  int64_t vocab = 0;         // ceil(vocab / tp): rows (columns of the LM head) per tp rank
};

// Which part of the workload: a PREFILL or DECODE plan's one forward pass, or a GENERATE
// plan's prefill (the same as PREFILL at the prompt's length) or decode step.
enum class ForwardPart { Whole, DecodeStep };

// Requires a deployment that passed model-validate (divisibility holds).
LocalShapes localShapes(const DeploymentSpec &d, ForwardPart part = ForwardPart::Whole);

} // namespace moeplan
