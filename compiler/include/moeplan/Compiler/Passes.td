//===- Passes.td - moeplan's compiler passes ------------------------------------------===//
//
// The pipeline, in order (buildCompilePipeline in Pipeline.h):
//   (import: description -> model dialect, a translation, not a pass)
//   model-validate -> model-shard -> model-pipeline-partition -> model-to-plan
//   -> plan-schedule -> plan-memory -> plan-cost -> plan-simulate -> (export to plan.proto)
//
//===----------------------------------------------------------------------------------===//
#ifndef MOEPLAN_COMPILER_PASSES_TD
#define MOEPLAN_COMPILER_PASSES_TD

include "mlir/Pass/PassBase.td"

def ModelValidate : Pass<"model-validate", "mlir::ModuleOp"> {
  let summary = "Check the deployment's rules; findings become diagnostics at their fields";
  let description = [{
    Runs every rule of `moeplan check` on the deployment the module carries
    (`model.deployment`) and reports each finding as an MLIR diagnostic (error, warning or
    remark by severity) at the location of the field at fault (`model.locations`), so that
    diagnostics point into the .textproto. Fails on any error finding.
  }];
  let dependentDialects = ["::moeplan::model::ModelDialect"];
}

def ModelShard : Pass<"model-shard", "mlir::ModuleOp"> {
  let summary = "Decide each op's sharding over the mesh and materialise reshards";
  let description = [{
    Megatron-style tensor parallelism with sequence parallelism around it: attention and
    dense FFN are column- then row-parallel over `tp` with tokens split over `tp` between
    them (all-gather before, reduce-scatter after), so each token is routed and dispatched
    once. Experts are split over `ep` (whole experts) and `etp` (expert hidden). The batch
    is split over `dp` and into micro-batches. Every tensor type becomes the local shard of
    one micro-batch; `model.reshard` ops mark where data moves.
  }];
  let dependentDialects = ["::moeplan::model::ModelDialect"];
}

def ModelPipelinePartition : Pass<"model-pipeline-partition", "mlir::ModuleOp"> {
  let summary = "Assign layers to pipeline stages and insert stage transfers";
  let description = [{
    Stage of each op from the explicit placement when given, else layers split evenly over
    `pp` (embedding with the first stage, final norm and LM head with the last). A
    `model.transfer` carries the residual stream across each stage boundary.
  }];
  let dependentDialects = ["::moeplan::model::ModelDialect"];
}

def ModelToPlan : Pass<"model-to-plan", "mlir::ModuleOp"> {
  let summary = "Lower the sharded, partitioned model to per-stage plan programs";
  let description = [{
    Emits the communicator groups of every mesh axis (from the rank order), and for each
    stage one `plan.program` holding the weights it owns and the kernels, collectives and
    transfers of one micro-batch (the template plan-schedule expands).
  }];
  let dependentDialects = ["::moeplan::planir::PlanDialect"];
}

def PlanSchedule : Pass<"plan-schedule", "mlir::ModuleOp"> {
  let summary = "Expand micro-batches in schedule order; assign streams, events and the "
                "global collective order";
  let description = [{
    GPipe and 1F1B order each stage's micro-batches (a forward-only workload has no backward
    steps to interleave, so both issue F0..F(m-1); the order is still computed by each
    schedule's rule). Collectives go to stream 1, pipeline transfers to stream 2 (a RECV is
    posted one micro-batch ahead so it overlaps compute), kernels to stream 0; events order
    every cross-stream dependency. Under strategy.overlap DUAL_MICRO_BATCH each schedule step
    runs two micro-batches (the halves 2j, 2j + 1) interleaved: the template is cut after
    every tensor- or expert-parallel collective and each piece is emitted for one half, then
    the other, so one half's collective runs while the other computes. Then every collective
    gets its place in one global order consistent with every rank's issue order; a cycle (a
    deadlock) is an error.
  }];
}

def PlanMemory : Pass<"plan-memory", "mlir::ModuleOp"> {
  let summary = "Place every buffer in one arena per rank from buffer lifetimes";
  let description = [{
    Weights and KV cache stay for the whole program; any other buffer's bytes are reused
    once every use of it happens before (by stream order and events) the first use of the
    next tenant. First-fit by issue order; sets each buffer's offset and live range and the
    program's arena_bytes (its peak memory).
  }];
}

def PlanCost : Pass<"plan-cost", "mlir::ModuleOp"> {
  let summary = "Count each instruction's FLOPs, HBM bytes and communication bytes";
}

def PlanSimulate : Pass<"plan-simulate", "mlir::ModuleOp"> {
  let summary = "Simulate every rank and attach the predicted figures to the module";
  let description = [{
    Exports the plan, runs the discrete-event simulator over all ranks and records the
    prediction as the `plan.prediction` dictionary of the module.
  }];
}

#endif // MOEPLAN_COMPILER_PASSES_TD
