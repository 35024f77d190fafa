// Parameter counts derived from the model's dimensions, whole or as one GPU's shard.
#pragma once

#include "moeplan/Description/Spec.h"

#include <cstdint>

namespace moeplan {

// Parameters by kind. Counting conventions:
// - attention: Wq d x (heads hd), Wk and Wv d x (kv_heads hd), Wo (heads hd) x d, plus the
//   q/k/v biases when qkv_bias and Wo's when attention_out_bias;
// - router: d x experts per MoE layer, no bias;
// - experts / dense_ffn: ffnMatrices() matrices of d x hidden (plus biases when ffn_bias);
// - shared experts: one such FFN of shared_expert_hidden per MoE layer, plus its gate's d;
// - norms: two per layer (before attention and before the FFN) and a final norm;
//   LayerNorm holds 2 d, RMSNorm d;
// - embedding: vocab x d; lm_head: vocab x d unless tied to the embedding.
struct ParamBreakdown {
  int64_t attention = 0, router = 0, experts = 0, sharedExperts = 0, denseFfn = 0, norms = 0,
          embedding = 0, lmHead = 0;
  int64_t total() const;
  ParamBreakdown &operator+=(const ParamBreakdown &o);
};

// How one GPU holds a shard: attention and dense FFN split over tp (KV heads replicated when
// kv_heads < tp), experts spread over ep and each split over expert_tp, the vocabulary split
// over tp, norms and router replicated. Degrees that do not divide round up (the rules flag
// them).
struct ShardDegrees {
  int64_t tp = 1, ep = 1, expertTp = 1;
};

// Parameters of layers [firstLayer, lastLayer] on one GPU, plus the embedding and the
// final norm / LM head when asked. With ShardDegrees{} and every part, the whole model.
// Throws SizeOverflow when a count does not fit 64 bits.
ParamBreakdown countParams(const ModelSpec &m, const ShardDegrees &shard, int64_t firstLayer,
                           int64_t lastLayer, bool withEmbedding, bool withHead);

// The whole, unsharded model.
ParamBreakdown countModelParams(const ModelSpec &m);

// Parameters one token touches in a forward pass: everything but the experts it is not
// routed to (top_k of them per MoE layer).
int64_t activeParamsPerToken(const ModelSpec &m);

} // namespace moeplan
