// A finding: one rule broken (or one fact worth reporting) about a deployment description.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace moeplan {

enum class Severity { Note, Warning, Error };

const char *severityName(Severity s);

// A place in a source file; line and column count from 1, 0 means unknown.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  bool known() const { return line > 0; }
  std::string str() const;  // "file:line:column", or "file" when unknown
};

// A number a finding is about, named as the user would name it ("tp", "experts").
struct FindingValue {
  std::string name;
  double value;
};

struct Finding {
  std::string rule;       // dotted rule id, e.g. "strategy.heads-by-tp"
  Severity severity = Severity::Error;
  std::string message;    // one sentence, with the values involved
  std::string fieldPath;  // the field at fault, e.g. "strategy.tp"; empty for the whole file
  std::vector<FindingValue> values;
  SourceLocation location;  // filled in from fieldPath by the loader's location index
};

bool hasErrors(const std::vector<Finding> &findings);

// Formats a count the way people read it: 4.36 B, 268 M, 65.5 K, 12.
std::string formatCount(double n);
// Formats bytes in decimal units: 1.11 GB, 4.66 MB, 512 B.
std::string formatBytes(double bytes);
// Formats an integer-valued double without a fraction, others with up to 4 significant digits.
std::string formatNumber(double v);

} // namespace moeplan
