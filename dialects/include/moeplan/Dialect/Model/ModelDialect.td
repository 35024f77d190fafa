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
  let extraClassDeclaration = [{
    // A memo slot for the compiler's deploymentOf: the deployment attribute it resolved last
    // and what that resolved to, opaque here (the dialect does not know the compiler's
    // types). Every pass of a compile reads the same attribute back; the slot lives and dies
    // with the context, so its key never outlives the attribute it names.
    struct ResolvedDeployment {
      ::mlir::Attribute key;
      std::shared_ptr<const void> value;
    };
    ResolvedDeployment resolvedDeployment;
    std::mutex resolvedDeploymentMutex;
  }];
}

#endif // MOEPLAN_DIALECT_MODEL_MODELDIALECT_TD
