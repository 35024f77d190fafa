#!/usr/bin/env python3
"""Checks moeplan-run's collective waits against its own trace, computed independently.

usage: collective-waits.py TRACE.json REPORT.json INSTRUCTIONS.txt

A run of one pass (--iterations 1) of a plan whose ranks all run one program with one group
per axis, so that an instruction index names one instance on every rank. The report's
collective_seconds.KIND.wait_seconds must equal, per kind summed over ranks, each rank's
wait for the instance's last member: max over ranks of the instance's start, less the
rank's own start (the trace's ts, in microseconds, rounded to 1 ns), at most the rank's own
time in the instance (its dur: beyond it the ranks' clocks disagree). INSTRUCTIONS.txt is
`moeplan inspect PLAN --rank 0`, for each label's collective kind.
"""
import json
import re
import sys

trace, report, listing = (open(p).read() for p in sys.argv[1:4])
kind_of = {}
for line in listing.splitlines():
    m = re.search(r"\s(\S+): (ALL_REDUCE|ALL_GATHER|REDUCE_SCATTER|ALL_TO_ALL|SEND|RECV) ", line)
    if m:
        kind_of[m.group(1)] = m.group(2)
events = json.loads(trace)["traceEvents"]
starts = {}  # instruction -> {rank: ts}
labels = {}
for e in events:
    if e.get("ph") == "X" and e.get("cat") == "collective":
        i = int(e["args"]["instruction"])
        starts.setdefault(i, {})[e["pid"]] = (e["ts"], e["dur"])
        labels[i] = e["name"]
waits = {}
for i, by_rank in starts.items():
    last = max(ts for ts, _ in by_rank.values())
    kind = kind_of[labels[i]]
    waits[kind] = waits.get(kind, 0.0) + sum(min(last - ts, dur) for ts, dur in by_rank.values()) * 1e-6
measured = json.loads(report)["collective_seconds"]
ok = True
for kind, m in sorted(measured.items()):
    expected = waits.get(kind, 0.0)
    got = m["wait_seconds"]
    # The trace rounds each start to 1 ns: a difference of a few ns per instance.
    tolerance = 1e-8 * m["count"] + 1e-9
    match = abs(got - expected) <= tolerance and 0 <= got <= m["seconds"]
    ok = ok and match
    print(f"{kind}: report {got:.9f} s, trace {expected:.9f} s of {m['seconds']:.9f} s: "
          + ("match" if match else "MISMATCH"))
print("waits match the trace" if ok else "waits differ from the trace")
sys.exit(0 if ok else 1)
