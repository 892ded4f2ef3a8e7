#!/usr/bin/env python3
"""A profile-guided (PGO) release build of recado, and of the baseline peer.

    python3 benches/pgo.py            # → target/pgo/release/recado
                                      #   target/pgo-peers/release/baseline-hyper

Three steps, for each program:

1. an instrumented release build (`-Cprofile-generate`, its own target dir);
2. training: the instrumented server answers a workload on loopback, then
   stops gracefully, which writes its profile;
3. the release build again, with the merged profile (`-Cprofile-use`): the
   compiler lays out and inlines the code for the paths the training took.

recado's training is the shipped examples: each `examples/NAME.json` to the
demo tenant as the tests keep it, `tests/data/integrations` (an identical
copy of `integrations/demo` that operators' edits and tenants never touch,
so the build does not depend on them: a tenant of theirs whose secrets come
from the environment would not even load at build time); the `plano`
example with its stand-in ERP, `examples/erp.py`, when port 8081 is free.
Each is sent a few thousand times over keep-alive connections, with the
access line off, as text and as JSON (three server runs), plus the usual
refusals (a wrong token, a malformed body, a missing field, an unknown
integration, a wrong content type) and the health and metrics routes. The `boleto` example is the benchmark's
request and integration; `--exclude boleto` trains without it, to check
that a gain measured by `load.py --pgo` is not the profile having seen the
measured request. The baseline peer's training is its one answer, the same
number of times, so that `load.py --pgo` compares two builds made the same
way.

The profile is read by the same LLVM that wrote it: `llvm-profdata` comes
from the toolchain's `llvm-tools` component (installed with rustup if
missing). Traffic goes to 127.0.0.1 only.
"""
import argparse
import contextlib
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402

ROOT = load.ROOT
# Resolved: the profile's path is part of the compiler flags, and so of every
# crate's fingerprint. A copy of the repository whose target/ is a link to
# this one's (.ci/builder-stage.py) then reuses its compiled dependencies.
TARGET = (ROOT / "target").resolve()
RECADO = TARGET / "pgo/release/recado"
BASELINE = TARGET / "pgo-peers/release/baseline-hyper"
# Requests per example and server run: enough for every hot branch to be
# counted thousands of times; the profile records counts, not time.
REPEAT = 3000


def llvm_profdata():
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                             check=True).stdout.strip()
    host = next(l.split(": ", 1)[1] for l in subprocess.run(
        ["rustc", "-vV"], capture_output=True, text=True, check=True).stdout.splitlines()
        if l.startswith("host: "))
    tool = Path(sysroot) / "lib/rustlib" / host / "bin/llvm-profdata"
    if not tool.exists():
        subprocess.run(["rustup", "component", "add", "llvm-tools"], check=True)
    return tool


def cargo_build(target_dir, rustflags, manifest=None, binary=None):
    # Added to the caller's own RUSTFLAGS, which the plain build gets too.
    flags = " ".join(f for f in (os.environ.get("RUSTFLAGS", ""), rustflags) if f)
    env = dict(os.environ, RUSTFLAGS=flags, CARGO_TARGET_DIR=str(target_dir))
    cmd = ["cargo", "build", "--release", "--locked"]
    if manifest:
        cmd += ["--manifest-path", str(manifest)]
    if binary:
        cmd += ["--bin", binary]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def post_many(port, path, body, times, headers=None):
    """POSTs `body` `times` times over one keep-alive connection; returns
    the statuses seen."""
    seen = set()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    try:
        for _ in range(times):
            conn.request("POST", path, body=body, headers=hdrs)
            r = conn.getresponse()
            r.read()
            seen.add(r.status)
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    finally:
        conn.close()
    return seen


def get_many(port, path, times):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(times):
            conn.request("GET", path)
            conn.getresponse().read()
    finally:
        conn.close()


