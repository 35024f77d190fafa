// Import: a deployment description into the model dialect. A translation, not a pass: its
// input is a .textproto, its output the module the pass pipeline starts from.
//
// The module carries the deployment itself (`model.deployment`, the description's fields as
// a dictionary), where each field was written (`model.locations`, field path -> location in
// the .textproto) and the device mesh (`model.mesh`); `func.func @forward` holds the model as
// model-dialect ops on the whole batch, each op located at the field that defines it. A
// GENERATE workload adds `func.func @decode_step`: the same model on one new token per
// sequence, attending to the cache the prefill (@forward) and earlier steps wrote.
#pragma once

#include "moeplan/Description/Load.h"
#include "moeplan/Description/Spec.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <optional>
#include <string>

namespace moeplan {

// Module attribute names.
constexpr const char *kDeploymentAttr = "model.deployment";
constexpr const char *kLocationsAttr = "model.locations";
constexpr const char *kMeshAttr = "model.mesh";
constexpr const char *kShardingAttr = "model.sharding";
// The decode step of a GENERATE workload.
constexpr const char *kDecodeStepFunc = "decode_step";
// Discardable op attributes.
constexpr const char *kLayerAttr = "layer";
constexpr const char *kStageAttr = "stage";

// Protobuf message <-> dictionary attribute (fields by name; enums by value name; repeated
// fields as arrays). Only fields that are set are written.
mlir::DictionaryAttr messageToAttr(mlir::MLIRContext *ctx, const google::protobuf::Message &m);
// Returns false and sets `error` (naming the field path) when the dictionary does not fit.
bool attrToMessage(mlir::DictionaryAttr attr, google::protobuf::Message &m, std::string &error);
// The same, with field paths under `prefix`.
bool attrToMessageAt(mlir::DictionaryAttr attr, google::protobuf::Message &m,
                     const std::string &prefix, std::string &error);

// Builds the model module of a description whose fields resolved (`spec`).
mlir::OwningOpRef<mlir::ModuleOp> importDeployment(mlir::MLIRContext *ctx,
                                                   const LoadedDescription &loaded,
                                                   const DeploymentSpec &spec);

// The deployment a module carries, resolved. Emits an error on `module` and returns nullopt
// when it has none or it does not resolve. Field findings are appended to `fieldFindings`
// when given.
std::optional<DeploymentSpec> deploymentOf(mlir::ModuleOp module,
                                           std::vector<Finding> *fieldFindings = nullptr);

// Reports a finding as a diagnostic of its severity at its .textproto location.
mlir::InFlightDiagnostic emitFinding(mlir::MLIRContext *ctx, const Finding &f);

// The module's func.func @forward; emits an error naming `pass` when there is none.
mlir::func::FuncOp forwardFunction(mlir::ModuleOp module, llvm::StringRef pass);

// The module's forward functions and the part of the workload each computes: @forward, then
// @decode_step when there is one. Empty (and an error naming `pass`) without @forward.
struct ForwardFunction {
  mlir::func::FuncOp fn;
  bool decodeStep = false;
};
llvm::SmallVector<ForwardFunction> forwardFunctions(mlir::ModuleOp module, llvm::StringRef pass);

// The location index a module carries (empty when it has none).
LocationIndex locationsOf(mlir::ModuleOp module);

// Element type of the model's dtype.
mlir::Type modelElementType(mlir::MLIRContext *ctx, desc::DType dtype);

} // namespace moeplan
