#!/usr/bin/env python3
"""Burst benchmark: a scheduled message fires for thousands of contacts at once.

5,000 webhooks, distinct contacts, each with one upstream call that is not
cached (distinct keys) to a loopback upstream answering after 50 ms. The
tenant lists the upstream with `max_in_flight: 20` (and, for comparison,
without a cap). Reports, as medians over --rounds: the time until every
webhook answered, p50/p99 of the webhooks, the upstream's peak concurrency
and the errors.

recado is pinned to CPU 0; the client and the upstream (asyncio, one
process) to CPU 1. Traffic goes to 127.0.0.1 only.

    python3 benches/burst.py [--webhooks 5000] [--connections 500] [--max-in-flight 20] [--rounds 3]
"""
import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import ROOT, free_port, wait_for_port  # noqa: E402


class Upstream:
    """An HTTP/1.1 keep-alive server that answers every GET after `delay`
    seconds and counts the requests it has in flight."""

    def __init__(self, delay):
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.hits = 0

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                key = head.split(b" ", 2)[1].rsplit(b"/", 1)[-1].decode()
                self.hits += 1
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                await asyncio.sleep(self.delay)
                self.in_flight -= 1
                body = json.dumps({"codigo": key[-4:]}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def body(n):
    return json.dumps({
        "id": n, "clientId": 1, "origin": "SCHEDULED_MESSAGE",
        "contact": {"uid": str(n), "type": "WHATSAPP", "key": f"55119{n:08d}", "name": "Ana Souza"},
        "data": {},
    }).encode()


async def client(port, queue, latencies, statuses):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                n = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            b = body(n)
            t = time.perf_counter()
            writer.write(b"POST /hooks/burst?token=burst-token-1 HTTP/1.1\r\nHost: recado\r\n"
                         b"Content-Type: application/json\r\nContent-Length: " + str(len(b)).encode()
                         + b"\r\n\r\n" + b)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def write_config(root, up_port, max_in_flight):
    d = root / "acme"
    d.mkdir(parents=True, exist_ok=True)
    origin = f"http://127.0.0.1:{up_port}"
    entry = f'{{origin: "{origin}", max_in_flight: {max_in_flight}}}' if max_in_flight else f'"{origin}"'
    (d / "tenant.yaml").write_text(
        "client_ids: [1]\ntokens: [burst-token-1]\n"
        f"upstreams:\n  - {entry}\n"
        # A burst is expected: the tenant's own cap and deadline are not what
        # is measured here.
        "limits: {concurrency: 10000, deadline: 120s}\n")
    (d / "burst.yaml").write_text(
        "deadline: 120s\n"
        "enrich:\n  erp:\n"
        f'    url: "{origin}/clientes/{{{{ contact.key }}}}"\n'
        "    timeout: 5s\n"
        "messages:\n"
        '  - text: "Olá, {{ contact.name | first_name }}! Seu código é {{ enrich.erp.codigo }}."\n')


async def one_round(args, max_in_flight):
    up = Upstream(args.latency_ms / 1000)
    server = await asyncio.start_server(up.handle, "127.0.0.1", 0, backlog=4096)
    up_port = server.sockets[0].getsockname()[1]
    work = Path(tempfile.mkdtemp(prefix="recado-burst-"))
    port = free_port()
    write_config(work / "integrations", up_port, max_in_flight)
    proc = subprocess.Popen(
        ["taskset", "-c", "0", str(ROOT / "target/release/recado"), "serve", "--listen", f"127.0.0.1:{port}",
         "--dir", str(work / "integrations")],
        env=dict(os.environ, RUST_LOG="warn"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_for_port, port, proc)
        queue = asyncio.Queue()
        for n in range(args.webhooks):
            queue.put_nowait(n)
        latencies, statuses = [], {}
        t = time.perf_counter()
        await asyncio.gather(*(client(port, queue, latencies, statuses) for _ in range(args.connections)))
        took = time.perf_counter() - t
        latencies.sort()
        return {
            "max_in_flight": max_in_flight or None,
            "seconds": took,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "upstream_peak": up.peak,
            "upstream_calls": up.hits,
            "ok": statuses.get(200, 0),
            "errors": sum(v for k, v in statuses.items() if k != 200),
            "statuses": statuses,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webhooks", type=int, default=5000)
    ap.add_argument("--connections", type=int, default=500, help="webhooks the client keeps in flight")
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--max-in-flight", type=int, default=20)
    ap.add_argument("--uncapped", action="store_true", help="also run without max_in_flight, for comparison")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "recado"], cwd=ROOT, check=True)
    os.sched_setaffinity(0, {1})
    settings = [args.max_in_flight] + ([0] if args.uncapped else [])
    results = {s: [] for s in settings}
    for rnd in range(args.rounds):
        for s in settings:
            r = asyncio.run(one_round(args, s))
            results[s].append(r)
            print(f"round {rnd + 1} max_in_flight={s or 'none':>4}: {args.webhooks} webhooks in {r['seconds']:.2f}s, "
                  f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, upstream peak {r['upstream_peak']} "
                  f"in flight, {r['upstream_calls']} calls, errors {r['errors']} {r['statuses']}", flush=True)
    summary = {}
    for s, rs in results.items():
        summary[f"max_in_flight={s or 'none'}"] = {
            k: statistics.median(r[k] for r in rs)
            for k in ("seconds", "p50_ms", "p99_ms", "upstream_peak", "upstream_calls", "errors")}
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    main()
