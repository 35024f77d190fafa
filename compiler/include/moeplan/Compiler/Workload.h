// The workload judged as a whole: a deployment's figures at each judged sequence length,
// its requirements at each, what no strategy on the cluster can reach, and its claims.
// compile (and through it check) and search call these; inspect reads what they put in the
// plan (workload_points, claims).
#pragma once

#include "moeplan/Description/Finding.h"
#include "moeplan/Description/Spec.h"
#include "moeplan/schema/plan.pb.h"

#include <optional>
#include <string>
#include <vector>

namespace moeplan {

class CompileSession;

// The deployment with its workload fixed at `seqLen` tokens per sequence.
desc::Deployment atSeqLen(const desc::Deployment &d, int64_t seqLen);

// Requirement findings for a deployment whose plan `p` carries workload points: each
// requirement that fails at some point is one finding of its rule (requirements.latency,
// memory.plan-capacity, ...), at its description field, naming every failing point.
std::vector<Finding> requirementFindings(const plan::Plan &p);

// The least work of the whole batch at one sequence length: executed FLOPs of the
// deployment compiled on one GPU, outside the experts' routed rows (every strategy's ranks
// together execute at least these: tensor parallelism splits GEMMs exactly; how many routed
// rows a strategy keeps depends on its capacity groups), with the capacity factor
// `capacityFactor` (absent: none), and the cluster's fastest time for them.
struct WorkloadBound {
  int64_t seqLen = 0;
  double flops = 0;        // those FLOPs of the whole batch on one GPU
  double latencyS = 0;     // flops / (cluster GPUs x peak x mfu): no strategy is faster
  double throughput = 0;   // tokens / latencyS: no strategy serves more
};
// One per seq point; nullopt when the one-GPU reference does not lower (a model error).
std::optional<std::vector<WorkloadBound>> workloadBounds(CompileSession &session,
                                                         const desc::Deployment &d,
                                                         const DeploymentSpec &spec,
                                                         const std::vector<int64_t> &points,
                                                         std::optional<double> capacityFactor);

// Requirements no strategy on the cluster can meet (requirements.*-reachable): a latency
// below the roofline of the whole batch, a throughput above it, a memory per GPU below the
// model's weights spread over every GPU.
std::vector<Finding> reachabilityFindings(const DeploymentSpec &spec,
                                          const std::vector<WorkloadBound> &bounds);

// The description's claims beside the derived figures of plan `p` (with its workload
// points) and of the model.
std::vector<plan::ClaimCheck> judgeClaims(const DeploymentSpec &spec, const plan::Plan &p);

} // namespace moeplan
