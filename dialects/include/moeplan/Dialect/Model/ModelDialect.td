//===- ModelDialect.td - the MoE transformer as ops on tensors -----------------------===//
//
// The model dialect describes what the network computes, before any decision about where:
// embedding, norms, attention, router, expert dispatch / expert FFN / combine, dense FFN and
// LM head, on tensors of [batch, seq, d_model]. The device mesh and strategy ride along as
// attributes whose parameters are the named mesh axes (tp, pp, dp, ep, etp).
//
//===----------------------------------------------------------------------------------===//
#ifndef MOEPLAN_DIALECT_MODEL_MODELDIALECT_TD
#define MOEPLAN_DIALECT_MODEL_MODELDIALECT_TD

include "mlir/IR/OpBase.td"

def Model_Dialect : Dialect {
  let name = "model";
  let summary = "Mixture-of-Experts transformer as ops on tensors";
  let cppNamespace = "::moeplan::model";
  let useDefaultAttributePrinterParser = 1;
}

#endif // MOEPLAN_DIALECT_MODEL_MODELDIALECT_TD
