//===- PlanOps.td - ops of the plan dialect -------------------------------------------===//
#ifndef MOEPLAN_DIALECT_PLAN_PLANOPS_TD
#define MOEPLAN_DIALECT_PLAN_PLANOPS_TD

include "moeplan/Dialect/Plan/PlanDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/IR/OpAsmInterface.td"

//===----------------------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------------------===//

def Plan_BufferKind : I32EnumAttr<"BufferKind", "what a buffer holds", [
    I32EnumAttrCase<"weight", 1>, I32EnumAttrCase<"activation", 2>,
    I32EnumAttrCase<"kv_cache", 3>, I32EnumAttrCase<"comm", 4>,
    I32EnumAttrCase<"workspace", 5>, I32EnumAttrCase<"input", 6>,
    I32EnumAttrCase<"output", 7>]> {
  let cppNamespace = "::moeplan::planir";
  let genSpecializedAttr = 0;
}
def Plan_BufferKindAttr : EnumAttr<Plan_Dialect, Plan_BufferKind, "buffer_kind">;

def Plan_KernelKind : I32EnumAttr<"KernelKind", "kernel", [
    I32EnumAttrCase<"embedding", 1>, I32EnumAttrCase<"norm", 2>, I32EnumAttrCase<"gemm", 3>,
    I32EnumAttrCase<"attention", 4>, I32EnumAttrCase<"activation", 5>,
    I32EnumAttrCase<"router", 6>, I32EnumAttrCase<"dispatch", 7>,
    I32EnumAttrCase<"grouped_gemm", 8>, I32EnumAttrCase<"combine", 9>,
    I32EnumAttrCase<"add", 10>, I32EnumAttrCase<"transpose", 11>,
    I32EnumAttrCase<"bias_add", 12>, I32EnumAttrCase<"rope", 13>,
    I32EnumAttrCase<"sigmoid_gate", 14>, I32EnumAttrCase<"kv_append", 15>,
    I32EnumAttrCase<"argmax", 16>, I32EnumAttrCase<"argmax_merge", 17>]> {
  let cppNamespace = "::moeplan::planir";
  let genSpecializedAttr = 0;
}
def Plan_KernelKindAttr : EnumAttr<Plan_Dialect, Plan_KernelKind, "kernel_kind">;

def Plan_NormKind : I32EnumAttr<"NormKind", "normalization", [
    I32EnumAttrCase<"none", 0>, I32EnumAttrCase<"layer_norm", 1>,
    I32EnumAttrCase<"rms_norm", 2>]> {
  let cppNamespace = "::moeplan::planir";
  let genSpecializedAttr = 0;
}
def Plan_ActivationKind : I32EnumAttr<"ActivationKind", "activation function", [
    I32EnumAttrCase<"none", 0>, I32EnumAttrCase<"gelu", 1>, I32EnumAttrCase<"swiglu", 2>]> {
  let cppNamespace = "::moeplan::planir";
  let genSpecializedAttr = 0;
}

// Kernel dimensions are 0, false or none where the kernel's kind has no use for them, and
// are then left out of the printed form.
def Plan_DimParameter : DefaultValuedParameter<"int64_t", "0">;
def Plan_FlagParameter : DefaultValuedParameter<"bool", "false"> {
  let parser = [{ [&]() -> ::mlir::FailureOr<bool> {
    if (succeeded($_parser.parseOptionalKeyword("true"))) return true;
    if (succeeded($_parser.parseOptionalKeyword("false"))) return false;
    return $_parser.emitError($_parser.getCurrentLocation(), "expected true or false");
  }() }];
  let printer = [{ $_printer << ($_self ? "true" : "false") }];
}
def Plan_RealParameter : APFloatParameter<""> {
  let defaultValue = "::llvm::APFloat(0.0)";
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double v = 0;
    if ($_parser.parseFloat(v)) return ::mlir::failure();
    return ::llvm::APFloat(v);
  }() }];
  let printer = [{ $_printer.printFloat($_self) }];
}
class Plan_KindParameter<EnumAttrInfo info> : EnumParameter<info> {
  let defaultValue = info.cppNamespace # "::" # info.className # "::none";
}

