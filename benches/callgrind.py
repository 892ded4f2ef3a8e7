#!/usr/bin/env python3
"""Instructions and cache misses per webhook request, counted by callgrind.

On a shared machine the CPU time of one binary moves by tens of per cent
between runs minutes apart, more than most changes to the request path.
callgrind's counts repeat for the same binary and input, so a change can be
judged by them first (and by `benches/ab.py` over many rounds after).

For each binary: starts it under `valgrind --tool=callgrind` (cache
simulation on, the last level modelled as a 512 KiB L2, so its misses are
the ones that reach L3), loads it with wrk (32 connections, the reference
workload) for a warm-up, zeroes the counters, loads it again, dumps the
counters and divides by the requests wrk counted. Prints one row per binary.

    python3 benches/callgrind.py [--duration 15] \\
        [--bin NAME=PATH[:DIR]]...   # default: this tree's release build
        [--args "--journal off"]     # extra `serve` flags, for every binary
        [--rust-log info]            # the access line on (default: warn, off)

DIR is the integrations folder a binary serves (default: the repository's
test data); an older revision may need its own worktree's `integrations/`.
Needs valgrind and wrk (`apt-get install valgrind wrk`); loopback only.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402

EVENTS = ["Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw"]
COLUMNS = [("instructions", "Ir"), ("L1i misses", "I1mr"), ("L1d read misses", "D1mr"),
           ("L1d write misses", "D1mw"), ("L2 read misses", "DLmr"), ("L2 write misses", "DLmw")]


def wrk(port, seconds):
    """Requests wrk completed (load.py's wrk: 32 connections, the workload)."""
    result = load.wrk(f"http://127.0.0.1:{port}/hooks/boleto?token=demo-token", seconds, 32,
                      load.WORKLOAD / "request.json")
    if result["err_status"] or result["err_connect"]:
        raise RuntimeError(f"wrk saw errors: {result}")
    return result["requests"]


def totals(path):
    for line in open(path, errors="replace"):
        if line.startswith(("summary:", "totals:")):
            values = [int(x) for x in line.split()[1:]]
            return values + [0] * (len(EVENTS) - len(values))
    return [0] * len(EVENTS)


def count(binary, folder, extra, seconds, rust_log="warn"):
    port = load.free_port()
    out = Path(tempfile.mkdtemp(prefix="recado-callgrind-")) / "cg"
    cmd = ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--LL=524288,8,64",
           "--separate-threads=yes", f"--callgrind-out-file={out}.%p",
           binary, "serve", "--listen", f"127.0.0.1:{port}", "--dir", str(folder), *extra]
    proc = subprocess.Popen(cmd, env=dict(os.environ, RUST_LOG=rust_log),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        load.wait_for_port(port, proc, timeout=120)
        # Under valgrind the config may still be loading when the port opens.
        deadline = time.time() + 120
        while True:
            try:
                load.post(f"http://127.0.0.1:{port}/hooks/boleto?token=demo-token",
                          (load.WORKLOAD / "request.json").read_bytes())
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        wrk(port, 5)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        requests = wrk(port, seconds)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    # The dump after zeroing is `cg.PID.1-TT`, one file per thread.
    files = glob.glob(f"{out}.{proc.pid}.1-*")
    summed = [sum(col) for col in zip(*(totals(f) for f in files))]
    return {e: v / requests for e, v in zip(EVENTS, summed)} | {"requests": requests}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", default=[], metavar="NAME=PATH[:DIR]")
    ap.add_argument("--args", default="", help="extra `serve` flags for every binary")
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--rust-log", default="warn",
                    help="RUST_LOG of the servers: `info` turns the access line on")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    bins = []
    for spec in args.bin or [f"HEAD={load.ROOT / 'target/release/recado'}"]:
        name, _, rest = spec.partition("=")
        path, _, folder = rest.partition(":")
        bins.append((name, path, folder or str(load.INTEGRATIONS)))
    if not args.bin and not args.no_build:
        load.build()
    rows = {}
    print("| binary | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, path, folder in bins:
        r = count(path, folder, args.args.split(), args.duration, args.rust_log)
        rows[name] = r
        print(f"| {name} | " + " | ".join(f"{r[e]:,.0f}" for _, e in COLUMNS) + " |", flush=True)
    print("RESULT " + json.dumps(rows))


if __name__ == "__main__":
    sys.exit(main())
