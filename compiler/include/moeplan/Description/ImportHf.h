// `moeplan import-hf`: a Hugging Face model directory's config.json as the model section of a
// deployment description. Only what moeplan computes exactly is accepted; a config field that
// would make the model compute something else (a sliding window, rope scaling, biases moeplan
// does not model) is an error naming the field, never a silently different model.
#pragma once

#include "moeplan/Description/Finding.h"
#include "moeplan/schema/deployment.pb.h"

#include <optional>
#include <string>
#include <vector>

namespace moeplan {

struct HfImport {
  std::string architecture;            // config.json's, e.g. "MixtralForCausalLM"
  std::optional<desc::Deployment> deployment;  // set when there is no error
  std::vector<Finding> errors;         // located at config.json:line:column, rule "hf.*"
};

// Reads DIR/config.json. `base` (optional) supplies name, cluster, workload, strategy,
// requirements and search; its model section is replaced.
HfImport importHf(const std::string &dir, const desc::Deployment *base);
// The same on config.json's text, read from `path` (for locations) in directory `dir`.
HfImport importHfConfig(const std::string &text, const std::string &path, const std::string &dir,
                        const desc::Deployment *base);

// The description as text: a comment naming the source, then protobuf text format.
std::string formatImportedDescription(const HfImport &imported, const std::string &dir,
                                      const std::string &baseFile);

} // namespace moeplan