// A kernel's dimensions and settings: the fields of plan.proto's Kernel after its buffers,
// with the same names and meanings (KernelKind's comments there say which each kind uses).
def Plan_KernelDimsAttr : AttrDef<Plan_Dialect, "KernelDims"> {
  let mnemonic = "dims";
  let parameters = (ins Plan_DimParameter:$m, Plan_DimParameter:$n, Plan_DimParameter:$k,
      Plan_DimParameter:$groups, Plan_DimParameter:$inner, Plan_DimParameter:$tokens,
      Plan_DimParameter:$experts, Plan_DimParameter:$top_k, Plan_DimParameter:$capacity,
      Plan_DimParameter:$sequences, Plan_DimParameter:$seq_len, Plan_DimParameter:$kv_len,
      Plan_DimParameter:$heads, Plan_DimParameter:$kv_heads, Plan_DimParameter:$head_dim,
      Plan_DimParameter:$vocab_begin, Plan_DimParameter:$vocab_end,
      Plan_FlagParameter:$transpose_b, Plan_KindParameter<Plan_NormKind>:$norm,
      Plan_KindParameter<Plan_ActivationKind>:$activation, Plan_RealParameter:$epsilon,
      Plan_RealParameter:$rope_theta, Plan_DimParameter:$first_position,
      Plan_FlagParameter:$renormalize, Plan_FlagParameter:$per_step);
  let assemblyFormat = "`<` struct(params) `>`";
  let extraClassDeclaration = [{
    // Groups of a grouped kernel; 1 for a kernel that is not grouped (groups 0).
    int64_t groupCount() const { return getGroups() > 0 ? getGroups() : 1; }
  }];
}

// `dim` of the full tensor cut into `parts` pieces over the group on `axis`.
def Plan_SplitAttr : AttrDef<Plan_Dialect, "Split"> {
  let mnemonic = "split";
  let parameters = (ins "int64_t":$dim, StringRefParameter<"mesh axis">:$axis,
                        "int64_t":$parts);
  let assemblyFormat = "`<` $dim `over` $axis `parts` $parts `>`";
}

// The slice of a named full tensor (checkpoint weight, input, output) a buffer holds.
def Plan_SliceAttr : AttrDef<Plan_Dialect, "Slice"> {
  let mnemonic = "slice";
  let parameters = (ins StringRefParameter<"full tensor name">:$tensor,
                        ArrayRefParameter<"int64_t">:$full_shape,
                        OptionalArrayRefParameter<"::moeplan::planir::SplitAttr">:$splits,
                        DefaultValuedParameter<"int64_t", "-1">:$micro_batch);
  let assemblyFormat =
      "`<` $tensor `[` $full_shape `]` (`splits` `[` $splits^ `]`)? (`mb` $micro_batch^)? `>`";
}

// Work an instruction does, counted from its shapes.
def Plan_CostAttr : AttrDef<Plan_Dialect, "Cost"> {
  let mnemonic = "cost";
  let parameters = (ins "int64_t":$flops, "int64_t":$memory_bytes, "int64_t":$comm_bytes,
                        DefaultValuedParameter<"int64_t", "0">:$model_flops);
  let assemblyFormat = "`<` struct(params) `>`";
}

//===----------------------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------------------===//

class Plan_Op<string mnemonic, list<Trait> traits = []> : Op<Plan_Dialect, mnemonic, traits>;

def Plan_GroupOp : Plan_Op<"group", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "a communicator group: ranks sharing every mesh coordinate but `axis`";
  let arguments = (ins SymbolNameAttr:$sym_name, StrAttr:$axis, DenseI64ArrayAttr:$ranks);
  let assemblyFormat = "$sym_name $axis $ranks attr-dict";
  let hasVerifier = 1;
}

