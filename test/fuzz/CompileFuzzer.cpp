// libFuzzer entry point: any bytes as a deployment description go through check and, when
// check finds no error, through compile: findings or a plan that passes the runtime's
// validator, never a crash, a hang, undefined behaviour or a compiler bug (exit 3's case).
//
// Compile is costly on large deployments, so only descriptions that compile in well under
// the fuzzer's time limit go through it: at most 64 ranks, 64 layers, sequences x seq_len
// of 64 K tokens and a d_model of 4096. Check itself sees every input.
#include "moeplan/Check/CheckReport.h"
#include "moeplan/Compiler/Pipeline.h"

#include "llvm/Support/raw_ostream.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

bool smallEnoughToCompile(const moeplan::DeploymentSpec &s) {
  return s.strategy.world() <= 64 && s.model.layers <= 64 && s.model.dModel <= 4096 &&
         s.workload.sequences * s.workload.seqLenMax <= 65536;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  moeplan::CheckReport r = moeplan::checkDescription(text, "fuzz", 1);
  if (r.exitStatus() != 0 || !r.spec || !smallEnoughToCompile(*r.spec)) return 0;
  moeplan::CompileResult c = moeplan::compileDescription(text, "fuzz");
  if (c.compilerBug) {
    std::fprintf(stderr, "compile-fuzzer: the compiled plan failed the runtime's validator\n");
    std::abort();
  }
  return 0;
}
