#include "moeplan/Description/Finding.h"

#include <cmath>
#include <cstdio>

namespace moeplan {

const char *severityName(Severity s) {
  switch (s) {
  case Severity::Note: return "note";
  case Severity::Warning: return "warning";
  case Severity::Error: return "error";
  }
  return "error";
}

std::string SourceLocation::str() const {
  if (!known()) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

bool hasErrors(const std::vector<Finding> &findings) {
  for (const Finding &f : findings)
    if (f.severity == Severity::Error) return true;
  return false;
}

std::string formatNumber(double v) {
  char buf[64];
  if (std::isfinite(v) && std::fabs(v) < 1e15 && v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string formatCount(double n) {
  char buf[64];
  if (std::fabs(n) >= 1e15) {  // past trillions a suffix reads worse than an exponent
    std::snprintf(buf, sizeof buf, "%.3g", n);
    return buf;
  }
  static const struct { double scale; const char *suffix; } units[] = {
      {1e12, " T"}, {1e9, " B"}, {1e6, " M"}, {1e3, " K"}};
  for (const auto &u : units) {
    if (std::fabs(n) >= u.scale) {
      std::snprintf(buf, sizeof buf, "%.3g%s", n / u.scale, u.suffix);
      return buf;
    }
  }
  return formatNumber(n);
}

std::string formatBytes(double bytes) {
  static const struct { double scale; const char *suffix; } units[] = {
      {1e15, " PB"}, {1e12, " TB"}, {1e9, " GB"}, {1e6, " MB"}, {1e3, " KB"}};
  char buf[64];
  for (const auto &u : units) {
    if (std::fabs(bytes) >= u.scale) {
      std::snprintf(buf, sizeof buf, "%.3g%s", bytes / u.scale, u.suffix);
      return buf;
    }
  }
  return formatNumber(bytes) + " B";
}

} // namespace moeplan
