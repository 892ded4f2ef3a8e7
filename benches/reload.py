#!/usr/bin/env python3
"""Hosting benchmark: 1,000 tenants x 10 integrations, every file distinct.

Reports, as medians over --runs server starts: the time until /readyz
answers 200, resident memory (and bytes per integration above a server with
one integration), the time until a one-file edit is live; then req/s (wrk,
server pinned to CPU 0, wrk to CPU 1) without edits and while one file is
rewritten 10 times a second.

    python3 benches/reload.py [--tenants 1000] [--per-tenant 10] [--runs 3] [--rounds 3]
    python3 benches/reload.py --tenants 10000 --rounds 0     # 100,000 integrations
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

# Four shapes of message, as the demo tenant has them: QR-code texts and a
# file (boleto), an official-API template (chamado), `when`/`for_each`
# (cobranca), an upstream call (plano). Every file gets its own wording, so no
# two files are alike, as when each company writes its own.
SHAPES = {
    "boleto": """description: Lembrete de boleto {w}
messages:
  - text: "Olá, {{{{ contact.name | first_name }}}}! Aqui é a {w}."
  - text: >-
      Seu boleto {w} do pedido {{{{ data.pedido }}}} no valor de {{{{ data.valor | brl }}}}
      vence em {{{{ data.vencimento | dateformat }}}}.
  - file: "{{{{ data.boleto_url }}}}"
  - text: {tail}
""",
    "chamado": """description: Aviso de chamado {w}
messages:
  - template:
      name: ticket_{w}
      language: pt_BR
      header: "Chamado {{{{ data.protocolo }}}} ({w})"
      body:
        - "{{{{ contact.name | first_name }}}}"
        - "{{{{ data.assunto }}}} — {w}"
      buttons:
        - "{{{{ data.ticket_id }}}}"
        - ~
""",
    "cobranca": """description: Boletos em aberto {w}
messages:
  - text: >-
      Olá, {{{{ contact.name | first_name }}}}! A {w} encontrou {{{{ data.boletos | length }}}}
      {{{{ "boleto" if data.boletos | length == 1 else "boletos" }}}} em aberto.
    when: data.boletos | length > 0
  - text: "Pedido {{{{ boleto.pedido }}}} ({w}): {{{{ boleto.valor | brl }}}}, vence em {{{{ boleto.vencimento | dateformat }}}}."
    for_each: data.boletos
    as: boleto
  - file: "{{{{ boleto.url }}}}"
    for_each: data.boletos
    as: boleto
    when: data.enviar_pdf | default(true)
  - text: "Atenção: há boletos vencidos na {w}. Regularize para evitar juros."
    when: data.boletos | selectattr("vencido") | list | length > 0
""",
    "plano": """description: Lembrete de plano {w}
enrich:
  cliente:
    url: "http://127.0.0.1:8081/{w}/clientes/{{{{ contact.key }}}}"
    headers:
      Authorization: "Bearer {{{{ secrets.erp_token }}}}"
    timeout: 2s
    retries: 1
    cache: 5m
messages:
  - text: "Olá, {{{{ contact.name | first_name }}}}! Seu plano {w} {{{{ enrich.cliente.plano }}}} vence em {{{{ enrich.cliente.vencimento | dateformat }}}}."
  - text: "Valor: {{{{ enrich.cliente.valor | brl }}}}. Você tem {{{{ enrich.cliente.pontos }}}} pontos na {w}."
    when: enrich.cliente.pontos > 0
