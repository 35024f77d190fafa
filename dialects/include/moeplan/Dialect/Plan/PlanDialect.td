//===- PlanDialect.td - per-rank programs of a static parallel plan -------------------===//
//
// The plan dialect is what each GPU executes: communicator groups derived from the mesh,
// and per pipeline stage one program of buffers (memrefs placed in one arena), kernel
// launches with their shard shapes, collectives on named mesh axes and pipeline transfers,
// each on a stream and ordered across streams by events. It mirrors
// runtime/schema/plan.proto, into which it is exported one to one.
//
//===----------------------------------------------------------------------------------===//
#ifndef MOEPLAN_DIALECT_PLAN_PLANDIALECT_TD
#define MOEPLAN_DIALECT_PLAN_PLANDIALECT_TD

include "mlir/IR/OpBase.td"

def Plan_Dialect : Dialect {
  let name = "plan";
  let summary = "per-rank programs: buffers, kernels, collectives, streams and events";
  // Not ::moeplan::plan: that namespace belongs to the plan's protobuf schema.
  let cppNamespace = "::moeplan::planir";
  let useDefaultAttributePrinterParser = 1;
}

#endif // MOEPLAN_DIALECT_PLAN_PLANDIALECT_TD
