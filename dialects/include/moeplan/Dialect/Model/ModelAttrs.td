//===- ModelAttrs.td - mesh and enums of the model dialect ---------------------------===//
#ifndef MOEPLAN_DIALECT_MODEL_MODELATTRS_TD
#define MOEPLAN_DIALECT_MODEL_MODELATTRS_TD

include "moeplan/Dialect/Model/ModelDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

// The device mesh of Megatron-Core parallel folding, one parameter per named axis. The
// attention part spans tp x dp x pp, the expert part etp x ep x edp x pp over the same GPUs,
// with edp = tp x dp / (etp x ep). `order` lists axes from the most adjacent outwards.
def Model_MeshAttr : AttrDef<Model_Dialect, "Mesh"> {
  let mnemonic = "mesh";
  let summary = "named mesh axes of the attention and expert grids";
  let parameters = (ins "int64_t":$tp, "int64_t":$pp, "int64_t":$dp, "int64_t":$ep,
                        "int64_t":$etp, StringRefParameter<"rank order">:$order);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getWorld() const { return getTp() * getPp() * getDp(); }
    int64_t getEdp() const { return getTp() * getDp() / (getEtp() * getEp()); }
  }];
}

def Model_NormKind : I32EnumAttr<"NormKind", "normalisation", [
    I32EnumAttrCase<"layer_norm", 0>, I32EnumAttrCase<"rms_norm", 1>]> {
  let cppNamespace = "::moeplan::model";
  let genSpecializedAttr = 0;
}
def Model_NormKindAttr : EnumAttr<Model_Dialect, Model_NormKind, "norm_kind">;

def Model_Activation : I32EnumAttr<"Activation", "FFN activation", [
    I32EnumAttrCase<"gelu", 0>, I32EnumAttrCase<"swiglu", 1>]> {
  let cppNamespace = "::moeplan::model";
  let genSpecializedAttr = 0;
}
def Model_ActivationAttr : EnumAttr<Model_Dialect, Model_Activation, "activation">;

def Model_ReshardKind : I32EnumAttr<"ReshardKind", "data movement of a reshard", [
    I32EnumAttrCase<"all_gather", 0>, I32EnumAttrCase<"reduce_scatter", 1>,
    I32EnumAttrCase<"all_reduce", 2>, I32EnumAttrCase<"all_to_all", 3>]> {
  let cppNamespace = "::moeplan::model";
  let genSpecializedAttr = 0;
}
def Model_ReshardKindAttr : EnumAttr<Model_Dialect, Model_ReshardKind, "reshard_kind">;

// Which way an expert-parallel all_to_all moves rows: the tokens' slots to the ranks that own
// their experts, or the experts' outputs back.
def Model_ExchangeDirection : I32EnumAttr<"ExchangeDirection", "way of an all_to_all", [
    I32EnumAttrCase<"experts", 0>, I32EnumAttrCase<"tokens", 1>]> {
  let cppNamespace = "::moeplan::model";
  let genSpecializedAttr = 0;
}
def Model_ExchangeDirectionAttr : EnumAttr<Model_Dialect, Model_ExchangeDirection, "exchange">;

#endif // MOEPLAN_DIALECT_MODEL_MODELATTRS_TD
