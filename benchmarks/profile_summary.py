#!/usr/bin/env python3
"""Summarize a py-spy ``--format raw`` profile (what ``run.py --profile pyspy`` writes).

    python benchmarks/profile_summary.py benchmarks/results/profile-A-socketio_sync-*.txt [--top 25]

Prints the functions with the most samples of their own ("self") and the most samples
anywhere on the stack ("total"), and the self samples per source file. py-spy only samples
a thread that is not idle, so the shares are shares of the server's CPU time; time spent in
C code (a ``send`` system call, a JSON encoder) counts for the Python function calling it.
Only the main thread counts (profiles recorded with ``--threads``): gevent's thread pool
waits on a lock that py-spy does not see as idle. Samples of the main thread without any
Python frame are time in the gevent hub's C code (libev, greenlet switches, callbacks).
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")
THREAD = re.compile(r"^thread \((?:0x)?(?P<tid>[0-9A-Fa-f]+)\)$")
NO_FRAME = "[no Python frame: gevent hub C code, libev, greenlet switches]"


def short_file(path: str) -> str:
    for marker in ("site-packages/", "lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return path


def parse(path: Path) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    self_c: Counter[str] = Counter()
    total_c: Counter[str] = Counter()
    files: Counter[str] = Counter()
    n = 0
    lines = []
    tids = set()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        frames = stack.split(";")
        m = THREAD.match(frames[0])
        tid = None
        if m:
            tid = int(m["tid"], 16) if frames[0].startswith("thread (0x") else int(m["tid"])
            frames = frames[1:]
            tids.add(tid)
        lines.append((tid, frames, int(count_s)))
    main_tid = min(tids) if tids else None
    for tid, frames, count in lines:
        if tid != main_tid:
            continue
        n += count
        if not frames:
            self_c[NO_FRAME] += count
            files[NO_FRAME] += count
            total_c[NO_FRAME] += count
            continue
        names = []
        for frame in frames:
            m = FRAME.match(frame)
            if m:
                names.append((f"{m['func']} ({short_file(m['file'])})", short_file(m["file"])))
            else:
                names.append((frame, frame))
        if not names:
            continue
        self_c[names[-1][0]] += count
        files[names[-1][1]] += count
        for name in {name for name, _ in names}:
            total_c[name] += count
    return self_c, total_c, files, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.profiles:
        self_c, total_c, files, n = parse(path)
        print(f"== {path.name}: {n} samples")
        if not n:
            continue
        print(f"-- self (top {args.top})")
        for name, c in self_c.most_common(args.top):
            print(f"{100 * c / n:6.1f}%  {name}")
        print(f"-- total, including callees (top {args.top})")
        for name, c in total_c.most_common(args.top):
            print(f"{100 * c / n:6.1f}%  {name}")
        print("-- self per file (top 15)")
        for name, c in files.most_common(15):
            print(f"{100 * c / n:6.1f}%  {name}")
        print()


if __name__ == "__main__":
    main()
