#!/usr/bin/env python3
"""The request journal's cost: server CPU per request with `--journal on`
vs `--journal off` (interleaved rounds, medians, the ratio), and RSS with the
journal on over 1,000,000 requests (VmRSS at 100k and at 1M).

    python3 benches/journal.py [--rounds 3] [--duration 10] [--connections 32] [--requests 1000000]

Uses load.py's helpers (wrk, taskset, the reference workload); traffic goes
to 127.0.0.1 only. Other builds on the machine make the figures noisy: read
the ratio, not the absolute numbers.
"""
import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402


def recado_cmd(port, journal):
    return [str(load.ROOT / "target/release/recado"), "serve", "--listen", f"127.0.0.1:{port}",
            "--dir", str(load.INTEGRATIONS), "--journal", journal]


def vm_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss_run(args, body, expected, path):
    port = load.free_port()
    cmd = recado_cmd(port, "on")
    with load.serving("journal-on", cmd, path, body, expected, port, "warn") as (proc, url):
        total, marks = 0, {}
        while total < args.requests:
            res = load.wrk(url, 2, args.connections, body)
            total += res["requests"]
            if total >= args.requests // 10 and "first" not in marks:
                marks["first"] = (total, vm_rss_kib(proc.pid))
        marks["last"] = (total, vm_rss_kib(proc.pid))
        return marks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "recado"], cwd=load.ROOT, check=True)
    import json
    expected = json.loads((load.WORKLOAD / "expected.json").read_text())
    body = load.WORKLOAD / "request.json"
    path = "/hooks/boleto?token=demo-token"
    cpu = {"off": [], "on": []}
    rps = {"off": [], "on": []}
    for r in range(args.rounds):
        # Interleaved, alternating which goes first, so drift hits both.
        for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
            port = load.free_port()
            res = load.run_one(f"journal-{mode}", recado_cmd(port, mode), path, body, expected, port, args, "warn")
            cpu[mode].append(res["cpu_us_per_req"])
            rps[mode].append(res["requests"] / args.duration)
            print(f"round {r + 1} journal {mode}: {res['cpu_us_per_req']:.2f} µs CPU/req, "
                  f"{res['requests'] / args.duration:.0f} req/s, errors {res['errors']}", flush=True)
    med = {m: statistics.median(v) for m, v in cpu.items()}
    print(f"median CPU/req: off {med['off']:.2f} µs, on {med['on']:.2f} µs, "
          f"on/off {med['on'] / med['off']:.3f}")
    print(f"median req/s: off {statistics.median(rps['off']):.0f}, on {statistics.median(rps['on']):.0f}")
    if args.requests:
        marks = rss_run(args, body, expected, path)
        (n1, r1), (n2, r2) = marks["first"], marks["last"]
        print(f"VmRSS journal on: {r1} KiB after {n1} requests, {r2} KiB after {n2} requests, "
              f"ratio {r2 / r1:.3f}")


if __name__ == "__main__":
    main()
