// Result files are whole or absent: files::writeAtomically, including a writer killed
// half-way through.
#include "moeplan/Support/Files.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using moeplan::files::writeAtomically;

std::string readAll(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path scratch(const std::string &name) {
  fs::path dir = fs::temp_directory_path() / ("moeplan-files-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

TEST(Files, WritesAndReplacesLeavingNoTemporary) {
  const fs::path p = scratch("result.json");
  writeAtomically(p, "first");
  EXPECT_EQ(readAll(p), "first");
  writeAtomically(p, "second, longer");
  EXPECT_EQ(readAll(p), "second, longer");
  for (const auto &entry : fs::directory_iterator(p.parent_path()))
    EXPECT_EQ(entry.path().filename(), "result.json") << "stray " << entry.path();
  fs::remove_all(p.parent_path());
}

TEST(Files, FailureNamesThePathAndLeavesNothing) {
  const fs::path p = scratch("missing-dir") / "out.safetensors";
  try {
    writeAtomically(p, "x");
    FAIL() << "wrote into a directory that does not exist";
  } catch (const moeplan::files::WriteError &e) {
    EXPECT_NE(std::string(e.what()).find(p.string() + ": cannot write: No such file"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(p));
  fs::remove_all(p.parent_path().parent_path());
}

// A child writes 256 MiB over an existing result and is killed once its temporary holds
// some but not all of it: the result is still the old one, whole.
TEST(Files, AWriterKilledMidWayLeavesTheOldFileWhole) {
  const fs::path p = scratch("logits.safetensors");
  const size_t size = size_t(256) << 20;
  bool killedMidWay = false;
  for (int attempt = 0; attempt < 5 && !killedMidWay; ++attempt) {
    writeAtomically(p, "old result");
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      writeAtomically(p, std::string(size, 'x'));
      std::_Exit(0);
    }
    const fs::path temporary = p.string() + ".tmp." + std::to_string(child);
    uintmax_t seen = 0;
    for (int i = 0; i < 20000; ++i) {
      std::error_code ec;
      seen = fs::file_size(temporary, ec);
      if (!ec && seen > 0 && seen < size) break;
      int status = 0;
      if (::waitpid(child, &status, WNOHANG) == child) {  // finished before we looked
        seen = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    // Killed before its rename (the temporary is still there): the case under test.
    if (seen > 0 && seen < size && fs::exists(temporary)) {
      killedMidWay = true;
      EXPECT_EQ(readAll(p), "old result") << "a killed writer left a partial file in place";
    }
    fs::remove(temporary);
  }
  EXPECT_TRUE(killedMidWay) << "the writer always finished before it could be killed";
  fs::remove_all(p.parent_path());
}

} // namespace