""",
}
SHAPE_NAMES = list(SHAPES)
TAIL = "Qualquer dúvida, responda esta mensagem."


def integration_text(tenant, index, tail=TAIL):
    """The file of integration `index` of `tenant`: shape `index % 4`, its
    wording unique to the file."""
    shape = SHAPE_NAMES[index % len(SHAPE_NAMES)]
    word = f"Empresa{tenant:05d}x{index}"
    return SHAPES[shape].format(w=word, tail=f"{tail} ({word})")


def integration_name(index):
    return "boleto" if index == 0 else f"i{index}-{SHAPE_NAMES[index % len(SHAPE_NAMES)]}"


def generate(root, tenants, per_tenant):
    for t in range(tenants):
        d = root / f"t{t:05d}"
        d.mkdir(parents=True)
        (d / "tenant.yaml").write_text(f"client_ids: [{10000 + t}]\ntokens: [token-t{t:05d}]\n"
                                       f"secrets:\n  erp_token: erp-{t:05d}\n")
        for i in range(per_tenant):
            (d / f"{integration_name(i)}.yaml").write_text(integration_text(t, i))


def request_for(tenant):
    body = json.loads((WORKLOAD / "request.json").read_text())
    body["clientId"] = 10000 + tenant
    return json.dumps(body).encode()


def post(port, tenant, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/boleto?token=token-t{tenant:05d}",
                                 data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(root, port):
    env = dict(os.environ, RUST_LOG="warn")
    started = time.time()
    proc = subprocess.Popen(["taskset", "-c", "0", str(ROOT / "target/release/recado"), "serve",
                             "--listen", f"127.0.0.1:{port}", "--dir", str(root)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, timeout=300)
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.01)
    except BaseException:
        proc.kill()
        raise
    return proc, time.time() - started


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


def edit_latencies(port, target, hot, body, n=5):
    """Rewrites one integration file n times; how long until each edit answers."""
    out = []
    for k in range(n):
        marker = f"edição {k}"
        target.write_text(integration_text(hot, 0, tail=marker))
        t = time.time()
        while marker not in post(port, hot, body)[3]["value"]:
            if time.time() - t > 30:
                raise RuntimeError("an edit was not picked up within 30 s")
            time.sleep(0.002)
        out.append(time.time() - t)
    target.write_text(integration_text(hot, 0))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--per-tenant", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3, help="server starts: start-up, RSS and edit latency")
    ap.add_argument("--rounds", type=int, default=3, help="wrk rounds (0: none)")
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
        n = args.tenants * args.per_tenant
        print(f"generated {args.tenants} tenants x {args.per_tenant} distinct integrations in "
              f"{time.time() - t0:.1f}s")
        # The same server with one tenant of one integration: what the
        # process costs before any config.
        empty = work / "empty"
        generate(empty, 1, 1)
        port = free_port()
        proc, _ = start_server(empty, port)
        time.sleep(0.5)
        base_rss = rss_mib(proc.pid)
        stop(proc)
        print(f"RSS with 1 integration: {base_rss:.1f} MiB")

        body_file = work / "request.json"
        hot = args.tenants // 2
        body_file.write_bytes(request_for(hot))
        body = body_file.read_bytes()
        target = root / f"t{hot:05d}" / "boleto.yaml"

        startups, rsss, edits = [], [], []
        proc = None
        for run in range(args.runs):
            port = free_port()
            proc, startup = start_server(root, port)
            rss = rss_mib(proc.pid)
            lat = edit_latencies(port, target, hot, body)
            rss_after = rss_mib(proc.pid)
            startups.append(startup)
            rsss.append(rss)
            edits.append(statistics.median(lat))
            print(f"run {run + 1}: ready after {startup:.2f}s, RSS {rss:.0f} MiB "
                  f"({(rss - base_rss) * 1048576 / n:.0f} bytes/integration), {rss_after:.0f} MiB after 5 edits; "
                  f"one-file edit live after median {statistics.median(lat) * 1000:.0f} ms, "
                  f"max {max(lat) * 1000:.0f} ms", flush=True)
            if run + 1 < args.runs or args.rounds == 0:
                stop(proc)
                proc = None

        quiet, busy = [], []
        try:
            url = f"http://127.0.0.1:{port}/hooks/boleto?token=token-t{hot:05d}"
            for rnd in range(args.rounds):
                r = wrk(url, args.duration, 32, body_file)
                quiet.append(r["rps"])
                stop_ev = threading.Event()

                def rewrite():
                    k = 0
                    while not stop_ev.is_set():
                        target.write_text(integration_text(hot, 0, tail=TAIL if k % 2 else "Dúvida?"))
                        k += 1
                        stop_ev.wait(0.1)

                th = threading.Thread(target=rewrite)
                th.start()
                r2 = wrk(url, args.duration, 32, body_file)
                stop_ev.set()
                th.join()
                busy.append(r2["rps"])
                print(f"round {rnd + 1}: {r['rps']:.0f} req/s quiet, {r2['rps']:.0f} req/s while rewriting "
                      f"10/s (errors {r2['err_status'] + r2['err_read'] + r2['err_connect']})", flush=True)
        finally:
            if proc:
                stop(proc)
        rss = statistics.median(rsss)
        result = {"tenants": args.tenants, "integrations": n, "runs": args.runs,
                  "ready_s": round(statistics.median(startups), 3), "rss_mib": round(rss, 1),
                  "rss_empty_mib": round(base_rss, 1),
                  "bytes_per_integration": round((rss - base_rss) * 1048576 / n),
                  "edit_live_ms_median": round(statistics.median(edits) * 1000, 1)}
        if quiet:
            q, b = statistics.median(quiet), statistics.median(busy)
            result.update(rps_quiet=q, rps_rewriting=b, rps_ratio=round(b / q, 3))
        print("RESULT " + json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
