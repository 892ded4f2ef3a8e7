#!/usr/bin/env python3
"""The cost ladder: what each stage of the webhook costs under load.

Builds recado from a git worktree of HEAD with `benches/ladder.patch`
applied (never part of the product): with `RECADO_FLOOR=N` in its
environment the webhook answers the fixed reference answer early, from

    1  App::dispatch, once the body is read (recado's stack alone)
    2  hook::pipeline, before parsing (+ body, record, content type)
    3  after parsing and the token check
    4  after rendering (the journal still records)
    0  nowhere: the whole path

then measures each, and the baseline peer, as `load.py` does (server on
CPU 0, wrk on CPU 1, /proc CPU per request), in interleaved rounds, and
prints medians and ratios to the baseline. `j` after a step (`4j`) runs it
with `--journal off`.

    python3 benches/ladder.py [--rounds 5] [--duration 5] [--steps baseline,1,2,3,4,0]

The first run builds into target/ladder (a whole release build). Traffic goes to
127.0.0.1 only. Read docs/scaling.md ("The tenth session") for a reading.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402

TARGET = load.ROOT / "target/ladder"


def build():
    """The patched binary, built from HEAD in a temporary worktree."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), "HEAD"],
                       cwd=load.ROOT, check=True, stdout=subprocess.DEVNULL)
        try:
            subprocess.run(["git", "apply", str(load.BENCHES / "ladder.patch")], cwd=tree, check=True)
            subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "recado",
                            "--target-dir", str(TARGET)], cwd=tree, check=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=load.ROOT, check=True)
    return TARGET / "release/recado"


def cpu_split(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / load.CLK_TCK, int(fields[12]) / load.CLK_TCK


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--steps", default="baseline,1,2,3,4,0")
    p.add_argument("--no-build", action="store_true", help="reuse target/ladder's binary")
    args = p.parse_args()
    binary = TARGET / "release/recado" if args.no_build else build()
    drive_args = SimpleNamespace(duration=args.duration, connections=args.connections, rate=None)
    request = load.WORKLOAD / "request.json"
    expected = json.loads((load.WORKLOAD / "expected.json").read_text())
    steps = args.steps.split(",")
    results = {s: [] for s in steps}
    for r in range(args.rounds):
        for step in steps:
            port = load.free_port()
            if step == "baseline":
                cmd = [str(load.ROOT / "target/peers/release/baseline-hyper"), str(port)]
                path = "/"
            else:
                os.environ["RECADO_FLOOR"] = step.rstrip("j")
                cmd = [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--dir", str(load.INTEGRATIONS)]
                cmd += ["--journal", "off"] if step.endswith("j") else []
                path = "/hooks/boleto?token=demo-token"
            with load.serving(step, cmd, path, request, expected, port, "warn") as (proc, url):
                load.drive(url, 2, drive_args, request)
                u0, s0 = cpu_split(proc.pid)
                out = load.drive(url, args.duration, drive_args, request)
                u1, s1 = cpu_split(proc.pid)
            n = max(out["requests"], 1)
            results[step].append(((u1 - u0) * 1e6 / n, (s1 - s0) * 1e6 / n, out["rps"]))
            print(f"round {r + 1} step {step}: {sum(results[step][-1][:2]):.2f} us/req", flush=True)
    base = statistics.median(sum(x[:2]) for x in results["baseline"]) if "baseline" in results else None
    print("| step | user + system us/req | req/s | ratio |\n|---|---|---|---|")
    for step in steps:
        runs = results[step]
        total = statistics.median(sum(x[:2]) for x in runs)
        user = statistics.median(x[0] for x in runs)
        system = statistics.median(x[1] for x in runs)
        rps = statistics.median(x[2] for x in runs)
        ratio = f"{total / base:.2f}" if base else "-"
        print(f"| {step} | {total:.2f} ({user:.2f} + {system:.2f}) | {rps:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