def Plan_ProgramOp : Plan_Op<"program", [Symbol, IsolatedFromAbove, SingleBlock, NoTerminator,
    HasParent<"::mlir::ModuleOp">, RegionKindInterface]> {
  let summary = "the instruction stream of the ranks of one pipeline stage";
  let description = [{
    Ops in the body are listed in issue order. Before scheduling the body is a template for
    one micro-batch; `plan-schedule` expands it over the micro-batches.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, I64Attr:$stage, I64Attr:$first_layer,
                       I64Attr:$end_layer, DenseI64ArrayAttr:$ranks,
                       OptionalAttr<I64Attr>:$arena_bytes);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$sym_name `stage` $stage `layers` `[` $first_layer `,` $end_layer `)` "
                       "`ranks` $ranks attr-dict-with-keyword $body";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    static ::mlir::RegionKind getRegionKind(unsigned) { return ::mlir::RegionKind::SSACFG; }
  }];
}

def Plan_DecodeStepOp : Plan_Op<"decode_step", [HasParent<"ProgramOp">]> {
  let summary = "the boundary between a GENERATE program's prefill and its decode step";
  let description = [{
    Instructions before it are the prefill, run once; those after it one decode step, run
    once per generated token after the first. Every stream of the rank drains at the
    boundary, so no event or buffer dependency crosses it except through buffers that live
    for the whole program (weights, KV caches, the step's token ids and the generated ones)
    and through transfers between stages (the sampled ids the last stage sends the first).
  }];
  let assemblyFormat = "attr-dict";
}

def Plan_BufferOp : Plan_Op<"buffer", [DeclareOpInterfaceMethods<OpAsmOpInterface,
                                                                 ["getAsmResultNames"]>]> {
  let summary = "a buffer of the rank's arena";
  let description = [{
    `offset` (set by plan-memory) places it in the arena; `live` gives the issue-order range
    of instructions during which its bytes are in use.
  }];
  let arguments = (ins Plan_BufferKindAttr:$kind, StrAttr:$name,
                       OptionalAttr<Plan_SliceAttr>:$slice, OptionalAttr<I64Attr>:$offset,
                       OptionalAttr<DenseI64ArrayAttr>:$live);
  let results = (outs AnyStaticShapeMemRef:$result);
  let assemblyFormat = "$kind $name attr-dict `:` type($result)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{ int64_t getBytes(); }];
}

//===----------------------------------------------------------------------------------===//
// Instructions. Every one carries its schedule: micro-batch, layer, stream, events.
//===----------------------------------------------------------------------------------===//

// What every instruction carries, read and set by the passes through this interface (typed,
// not by attribute name): plan-schedule sets the micro-batch, stream and events, plan-cost
// the costs, export reads them all.
def Plan_InstructionOpInterface : OpInterface<"InstructionOpInterface"> {
  let description = [{
    A kernel, collective or transfer of a plan program, with its schedule: the micro-batch
    and layer it belongs to, its label, the stream it is issued on, the events it waits for
    and records, and its cost (a GENERATE plan's decode-step kernels also their growth per
    step).
  }];
  let cppNamespace = "::moeplan::planir";
  let methods = [
    InterfaceMethod<"micro-batch", "int64_t", "getMicroBatch", (ins), [{}],
                    [{ return int64_t($_op.getMb()); }]>,
    InterfaceMethod<"the micro-batch, an i64 attribute (plan-schedule shares one per value)",
                    "void", "setMicroBatchAttr", (ins "::mlir::IntegerAttr":$mb), [{}],
                    [{ $_op.setMbAttr(mb); }]>,
    InterfaceMethod<"layer, -1 outside the layers", "int64_t", "getLayerIndex", (ins), [{}],
                    [{ return int64_t($_op.getLayer()); }]>,
    InterfaceMethod<"", "::llvm::StringRef", "getLabelName", (ins), [{}],
                    [{ return $_op.getLabel(); }]>,
    InterfaceMethod<"", "int64_t", "getStreamIndex", (ins), [{}],
                    [{ return int64_t($_op.getStream()); }]>,
    InterfaceMethod<"", "void", "setStreamIndex", (ins "int64_t":$stream), [{}],
                    [{ if (int64_t($_op.getStream()) != stream) $_op.setStream(uint64_t(stream)); }]>,
    InterfaceMethod<"events waited for before issue", "::mlir::DenseI64ArrayAttr",
                    "getWaitEvents", (ins), [{}], [{ return $_op.getWaitsAttr(); }]>,
    InterfaceMethod<"", "void", "setWaitEvents", (ins "::llvm::ArrayRef<int64_t>":$events),
                    [{}], [{ $_op.setWaits(events); }]>,
    InterfaceMethod<"the event recorded on completion", "std::optional<int64_t>",
                    "getRecordEvent", (ins), [{}], [{
      if (std::optional<uint64_t> e = $_op.getRecord()) return int64_t(*e);
      return std::nullopt;
    }]>,
    InterfaceMethod<"", "void", "setRecordEvent", (ins "int64_t":$event), [{}],
                    [{ $_op.setRecord(uint64_t(event)); }]>,
    InterfaceMethod<"", "::moeplan::planir::CostAttr", "getCostAttr", (ins), [{}],
                    [{ return $_op.getCostAttr(); }]>,
    InterfaceMethod<"", "void", "setCostAttr", (ins "::moeplan::planir::CostAttr":$cost),
                    [{}], [{ $_op.setCostAttr(cost); }]>,
    InterfaceMethod<"", "::moeplan::planir::CostAttr", "getStepCostAttr", (ins), [{}],
                    [{ return $_op.getStepCostAttr(); }]>,
    InterfaceMethod<"", "void", "setStepCostAttr", (ins "::moeplan::planir::CostAttr":$cost),
                    [{}], [{ $_op.setStepCostAttr(cost); }]>,
    InterfaceMethod<"works on routed expert rows", "bool", "isRouted", (ins), [{}],
                    [{ return $_op.getRouted(); }]>,
  ];
}

class Plan_InstructionOp<string mnemonic, list<Trait> traits = []>
    : Plan_Op<mnemonic, !listconcat([HasParent<"ProgramOp">, Plan_InstructionOpInterface],
                                    traits)> {
  dag scheduleArgs = (ins DefaultValuedAttr<I64Attr, "0">:$mb,
                          DefaultValuedAttr<I64Attr, "-1">:$layer, StrAttr:$label,
                          DefaultValuedAttr<I64Attr, "0">:$stream,
                          OptionalAttr<DenseI64ArrayAttr>:$waits,
                          OptionalAttr<I64Attr>:$record,
                          OptionalAttr<Plan_CostAttr>:$cost,
                          // A decode-step kernel's cost growth per step (plan.proto
                          // Instruction.step_cost).
                          OptionalAttr<Plan_CostAttr>:$step_cost,
                          // Works on routed expert rows (plan.proto Instruction.routed).
                          UnitAttr:$routed);
}

def Plan_KernelOp : Plan_InstructionOp<"kernel", [AttrSizedOperandSegments]> {
  let summary = "a kernel launch on local shards";
  let description = [{
    Operands are the kernel's inputs then its outputs (see KernelKind in plan.proto for
    their order per kind); `dims` holds the kernel's dimensions (m, n, k, tokens...).
  }];
  let arguments = !con((ins Plan_KernelKindAttr:$kind,
                            Variadic<AnyStaticShapeMemRef>:$inputs,
                            Variadic<AnyStaticShapeMemRef>:$outputs,
                            Plan_KernelDimsAttr:$dims), scheduleArgs);
  let assemblyFormat = "$kind `(` $inputs `)` `->` `(` $outputs `)` $dims attr-dict `:` "
                       "functional-type($inputs, $outputs)";
  let hasVerifier = 1;
}

