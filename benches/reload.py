#!/usr/bin/env python3
"""Hot-reload benchmark: 1,000 tenants x 10 integrations.

Reports start-up time (until /readyz answers 200), resident memory, the time
until a one-file edit is live, and req/s (wrk, server pinned to CPU 0, wrk to
CPU 1) without edits and while one file is rewritten 10 times a second.

    python3 benches/reload.py [--tenants 1000] [--per-tenant 10] [--rounds 3]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import INTEGRATIONS, ROOT, WORKLOAD, build, free_port, wait_for_port, wrk  # noqa: E402

BOLETO = (INTEGRATIONS / "demo/boleto.yaml").read_text()


def generate(root, tenants, per_tenant):
    for t in range(tenants):
        d = root / f"t{t:04d}"
        d.mkdir(parents=True)
        (d / "tenant.yaml").write_text(f"client_ids: [{10000 + t}]\ntokens: [token-t{t:04d}]\n")
        (d / "boleto.yaml").write_text(BOLETO)
        for i in range(1, per_tenant):
            (d / f"i{i}.yaml").write_text(BOLETO.replace("Qualquer dúvida", f"Dúvida {i}"))


def request_for(tenant):
    body = json.loads((WORKLOAD / "request.json").read_text())
    body["clientId"] = 10000 + tenant
    return json.dumps(body).encode()


def post(port, tenant, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/boleto?token=token-t{tenant:04d}",
                                 data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--per-tenant", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        build()

    work = Path(tempfile.mkdtemp(prefix="recado-reload-"))
    try:
        root = work / "integrations"
        t0 = time.time()
        generate(root, args.tenants, args.per_tenant)
        print(f"generated {args.tenants} tenants x {args.per_tenant} integrations in {time.time() - t0:.1f}s")
        body_file = work / "request.json"
        hot = args.tenants // 2
        body_file.write_bytes(request_for(hot))
        target = root / f"t{hot:04d}" / "boleto.yaml"

        port = free_port()
        env = dict(os.environ, RUST_LOG="warn")
        started = time.time()
        proc = subprocess.Popen(["taskset", "-c", "0", str(ROOT / "target/release/recado"), "serve",
                                 "--listen", f"127.0.0.1:{port}", "--dir", str(root)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, proc, timeout=120)
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                time.sleep(0.01)
            startup = time.time() - started
            rss = rss_mib(proc.pid)
            print(f"start-up {startup:.2f}s, RSS {rss:.0f} MiB")

            body = body_file.read_bytes()
            pickups = []
            for n in range(5):
                marker = f"edição {n}"
                target.write_text(BOLETO.replace("Qualquer dúvida", marker))
                t = time.time()
                while marker not in post(port, hot, body)[3]["value"]:
                    time.sleep(0.002)
                pickups.append(time.time() - t)
            target.write_text(BOLETO)
            pickup = statistics.median(pickups)
            print(f"one-file edit live after: median {pickup * 1000:.0f} ms, max {max(pickups) * 1000:.0f} ms")

            url = f"http://127.0.0.1:{port}/hooks/boleto?token=token-t{hot:04d}"
            quiet, busy = [], []
            for rnd in range(args.rounds):
                r = wrk(url, args.duration, 32, body_file)
                quiet.append(r["rps"])
                stop = threading.Event()

                def rewrite():
                    n = 0
                    while not stop.is_set():
                        target.write_text(BOLETO if n % 2 else BOLETO.replace("Qualquer dúvida", "Dúvida?"))
                        n += 1
                        stop.wait(0.1)

                th = threading.Thread(target=rewrite)
                th.start()
                r2 = wrk(url, args.duration, 32, body_file)
                stop.set()
                th.join()
                busy.append(r2["rps"])
                print(f"round {rnd + 1}: {r['rps']:.0f} req/s quiet, {r2['rps']:.0f} req/s while rewriting "
                      f"10/s (errors {r2['err_status'] + r2['err_read'] + r2['err_connect']})")
            q, b = statistics.median(quiet), statistics.median(busy)
            result = {"tenants": args.tenants, "integrations": args.tenants * args.per_tenant,
                      "startup_s": round(startup, 3), "rss_mib": round(rss, 1),
                      "edit_live_ms_median": round(pickup * 1000, 1), "rps_quiet": q,
                      "rps_rewriting": b, "rps_ratio": round(b / q, 3)}
            print("RESULT " + json.dumps(result))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