@contextlib.contextmanager
def instrumented(cmd, port, env):
    """Runs `cmd` until the block ends, then stops it with SIGTERM and
    waits: the profile is written as the process exits normally. A server
    that does not stop in time is killed (and its profile is then missing,
    which `build` reports)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        load.wait_for_port(port, proc, timeout=60)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code != 0:
            print(f"warning: {cmd[0]} exited with {code}; its profile may be missing", file=sys.stderr)


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def train_recado(binary, profile_file, exclude=()):
    examples = sorted(p for p in (ROOT / "examples").glob("*.json")
                      if not p.name.endswith(".expected.json") and p.stem not in exclude)
    if not examples:
        raise RuntimeError("every example is excluded: nothing to train on")
    erp = None
    try:
        if port_is_free(8081):
            erp = subprocess.Popen([sys.executable, str(ROOT / "examples/erp.py"), "8081"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            load.wait_for_port(8081, erp)
        for rust_log, fmt in (("warn", "text"), ("info", "text"), ("info", "json")):
            port = load.free_port()
            env = dict(os.environ, RUST_LOG=rust_log, LLVM_PROFILE_FILE=str(profile_file))
            cmd = [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--log-format", fmt,
                   "--dir", str(load.INTEGRATIONS)]
            with instrumented(cmd, port, env):
                for example in examples:
                    body = example.read_bytes()
                    path = f"/hooks/{example.stem}?token=demo-token"
                    statuses = post_many(port, path, body, REPEAT)
                    print(f"  {rust_log}/{fmt} {example.stem}: {REPEAT} requests, status {sorted(statuses)}",
                          flush=True)
                    # A profile of error answers would train the wrong path;
                    # `plano` without its ERP (port 8081 taken) answers 502.
                    if statuses != {200} and not (example.stem == "plano" and erp is None):
                        raise RuntimeError(f"training: {example.stem} answered {sorted(statuses)}, not 200")
                body = examples[0].read_bytes()
                name = examples[0].stem
                refusals = [
                    (f"/hooks/{name}?token=wrong", body, None),
                    (f"/hooks/{name}?token=demo-token", body[: len(body) // 2], None),
                    (f"/hooks/{name}?token=demo-token",
                     json.dumps({k: v for k, v in json.loads(body).items() if k != "contact"}).encode(),
                     None),
                    ("/hooks/no-such-integration?token=demo-token", body, None),
                    (f"/hooks/{name}?token=demo-token", body, {"Content-Type": "text/plain"}),
                ]
                for path, b, headers in refusals:
                    post_many(port, path, b, REPEAT // 10, headers)
                for route in ("/healthz", "/readyz", "/metrics"):
                    get_many(port, route, 50)
    finally:
        if erp:
            erp.terminate()
            erp.wait(timeout=10)
    return "examples " + ", ".join(e.stem for e in examples)


def train_baseline(binary, profile_file):
    port = load.free_port()
    env = dict(os.environ, LLVM_PROFILE_FILE=str(profile_file))
    body = (load.WORKLOAD / "request.json").read_bytes()
    with instrumented([str(binary), str(port)], port, env):
        # As many answers as recado's training gives for one example and run.
        post_many(port, "/", body, 3 * REPEAT)
    return "its one answer"


def build(profiled_dir, final_dir, manifest, binary, train):
    tool = llvm_profdata()
    name = binary or manifest.parent.name
    profiles = TARGET / "pgo-profiles" / name
    shutil.rmtree(profiles, ignore_errors=True)
    profiles.mkdir(parents=True)
    cargo_build(profiled_dir, f"-Cprofile-generate={profiles}", manifest, binary)
    # Named apart from the default-named files the instrumented build's
    # build scripts write here too: only the training's are merged.
    trained_on = train(profiled_dir / "release" / name, profiles / "training-%p-%m.profraw")
    raws = glob.glob(str(profiles / "training-*.profraw"))
    if not raws:
        raise RuntimeError(f"training {name} wrote no profile")
    merged = profiles / "merged.profdata"
    subprocess.run([str(tool), "merge", "-o", str(merged), *raws], check=True)
    # Every function the training never ran is still compiled, optimized as
    # without a profile; LLVM's warnings about them are noise here.
    cargo_build(final_dir, f"-Cprofile-use={merged} -Cllvm-args=-pgo-warn-missing-function=false",
                manifest, binary)
    # What the binary was trained on, beside it, for `load.py --pgo` to say.
    (final_dir / "release" / f"{name}.training").write_text(trained_on + "\n")
    return final_dir / "release" / name


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["recado", "baseline"], help="build only this one")
    ap.add_argument("--exclude", action="append", default=[], metavar="NAME",
                    help="leave examples/NAME.json out of recado's training (repeatable)")
    args = ap.parse_args()
    if args.only != "baseline":
        def train(binary, profile_file):
            return train_recado(binary, profile_file, args.exclude)
        out = build(TARGET / "pgo-gen", TARGET / "pgo", None, "recado", train)
        print(f"recado with PGO: {out}")
    if args.only != "recado":
        out = build(TARGET / "pgo-peers-gen", TARGET / "pgo-peers",
                    load.BENCHES / "baseline-hyper/Cargo.toml", None, train_baseline)
        print(f"baseline-hyper with PGO: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
