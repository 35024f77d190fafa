//===- ModelOps.td - ops of the model dialect ----------------------------------------===//
//
// Activations are [batch, seq, d_model] tensors and token ids [batch, seq] before sharding;
// model-shard makes them local [tokens, d_model] and [tokens], tokens position-major (token
// p x batch + b; sequence parallelism cuts this order into contiguous pieces). Expert index
// and gate tensors add a trailing top_k dimension. Each op with weights
// names them by `weight_prefix`, the checkpoint prefix of its tensors (e.g.
// "layers.3.attention"); the weights themselves stay implicit at this level.
//
//===----------------------------------------------------------------------------------===//
#ifndef MOEPLAN_DIALECT_MODEL_MODELOPS_TD
#define MOEPLAN_DIALECT_MODEL_MODELOPS_TD

include "moeplan/Dialect/Model/ModelAttrs.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class Model_Op<string mnemonic, list<Trait> traits = []>
    : Op<Model_Dialect, mnemonic, !listconcat([Pure], traits)>;

def Model_Hidden : TensorRankOf<[AnyFloat], [2, 3]>;
def Model_TokenIds : TensorRankOf<[I32, I64], [1, 2]>;
def Model_TopKIndices : TensorRankOf<[I32], [2, 3]>;
def Model_TopKWeights : TensorRankOf<[AnyFloat], [2, 3]>;

def Model_EmbeddingOp : Model_Op<"embedding"> {
  let summary = "token ids to hidden states";
  let arguments = (ins Model_TokenIds:$ids, I64Attr:$vocab, StrAttr:$weight_prefix);
  let results = (outs Model_Hidden:$result);
  let assemblyFormat = "$ids attr-dict `:` type($ids) `->` type($result)";
  let hasVerifier = 1;
}

def Model_NormOp : Model_Op<"norm", [SameOperandsAndResultType]> {
  let summary = "LayerNorm or RMSNorm over d_model";
  let arguments = (ins Model_NormKindAttr:$kind, Model_Hidden:$input, StrAttr:$weight_prefix,
                       DefaultValuedAttr<F64Attr, "1e-5">:$epsilon);
  let results = (outs Model_Hidden:$result);
  let assemblyFormat = "$kind $input attr-dict `:` type($input)";
}

