// libFuzzer entry point: any bytes as a Hugging Face config.json must give located errors or a
// description, never a crash, a hang or undefined behaviour; a description it writes must
// parse back.
#include "moeplan/Description/ImportHf.h"
#include "moeplan/Description/Load.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  moeplan::HfImport imported = moeplan::importHfConfig(text, "fuzz/config.json", "fuzz", nullptr);
  if (!imported.deployment) return 0;
  const std::string written = moeplan::formatImportedDescription(imported, "fuzz", "");
  if (!moeplan::parseDescription(written, "written").parseErrors.empty()) std::abort();
  return 0;
}