// A collective or a transfer: its group axis, element count and place in the plan's one
// global order of communication (set by plan-schedule).
def Plan_CommunicationOpInterface : OpInterface<"CommunicationOpInterface"> {
  let cppNamespace = "::moeplan::planir";
  let methods = [
    InterfaceMethod<"", "::llvm::StringRef", "getAxisName", (ins), [{}],
                    [{ return $_op.getAxis(); }]>,
    InterfaceMethod<"", "int64_t", "getElementCount", (ins), [{}],
                    [{ return int64_t($_op.getCount()); }]>,
    InterfaceMethod<"", "std::optional<int64_t>", "getSequenceIndex", (ins), [{}], [{
      if (std::optional<uint64_t> s = $_op.getSequence()) return int64_t(*s);
      return std::nullopt;
    }]>,
    InterfaceMethod<"", "void", "setSequenceIndex", (ins "int64_t":$sequence), [{}],
                    [{ $_op.setSequence(uint64_t(sequence)); }]>,
  ];
}

class Plan_CollectiveOp<string mnemonic>
    : Plan_InstructionOp<mnemonic, [Plan_CommunicationOpInterface]> {
  dag collectiveArgs = (ins StrAttr:$axis, I64Attr:$count,
                            OptionalAttr<I64Attr>:$sequence);
}