def Model_AttentionOp : Model_Op<"attention", [SameOperandsAndResultType]> {
  let summary = "causal multi-head / grouped-query self-attention with its projections";
  let description = [{
    With `rope_theta`, q and k are rotated (rotary position embeddings, rotate-half layout)
    by each token's position in its sequence before the scores are taken.
  }];
  let arguments = (ins Model_Hidden:$input, I64Attr:$heads, I64Attr:$kv_heads,
                       I64Attr:$head_dim, StrAttr:$weight_prefix,
                       OptionalAttr<F64Attr>:$rope_theta);
  let results = (outs Model_Hidden:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Model_RouterOp : Model_Op<"router"> {
  let summary = "top-k expert choice per token: expert indices and gate weights";
  let description = [{
    Softmax over every expert's logit, then the top_k largest probabilities; with
    `renormalize`, those k gates are divided by their sum.
  }];
  let arguments = (ins Model_Hidden:$input, I64Attr:$experts, I64Attr:$top_k,
                       StrAttr:$weight_prefix, UnitAttr:$renormalize);
  let results = (outs Model_TopKIndices:$indices, Model_TopKWeights:$gates);
  let assemblyFormat =
      "$input attr-dict `:` type($input) `->` type($indices) `,` type($gates)";
  let hasVerifier = 1;
}

def Model_ExpertDispatchOp : Model_Op<"expert_dispatch"> {
  let summary = "permute tokens into per-expert slots of fixed capacity";
  let description = [{
    Each token goes to each of its top-k experts, into the next free slot; a token whose
    expert is full is dropped (its slot is -1). The tokens of one dispatch form the group
    over which capacity = ceil(tokens x top_k / experts x capacity_factor) is counted. With
    `gates` (drop policy "probs"), an expert over capacity keeps the choices with the highest
    gates instead of the first ones.
  }];
  let arguments = (ins Model_Hidden:$input, Model_TopKIndices:$indices,
                       Optional<Model_TopKWeights>:$gates, I64Attr:$experts, I64Attr:$capacity);
  let results = (outs 3DTensorOf<[AnyFloat]>:$dispatched, Model_TopKIndices:$slots);
  let assemblyFormat = "$input `,` $indices (`by` $gates^ `:` type($gates))? attr-dict `:` "
                       "type($input) `,` type($indices) `->` type($dispatched) `,` type($slots)";
  let hasVerifier = 1;
}

def Model_ExpertFfnOp : Model_Op<"expert_ffn", [SameOperandsAndResultType]> {
  let summary = "every expert's FFN applied to its [capacity, d_model] slots";
  let arguments = (ins Model_ActivationAttr:$activation, 3DTensorOf<[AnyFloat]>:$input,
                       I64Attr:$hidden, StrAttr:$weight_prefix);
  let results = (outs 3DTensorOf<[AnyFloat]>:$result);
  let assemblyFormat = "$activation $input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Model_ExpertCombineOp : Model_Op<"expert_combine"> {
  let summary = "un-permute expert outputs and sum them weighted by the gates";
  let arguments = (ins 3DTensorOf<[AnyFloat]>:$expert_outputs, Model_TopKIndices:$indices,
                       Model_TopKIndices:$slots, Model_TopKWeights:$gates);
  let results = (outs Model_Hidden:$result);
  let assemblyFormat = "$expert_outputs `,` $indices `,` $slots `,` $gates attr-dict `:` "
                       "type($expert_outputs) `,` type($indices) `,` type($slots) `,` "
                       "type($gates) `->` type($result)";
  let hasVerifier = 1;
}

def Model_DenseFfnOp : Model_Op<"dense_ffn", [SameOperandsAndResultType]> {
  let summary = "the FFN of a dense (non-MoE) layer";
  let arguments = (ins Model_ActivationAttr:$activation, Model_Hidden:$input, I64Attr:$hidden,
                       StrAttr:$weight_prefix);
  let results = (outs Model_Hidden:$result);
  let assemblyFormat = "$activation $input attr-dict `:` type($input)";
}

def Model_SharedExpertGateOp : Model_Op<"shared_expert_gate", [SameOperandsAndResultType]> {
  let summary = "a shared expert's output scaled per token by sigmoid(input . w)";
  let description = [{
    Qwen2-MoE's shared_expert_gate: w is a [d_model, 1] weight; each token's row of `value`
    (the shared expert's output) is multiplied by sigmoid of its input row times w.
  }];
  let arguments = (ins Model_Hidden:$input, Model_Hidden:$value, StrAttr:$weight_prefix);
  let results = (outs Model_Hidden:$result);
  let assemblyFormat = "$input `,` $value attr-dict `:` type($result)";
}

def Model_AddOp : Model_Op<"add", [SameOperandsAndResultType, Commutative]> {
  let summary = "residual addition";
  let arguments = (ins Model_Hidden:$lhs, Model_Hidden:$rhs);
  let results = (outs Model_Hidden:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Model_LmHeadOp : Model_Op<"lm_head"> {
  let summary = "hidden states to vocabulary logits";
  let arguments = (ins Model_Hidden:$input, I64Attr:$vocab, StrAttr:$weight_prefix);
  let results = (outs Model_Hidden:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Model_ReshardOp : Model_Op<"reshard"> {
  let summary = "data movement between shardings over one mesh axis";
  let description = [{
    Inserted by model-shard where the sharding of a value changes: `all_gather` (tokens
    split -> whole), `reduce_scatter` (partial sums -> summed, tokens split), `all_reduce`
    (partial sums -> summed), `all_to_all` (tokens' slots -> the experts' owners, `to
    experts`, or back, `to tokens`: an all_to_all says which, nothing else does).
    Lowered to the collective of the same name on the communicator group of `axis`.
  }];
  let arguments = (ins AnyRankedTensor:$input, Model_ReshardKindAttr:$kind, StrAttr:$axis,
                       OptionalAttr<Model_ExchangeDirectionAttr>:$direction);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$kind $input `over` $axis (`to` $direction^)? attr-dict `:` type($input) "
                       "`->` type($result)";
  let hasVerifier = 1;
}

def Model_TransferOp : Model_Op<"transfer", [SameOperandsAndResultType]> {
  let summary = "the residual stream passed from one pipeline stage to the next";
  let arguments = (ins Model_Hidden:$input, I64Attr:$from_stage, I64Attr:$to_stage);
  let results = (outs Model_Hidden:$result);
  let assemblyFormat = "$input `from` $from_stage `to` $to_stage attr-dict `:` type($input)";
  let hasVerifier = 1;
}

#endif // MOEPLAN_DIALECT_MODEL_MODELOPS_TD
