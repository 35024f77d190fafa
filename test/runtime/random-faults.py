#!/usr/bin/env python3
"""Kills or stops a random rank at a random instruction, many times, and checks that the
whole job ends every time, soon, and says which rank failed.

Each trial runs `mpirun -np N moeplan-run PLAN ... --die-at R:I` (SIGKILL there) or
`--stop-at R:I` (SIGSTOP there: alive in the process table, silent on the network) with a
random rank R and a random instruction I of R's program. A trial passes when
  - mpirun exits non-zero, and no moeplan-run process of the trial is left behind;
  - it ends within --limit seconds of the fault (the wall-clock time rank R's own line
    "dying here" or "stopping here" gives), plus --stall-timeout for a stopped rank, whose
    peers can only notice it by its silence;
  - stderr names rank R: mpirun's notice of the process that died, or a peer's message that
    rank R has sent no heartbeat.
Prints one line per trial and the figures: trials, failures, slowest end after a fault.
"""
import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time


def instruction_counts(moeplan, plan):
    """Instructions of each rank's program, from `moeplan inspect --json`."""
    j = json.loads(subprocess.run([moeplan, "inspect", plan, "--json"], check=True,
                                  capture_output=True, text=True).stdout)
    counts = {}
    for program in j["programs"]:
        for rank in program["ranks"]:
            counts[rank] = program["instructions"]
    return [counts[r] for r in range(len(counts))]


def leftovers(marker):
    """PIDs of processes whose command line contains `marker` (this trial's plan copy)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and "moeplan-run" in cmd:
            found.append(int(pid))
    return found


def trial(args, ranks, rank, instruction, kind, plan):
    command = ["mpirun", "-np", str(ranks), args.moeplan_run, plan,
               "--checkpoint", args.checkpoint, "--input", args.input,
               "--stall-timeout", str(args.stall_timeout), f"--{kind}-at", f"{rank}:{instruction}"]
    start = time.time()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines, fault_at = [], [None]
    fault_line = re.compile(rf"^moeplan-run: rank {rank}, programs\[\d+\]\.instructions\[{instruction}\] "
                            rf".*: (dying|stopping) here.*\(at ([0-9.]+) s since the epoch\)")

    def read():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            m = fault_line.match(line)
            if fault_at[0] is None and m:
                fault_at[0] = float(m.group(2))  # wall clock, same host

    reader = threading.Thread(target=read)
    reader.start()
    try:
        proc.wait(timeout=args.hard_limit)
        hung = False
    except subprocess.TimeoutExpired:
        hung = True
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    end = time.time()
    reader.join()
    # mpirun has returned; give the kernel a moment to reap its children, then look.
    time.sleep(0.5)
    left = leftovers(plan)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    text = "\n".join(lines)
    named = re.search(rf"process rank {rank} with PID", text) or \
        re.search(rf"rank \d+: rank {rank} has sent no heartbeat", text)
    problems = []
    if hung:
        problems.append(f"still running after {args.hard_limit} s: killed")
    if proc.returncode == 0:
        problems.append("mpirun exited 0")
    if fault_at[0] is None:
        problems.append(f"rank {rank} never reached instruction {instruction}")
    if left:
        problems.append(f"processes left behind: {left}")
    if not named:
        problems.append(f"no message names rank {rank}")
    after = end - fault_at[0] if fault_at[0] is not None else float("nan")
    limit = args.limit + (args.stall_timeout if kind == "stop" else 0)
    if fault_at[0] is not None and after > limit:
        problems.append(f"ended {after:.1f} s after the fault, more than {limit:g} s")
    return after, end - start, problems, text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moeplan", required=True)
    ap.add_argument("--moeplan-run", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock (printed)")
    ap.add_argument("--stall-timeout", type=float, default=3)
    ap.add_argument("--limit", type=float, default=10,
                    help="seconds from the fault to the end of the job (plus the stall timeout "
                         "for a stopped rank)")
    ap.add_argument("--hard-limit", type=float, default=120)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    counts = instruction_counts(args.moeplan, args.plan)
    print(f"random-faults: {len(counts)} ranks, {min(counts)}-{max(counts)} instructions each, "
          f"{args.trials} trials, seed {seed} (rerun with --seed {seed})")
    os.makedirs(args.work, exist_ok=True)
    failures, worst = 0, {"die": 0.0, "stop": 0.0}
    for t in range(args.trials):
        kind = rng.choice(["die", "stop"])
        rank = rng.randrange(len(counts))
        instruction = rng.randrange(counts[rank])
        # A copy of the plan per trial: its path marks this trial's processes.
        plan = os.path.join(args.work, f"trial-{t}.plan")
        with open(args.plan, "rb") as src, open(plan, "wb") as dst:
            dst.write(src.read())
        after, total, problems, text = trial(args, len(counts), rank, instruction, kind, plan)
        worst[kind] = max(worst[kind], after if after == after else 0.0)
        status = "ok" if not problems else "FAIL: " + "; ".join(problems)
        fault = f"--{kind}-at {rank}:{instruction}"
        print(f"  trial {t:2}: {fault:<17} ended {after:5.1f} s after the "
              f"fault ({total:5.1f} s in all): {status}", flush=True)
        if problems:
            failures += 1
            print("    " + "\n    ".join(text.splitlines()[-15:]))
        os.remove(plan)
    print(f"random-faults: {args.trials} trials, {failures} failed; slowest end after a fault: "
          f"{worst['die']:.1f} s (killed rank), {worst['stop']:.1f} s (stopped rank, stall timeout "
          f"{args.stall_timeout:g} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