class Plan_SymmetricCollectiveOp<string mnemonic, string what>
    : Plan_CollectiveOp<mnemonic> {
  let summary = what;
  let arguments = !con((ins AnyStaticShapeMemRef:$input, AnyStaticShapeMemRef:$output),
                       collectiveArgs, scheduleArgs);
  let assemblyFormat = "$input `->` $output `on` $axis `count` $count attr-dict `:` "
                       "type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Plan_AllReduceOp : Plan_SymmetricCollectiveOp<"all_reduce",
    "sum of `count` elements over the group">;
def Plan_AllGatherOp : Plan_SymmetricCollectiveOp<"all_gather",
    "each member's `count` elements, concatenated in group order">;
def Plan_ReduceScatterOp : Plan_SymmetricCollectiveOp<"reduce_scatter",
    "the sum of every member's piece i (of `count` elements) to member i">;

def Plan_AllToAllOp : Plan_CollectiveOp<"all_to_all"> {
  let summary = "send_counts[j] elements to member j, recv_counts[j] from it";
  let arguments = !con((ins AnyStaticShapeMemRef:$input, AnyStaticShapeMemRef:$output,
                            DenseI64ArrayAttr:$send_counts, DenseI64ArrayAttr:$recv_counts),
                       collectiveArgs, scheduleArgs);
  let assemblyFormat = "$input `->` $output `on` $axis `send` $send_counts `recv` $recv_counts "
                       "`count` $count attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Plan_SendOp : Plan_CollectiveOp<"send"> {
  let summary = "send `count` elements to member `peer` of the group";
  let description = [{
    `feeds_next_step`: a GENERATE plan's sampled token ids, sent by the last pipeline stage
    to the first, whose next decode step receives them; the runtime skips it where no
    decode step follows.
  }];
  let arguments = !con((ins AnyStaticShapeMemRef:$input, I64Attr:$peer), collectiveArgs,
                       scheduleArgs, (ins UnitAttr:$feeds_next_step));
  let assemblyFormat = "$input `to` $peer `on` $axis `count` $count attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Plan_RecvOp : Plan_CollectiveOp<"recv"> {
  let summary = "receive `count` elements from member `peer` of the group";
  let description = [{
    `feeds_next_step`: the sampled token ids of the previous part (SendOp's), received at the
    start of a decode step.
  }];
  let arguments = !con((ins AnyStaticShapeMemRef:$output, I64Attr:$peer), collectiveArgs,
                       scheduleArgs, (ins UnitAttr:$feeds_next_step));
  let assemblyFormat = "$output `from` $peer `on` $axis `count` $count attr-dict `:` "
                       "type($output)";
  let hasVerifier = 1;
}

#endif // MOEPLAN_DIALECT_PLAN_PLANOPS_TD
