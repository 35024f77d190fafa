// Model and deployment specs shared by the unit tests, with the public figures they match.
#pragma once

#include "moeplan/Description/Spec.h"

namespace moeplan::testing {

// The seed document's model: 16 layers, d 1024, 16 x 64 heads, 64 experts of 2048, top-1.
inline ModelSpec seedModel() {
  ModelSpec m;
  m.layers = 16, m.dModel = 1024, m.heads = 16, m.headDim = 64, m.kvHeads = 16;
  m.experts = 64, m.topK = 1, m.expertHidden = 2048, m.moeEveryNth = 1;
  m.norm = desc::LAYER_NORM, m.activation = desc::GELU, m.dtype = desc::FP16;
  return m;
}

// GPT-3 175B (Brown et al. 2020): dense, 96 layers, h 12288, 96 heads, FFN 4h, vocabulary
// 50257 tied, biases, LayerNorm. Learned position embeddings are not modelled.
inline ModelSpec gpt3() {
  ModelSpec m;
  m.layers = 96, m.dModel = 12288, m.heads = 96, m.headDim = 128, m.kvHeads = 96;
  m.moeEveryNth = 0, m.denseFfnHidden = 4 * 12288;
  m.norm = desc::LAYER_NORM, m.activation = desc::GELU, m.vocab = 50257;
  m.tieEmbeddings = true, m.qkvBias = m.outBias = m.ffnBias = true, m.dtype = desc::FP16;
  return m;
}

// Mixtral 8x7B (Mistral AI model card: 46.7 B parameters, 12.9 B active per token).
inline ModelSpec mixtral() {
  ModelSpec m;
  m.layers = 32, m.dModel = 4096, m.heads = 32, m.headDim = 128, m.kvHeads = 8;
  m.experts = 8, m.topK = 2, m.expertHidden = 14336, m.moeEveryNth = 1;
  m.norm = desc::RMS_NORM, m.activation = desc::SWIGLU, m.vocab = 32000;
  m.dtype = desc::BF16;
  return m;
}

inline DeploymentSpec seedDeployment() {
  DeploymentSpec d;
  d.name = "seed";
  d.model = seedModel();
  d.cluster.nodes = 1, d.cluster.gpusPerNode = 16;
  d.cluster.peakFlops = 400e12, d.cluster.mfu = 0.6, d.cluster.memoryBytes = 64e9;
  d.cluster.memoryBandwidth = 1.8e12, d.cluster.memoryBandwidthUtil = 0.8;
  d.cluster.intraNode.bandwidthBytesPerS = 1.44e12;
  d.workload.sequences = 128, d.workload.seqLenMin = 128, d.workload.seqLenMax = 10240;
  d.strategy.tp = 2, d.strategy.pp = 2, d.strategy.dp = 2, d.strategy.ep = 4;
  d.strategy.expertTp = 1, d.strategy.microBatches = 8, d.strategy.capacityFactor = 1.1;
  return d;
}

} // namespace moeplan::testing
