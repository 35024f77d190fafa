// The rules `moeplan check` applies to a resolved deployment. Every rule has an id, a
// severity and a one-line statement in ruleCatalog(); findings take their severity from it.
#pragma once

#include "moeplan/Description/Spec.h"

#include <string>
#include <vector>

namespace moeplan {

struct RuleInfo {
  const char *id;
  Severity severity;
  const char *statement;
};

// Every rule, field-level ("field.*", "syntax") included, in a stable order.
const std::vector<RuleInfo> &ruleCatalog();
const RuleInfo *findRule(const std::string &id);

// Rules on the model alone (including the declared parameter count).
void checkModel(const DeploymentSpec &d, std::vector<Finding> &out);
// Rules on the strategy against model, cluster and workload, placement aside: what decides
// whether a strategy is valid, so repair judges candidates with it too.
void checkStrategy(const DeploymentSpec &d, std::vector<Finding> &out);
// Rules on the optional explicit placement against the strategy.
void checkPlacement(const DeploymentSpec &d, std::vector<Finding> &out);

// All of the above.
std::vector<Finding> checkDeployment(const DeploymentSpec &d);

// Whether an error of this rule leaves nothing to lower. The others are mistakes of the
// document that a plan does not depend on (a declared parameter count, an explicit GPU list
// the rank order overrides) or that the plan itself reports (memory): compile reports them
// and still writes the plan.
bool blocksLowering(const std::string &rule);

// Tolerance of model.params-declared: declared counts are rounded ("30B", "7B"); a relative
// difference beyond this is a mistake, not rounding.
constexpr double kDeclaredParamsTolerance = 0.05;

} // namespace moeplan
