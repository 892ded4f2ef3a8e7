#!/usr/bin/env python3
"""Load test: recado against the baseline peer, in the same run.

Each server is pinned to CPU 0 and wrk to CPU 1 (taskset). For every round
and server: start it, check its answer, warm up, then run wrk while reading
the server's CPU time from /proc. Reports medians over the rounds and the
ratios to the baseline (req/s and server CPU microseconds per request).

    python3 benches/load.py [--rounds 3] [--duration 10] [--connections 32]
                            [--log on|off|both] [--log-format text|json|both]
                            [--rate 20000] [--pgo]

With `--pgo`, recado and the baseline peer are both the profile-guided
builds of `benches/pgo.py`, so the ratios compare two programs built the
same way. They are made first (with pgo.py's default training) unless
`--no-build`, which measures the builds already there (e.g. one made with
`pgo.py --exclude boleto`); the report says what each was trained on.

Without `--rate` the load is wrk's, closed-loop: every connection sends its
next request when the last answer arrives, so each server runs as fast as
it can (throughput, and CPU per request at saturation). A slower server
then serves smaller batches per wake-up and wakes a sleeping client more
often, which both count in its CPU. With `--rate R` the load is
`benches/openloop`'s: R requests a second at fixed moments, the same for
every server, so CPU per request is compared at the same batching (pick a
rate every server sustains; `late` in its output says when one did not).

Rounds interleave the servers (baseline, recado log off, text, json, ...),
so a noisy machine slows them alike and the ratios stay meaningful.

Needs wrk and taskset (`apt-get install wrk util-linux`). Traffic goes to
127.0.0.1 only.
"""
import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ROOT / "benches"
# The reference workload (request and its expected answer) and the fixed
# configuration that answers it: the test data, not the operator's integrations/.
WORKLOAD = ROOT / "tests/data/workload"
INTEGRATIONS = ROOT / "tests/data/integrations"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The servers measured: the plain release builds, or with `--pgo` those of
# benches/pgo.py (see `use_pgo`).
RECADO = ROOT / "target/release/recado"
BASELINE = ROOT / "target/peers/release/baseline-hyper"


def use_pgo(build_them):
    """Measures the profile-guided builds (`benches/pgo.py`) instead."""
    global RECADO, BASELINE
    import pgo
    if build_them:
        subprocess.run([sys.executable, str(BENCHES / "pgo.py")], cwd=ROOT, check=True)
    RECADO, BASELINE = pgo.RECADO, pgo.BASELINE


