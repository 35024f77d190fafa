// Reading a deployment description (protobuf text format) while remembering where every
// field was written, so that later findings can point at file:line:column.
#pragma once

#include "moeplan/Description/Finding.h"
#include "moeplan/schema/deployment.pb.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moeplan {

// Field path ("strategy.placement[1].gpus[3]") -> where its value was written.
class LocationIndex {
public:
  void add(const std::string &path, SourceLocation loc) { locations_[path] = std::move(loc); }
  // The location of `path`, or of its nearest written ancestor ("model.layers" falls back to
  // "model"), or the start of the file when nothing of it was written.
  SourceLocation lookup(const std::string &path) const;
  const std::string &file() const { return file_; }
  const std::map<std::string, SourceLocation> &entries() const { return locations_; }
  void setFile(std::string file, int firstLine) { file_ = std::move(file); firstLine_ = firstLine; }

private:
  std::map<std::string, SourceLocation> locations_;
  std::string file_;
  int firstLine_ = 1;
};

struct LoadedDescription {
  desc::Deployment deployment;
  LocationIndex locations;
  // Syntax errors, unknown fields, values out of a field's range: when not empty, the
  // deployment is unusable.
  std::vector<Finding> parseErrors;
  int firstLine = 1;  // where this description starts in its file (for split input)
};

// Largest description accepted; anything bigger is not a hand-written description.
constexpr size_t kMaxDescriptionBytes = 4 << 20;

// Parses `text`, which starts at line `firstLine` of `file`.
LoadedDescription parseDescription(const std::string &text, const std::string &file,
                                   int firstLine = 1);

// One chunk of a file split at lines "# -----" (as mlir-opt --split-input-file).
struct InputChunk {
  std::string text;
  int firstLine;
};
std::vector<InputChunk> splitInputFile(const std::string &text);

// Reads a whole file; on failure returns nullopt and sets `error`.
std::optional<std::string> readFile(const std::string &path, std::string &error);

// Resolves each finding's fieldPath to a location.
void locateFindings(std::vector<Finding> &findings, const LocationIndex &index);

} // namespace moeplan
