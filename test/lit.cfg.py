# lit configuration: FileCheck tests of the moeplan command line and, later, of each pass.
import os
import shutil
import subprocess

import lit.formats

config.name = "moeplan"
config.test_format = lit.formats.ShTest(not lit_config.useValgrind)
config.suffixes = [".textproto", ".test", ".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moeplan_obj_root, "test")
config.excludes = ["unit", "fuzz", "oracle", "Inputs", "lit.cfg.py", "lit.site.cfg.py.in", "CMakeLists.txt"]

config.substitutions.append(("%examples", os.path.join(config.moeplan_src_root, "examples")))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
config.environment["PATH"] = os.pathsep.join(
    [config.moeplan_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])

# scripts/sanitize.sh: --param moeplan_run_build=DIR puts the tools of DIR, its ASan + UBSan
# build without the compiler (moeplan-run, moeplan-compare), ahead of this build's, whose
# moeplan still compiles the plans; the tests' outputs go under DIR/test.
sanitized_build = lit_config.params.get("moeplan_run_build")
if sanitized_build:
    config.test_exec_root = os.path.join(sanitized_build, "test")
    config.environment["PATH"] = os.pathsep.join(
        [os.path.join(sanitized_build, "tools"), config.environment["PATH"]])

# mpirun: as root in CI (refused without these), and more ranks than cores.
for var, value in [("OMPI_ALLOW_RUN_AS_ROOT", "1"), ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
                   ("OMPI_MCA_rmaps_base_oversubscribe", "1")]:
    config.environment[var] = value
config.substitutions.append(("%mpirun", os.path.join(config.test_source_root, "mpirun-isolated.sh")))
config.substitutions.append(("%python", "/usr/bin/python3"))
config.substitutions.append(("%oracle", os.path.join(config.test_source_root, "oracle")))

# Features: "cuda-build" where moeplan-run has the CUDA backend, "cuda-device" where a GPU is
# visible (tests of the no-device path say UNSUPPORTED: cuda-device). The sanitized build has
# no CUDA.
if config.moeplan_have_cuda and not sanitized_build:
    config.available_features.add("cuda-build")
if shutil.which("nvidia-smi") and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0:
    config.available_features.add("cuda-device")

# "chromium": headless Chromium and Debian's python3 with PIL (setup installs both), for the
# browser test of the report pages (test/browser).
if shutil.which("chromium") and subprocess.run(["/usr/bin/python3", "-c", "import PIL"],
                                               capture_output=True).returncode == 0:
    config.available_features.add("chromium")
