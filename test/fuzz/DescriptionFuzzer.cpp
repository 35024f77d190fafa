// libFuzzer entry point: any bytes as a deployment description must give findings, never a
// crash, a hang or undefined behaviour.
#include "moeplan/Check/CheckReport.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  moeplan::CheckOptions options;
  options.repairCount = 2;
  for (const moeplan::InputChunk &chunk : moeplan::splitInputFile(text)) {
    moeplan::CheckReport r = moeplan::checkDescription(chunk.text, "fuzz", chunk.firstLine, options);
    (void)moeplan::renderText(r);
    (void)moeplan::toJson(r);
  }
  return 0;
}