def build():
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "recado"], cwd=ROOT, check=True)
    for peer in ("baseline-hyper", "openloop"):
        subprocess.run(
            ["cargo", "build", "--release", "--locked",
             "--manifest-path", str(BENCHES / peer / "Cargo.toml"),
             "--target-dir", str(ROOT / "target/peers")],
            cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    # Fields 14 and 15 of /proc/PID/stat: utime and stime, in clock ticks,
    # summed over all of the process's threads.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_for_port(port, proc, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def wrk(url, duration, connections, body_file):
    env = dict(os.environ, BODY_FILE=str(body_file))
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         "-s", str(BENCHES / "wrk-post.lua"), url],
        env=env, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def openloop(url, duration, connections, body_file, rate):
    out = subprocess.run(
        ["taskset", "-c", "1", str(ROOT / "target/peers/release/openloop"), url, str(body_file),
         str(rate), str(duration), str(connections)],
        capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def drive(url, duration, args, body_file):
    """wrk's closed-loop load, or openloop's fixed rate with `--rate`."""
    rate = getattr(args, "rate", None)
    if rate:
        return openloop(url, duration, args.connections, body_file, rate)
    return wrk(url, duration, args.connections, body_file)


ENRICH_CALL = """enrich:
  erp:
    method: POST
    url: "http://127.0.0.1:{upstream}/erp/{{{{ data.pedido }}}}"
{cache}"""


def boleto_messages():
    """boleto.yaml's `messages:` block only (its `tests:` and their comment,
    at column 0, are cut off: they test the file without the call), with
    the last message made to depend on the call's answer. Read when needed,
    not at import: pgo.py imports this module where tests/data is absent
    (the container image's build stage)."""
    block = (INTEGRATIONS / "demo/boleto.yaml").read_text().split("messages:\n", 1)[1]
    block = re.split(r"\n(?=[^\s-])", block, maxsplit=1)[0].rstrip("\n")
    return "messages:\n" + block + "\n    when: enrich.erp | length > 0\n"


def enriched_dir(upstream_port):
    """The demo tenant plus the boleto workload with one upstream call, cached
    (`boleto_hit`) and not (`boleto_miss`). The answer is unchanged."""
    root = Path(tempfile.mkdtemp(prefix="recado-load-")) / "integrations"
    shutil.copytree(INTEGRATIONS, root)
    messages = boleto_messages()
    for name, cache in (("boleto_hit", "    cache: 1h\n"), ("boleto_miss", "")):
        call = ENRICH_CALL.format(upstream=upstream_port, cache=cache)
        (root / f"demo/{name}.yaml").write_text(call + messages)
    return root


def log_variants(args):
    """(name suffix, RUST_LOG, --log-format) of each access-log setting asked for."""
    out = []
    if args.log in ("off", "both"):
        out.append(("", "warn", "text"))
    if args.log in ("on", "both"):
        formats = ["text", "json"] if args.log_format == "both" else [args.log_format]
        out += [(f"-log-{f}", "info", f) for f in formats]
    return out


def scenarios(port, enrich_root, args):
    """Name, command, URL path, request body, expected answer, RUST_LOG.

    `recado` runs with the per-request access line off (RUST_LOG=warn);
    `recado-log-text` and `recado-log-json` with it on (RUST_LOG=info),
    written to /dev/null through recado's usual background writer."""
    expected = json.loads((WORKLOAD / "expected.json").read_text())
    request = WORKLOAD / "request.json"
    out = [
        ("baseline-hyper", [str(BASELINE), str(port)],
         "/", request, expected, "warn"),
    ]
    for suffix, rust_log, fmt in log_variants(args):
        recado = [str(RECADO), "serve", "--listen", f"127.0.0.1:{port}",
                  "--log-format", fmt, "--dir"]
        out.append((f"recado{suffix}", recado + [str(INTEGRATIONS)], "/hooks/boleto?token=demo-token",
                    request, expected, rust_log))
    recado = [str(RECADO), "serve", "--listen", f"127.0.0.1:{port}", "--dir"]
    if enrich_root:
        out += [
            ("recado-enrich-cache-hit", recado + [str(enrich_root)],
             "/hooks/boleto_hit?token=demo-token", request, expected, "warn"),
            ("recado-enrich-cache-miss", recado + [str(enrich_root)],
             "/hooks/boleto_miss?token=demo-token", request, expected, "warn"),
        ]
    return out


@contextlib.contextmanager
def serving(name, cmd, path, body_file, expected, port, rust_log):
    """Starts `cmd` pinned to CPU 0, checks its answer to `body_file`, and
    yields (process, URL); stops it on the way out."""
    env = dict(os.environ, RUST_LOG=rust_log)
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        url = f"http://127.0.0.1:{port}{path}"
        got = post(url, body_file.read_bytes())
        if got != expected:
            raise RuntimeError(f"{name} answered {got}, expected {expected}")
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_one(name, cmd, path, body_file, expected, port, args, rust_log):
    with serving(name, cmd, path, body_file, expected, port, rust_log) as (proc, url):
        drive(url, 2, args, body_file)  # warm-up
        cpu0 = cpu_seconds(proc.pid)
        res = drive(url, args.duration, args, body_file)
        cpu = cpu_seconds(proc.pid) - cpu0
        errors = sum(res[k] for k in res if k.startswith("err_"))
        res["cpu_us_per_req"] = cpu * 1e6 / max(res["requests"], 1)
        res["errors"] = errors
        return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds of load per measurement")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rate", type=int,
                    help="requests per second at fixed moments (benches/openloop) instead of wrk")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", help="comma-separated scenario names (the baseline always runs)")
    ap.add_argument("--log", choices=["on", "off", "both"], default="both",
                    help="recado with the per-request access line on (RUST_LOG=info), off, or both")
    ap.add_argument("--log-format", choices=["text", "json", "both"], default="both",
                    help="--log-format of recado when the access line is on")
    ap.add_argument("--pgo", action="store_true",
                    help="measure the profile-guided builds of recado and the baseline peer "
                         "(benches/pgo.py), not the plain release builds")
    ap.add_argument("--enrich", action="store_true",
                    help="also the boleto workload with one upstream call, cache hit and miss; the "
                         "upstream is baseline-hyper on loopback, pinned with wrk to CPU 1")
    args = ap.parse_args()
    if not args.no_build:
        build()
    if args.pgo:
        use_pgo(build_them=not args.no_build)

    upstream = None
    enrich_root = None
    if args.enrich:
        up_port = free_port()
        upstream = subprocess.Popen(["taskset", "-c", "1", str(ROOT / "target/peers/release/baseline-hyper"),
                                     str(up_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(up_port, upstream)
        enrich_root = enriched_dir(up_port)

    results = {}
    try:
        run_rounds(args, enrich_root, results)
    finally:
        if upstream:
            upstream.terminate()
        if enrich_root:
            shutil.rmtree(enrich_root.parent, ignore_errors=True)
    report(args, results)
    return 0


def run_rounds(args, enrich_root, results):
    for rnd in range(args.rounds):
        port = free_port()
        for name, cmd, path, body, expected, rust_log in scenarios(port, enrich_root, args):
            if args.only and name != "baseline-hyper" and name not in args.only.split(","):
                continue
            r = run_one(name, cmd, path, body, expected, port, args, rust_log)
            results.setdefault(name, []).append(r)
            print(f"round {rnd + 1} {name:28s} {r['rps']:10.0f} req/s  p50 {r['p50_us']:6d} us  "
                  f"p99 {r['p99_us']:6d} us  cpu {r['cpu_us_per_req']:6.2f} us/req  errors {r['errors']}"
                  + (f"  late {r['late']}" if "late" in r else ""),
                  flush=True)


def report(args, results):
    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    base_rps, base_cpu = med("baseline-hyper", "rps"), med("baseline-hyper", "cpu_us_per_req")
    summary = {}
    load = f"openloop at {args.rate} req/s" if getattr(args, "rate", None) else "wrk"
    builds = "release builds"
    if getattr(args, "pgo", False):
        trained = [p.with_name(p.name + ".training") for p in (RECADO, BASELINE)]
        builds = "profile-guided builds (benches/pgo.py; trained on: " + "; ".join(
            f"{p.name.split('.')[0]}: {p.read_text().strip() if p.exists() else 'unknown'}"
            for p in trained) + ")"
    print(f"\nmedians of {args.rounds} rounds, {args.duration}s each, {args.connections} connections, {load}, "
          f"{builds}")
    print(f"{'server':28s} {'req/s':>10s} {'p50 us':>7s} {'p99 us':>7s} {'cpu us/req':>10s} "
          f"{'rps ratio':>9s} {'cpu ratio':>9s}")
    for name in results:
        row = {k: med(name, k) for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "errors")}
        row["rps_ratio"] = row["rps"] / base_rps
        row["cpu_ratio"] = row["cpu_us_per_req"] / base_cpu
        summary[name] = row
        print(f"{name:28s} {row['rps']:10.0f} {row['p50_us']:7.0f} {row['p99_us']:7.0f} "
              f"{row['cpu_us_per_req']:10.2f} {row['rps_ratio']:9.2f} {row['cpu_ratio']:9.2f}")
    if "recado" in summary:
        for name in ("recado-enrich-cache-hit", "recado-enrich-cache-miss"):
            if name in summary:
                ratio = summary[name]["cpu_us_per_req"] / summary["recado"]["cpu_us_per_req"]
                summary[name]["cpu_vs_recado"] = ratio
                print(f"{name}: server CPU per request {ratio:.2f}x recado without enrichment")
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
