#!/usr/bin/env python3
"""A/B load test: recado at another revision against this working tree, in the
same run, with the baseline peer measured alongside.

Builds `--base REV` in a git worktree under target/ab/ (release), builds this
tree, then for each round runs baseline-hyper, recado@REV and recado@HEAD in
turn (the order rotates every round, so drift in the machine's load spreads
over all three), each pinned to CPU 0 with wrk on CPU 1, as in load.py.
Reports medians and the CPU-per-request ratio B/A.

    python3 benches/ab.py --base bbcd418 [--rounds 5] [--duration 10]
        [--base-bin PATH]   # use an already built binary for the base
        [--rate 20000]      # a fixed rate for all, not wrk's closed loop (load.py)
        [--variant "journal-off=--journal off"]  # also this tree with these flags
        [--other NAME=PATH]   # also another revision's release binary (it
                              # serves its worktree's integrations/)
        [--head REV --head-bin PATH]  # B is another revision, not this tree:
                                      # the A/B of one change (its parent → it)
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402

ROOT = load.ROOT


def build_base(rev):
    wt = ROOT / "target/ab" / rev
    if not wt.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(wt), rev], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "recado"], cwd=wt, check=True)
    return wt / "target/release/recado"


def served_dir(binary):
    """The integrations/ of the worktree `binary` was built in: the nearest
    folder above it with a Cargo.toml (target/release/recado and
    target/pgo/release/recado alike)."""
    for folder in Path(binary).resolve().parents:
        if (folder / "Cargo.toml").exists():
            return folder / "integrations"
    raise SystemExit(f"{binary}: not inside a worktree (no Cargo.toml above it)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="git revision to compare against")
    ap.add_argument("--base-bin", help="a release binary of the base revision, already built")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rate", type=int,
                    help="a fixed rate (benches/openloop) instead of wrk; see load.py")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--head-args", default="",
                    help="extra `serve` flags for this tree's binary, e.g. \"--journal off\"")
    ap.add_argument("--head", default="HEAD", help="name of the B side (with --head-bin)")
    ap.add_argument("--head-bin", help="a release binary of another revision for the B side; "
                    "it serves that worktree's integrations/")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                    help="also measure this tree's binary with these `serve` flags, as "
                         "recado@HEAD:NAME (repeatable)")
    ap.add_argument("--other", action="append", default=[], metavar="NAME=PATH",
                    help="also measure another revision's release binary, as recado@NAME; it "
                         "serves the integrations/ of the worktree it was built in (repeatable)")
    args = ap.parse_args()
    if not args.no_build:
        load.build()
    base_bin = Path(args.base_bin) if args.base_bin else build_base(args.base)
    head_bin = Path(args.head_bin) if args.head_bin else ROOT / "target/release/recado"
    head_dir = served_dir(head_bin) if args.head_bin else load.INTEGRATIONS
    request = load.WORKLOAD / "request.json"
    expected = json.loads((load.WORKLOAD / "expected.json").read_text())

    # Each revision serves its own demo tenant: the config format grows, and
    # an older binary refuses keys it does not know. The boleto answer is
    # the same in both.
    base_dir = served_dir(base_bin)

    def scenarios(port):
        serve = ["serve", "--listen", f"127.0.0.1:{port}", "--dir", str(head_dir)]
        base_serve = ["serve", "--listen", f"127.0.0.1:{port}", "--dir", str(base_dir)]
        hook = "/hooks/boleto?token=demo-token"
        return [
            ("baseline-hyper", [str(ROOT / "target/peers/release/baseline-hyper"), str(port)], "/"),
            (f"recado@{args.base}", [str(base_bin), *base_serve], hook),
            (f"recado@{args.head}", [str(head_bin), *serve, *args.head_args.split()], hook),
        ] + [
            (f"recado@{args.head}:{name}", [str(head_bin), *serve, *flags.split()], hook)
            for name, _, flags in (v.partition("=") for v in args.variant)
        ] + [
            (f"recado@{name}",
             [path, "serve", "--listen", f"127.0.0.1:{port}", "--dir",
              str(served_dir(path))], hook)
            for name, _, path in (o.partition("=") for o in args.other)
        ]

    results = {}
    for rnd in range(args.rounds):
        port = load.free_port()
        runs = scenarios(port)
        runs = runs[rnd % len(runs):] + runs[:rnd % len(runs)]
        for name, cmd, path in runs:
            # Access line off, as the baseline logs nothing (load.py measures it on).
            r = load.run_one(name, cmd, path, request, expected, port, args, "warn")
            results.setdefault(name, []).append(r)
            print(f"round {rnd + 1} {name:20s} {r['rps']:10.0f} req/s  p99 {r['p99_us']:6d} us  "
                  f"cpu {r['cpu_us_per_req']:6.2f} us/req  errors {r['errors']}", flush=True)

    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    base_cpu = med("baseline-hyper", "cpu_us_per_req")
    a, b = f"recado@{args.base}", f"recado@{args.head}"
    summary = {}
    print(f"\nmedians of {args.rounds} rounds, {args.duration}s each, {args.connections} connections")
    for name in results:
        row = {k: med(name, k) for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "errors")}
        row["cpu_ratio_to_baseline"] = row["cpu_us_per_req"] / base_cpu
        summary[name] = row
        print(f"{name:20s} {row['rps']:10.0f} req/s  p99 {row['p99_us']:7.0f} us  "
              f"cpu {row['cpu_us_per_req']:6.2f} us/req  {row['cpu_ratio_to_baseline']:.2f}x baseline")
    change = summary[b]["cpu_us_per_req"] / summary[a]["cpu_us_per_req"] - 1
    print(f"{args.head} vs {args.base}: server CPU per request {change * 100:+.1f}% (ratio of medians)")
    summary["cpu_change"] = change
    # Paired: each round's HEAD against the same round's base, which cancels
    # drift in the machine's load better than a ratio of medians.
    for name in results:
        if name.startswith("recado@") and name != a:
            pairs = [h["cpu_us_per_req"] / o["cpu_us_per_req"] - 1
                     for h, o in zip(results[name], results[a])]
            paired = statistics.median(pairs)
            summary[name]["paired_change"] = paired
            print(f"{name} vs {args.base}, median of per-round changes: {paired * 100:+.1f}%")
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
