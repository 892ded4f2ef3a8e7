#!/usr/bin/env python3
"""The container image's build stage, run without a container engine.

CI has no Docker engine, so the image itself is never built there. This
checks the part that can break silently: the builder stage's build. It copies
the paths the Dockerfile's builder stage COPYs into an empty folder, as
Docker would send them (the repository's tracked files under them, a clean
clone's build context, less what `.dockerignore` leaves out), then runs the
build command that stage runs, `./build-release`, with the stage's default
`PGO`. That makes the binary the image ships and refuses one that fails the
demo tenant's `recado check` and `recado test`. A file the build needs
but the Dockerfile does not copy (or `.dockerignore` drops) fails here.

    .ci/builder-stage.py OUT     # OUT: where the built binary is written

Only the COPY forms the Dockerfile uses are understood (files into a
folder, `dir/ dir/`, relative destinations); any other form stops this
check with a message, rather than copying something Docker would not.
The copy's `target/` is a link to the repository's, so compiled
dependencies are shared with the repository's own builds.
"""
import fnmatch
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The builder stage's build step, less its cache mounts.
BUILD = 'PGO="$PGO" ./build-release /usr/local/bin/recado'


def builder_stage(dockerfile):
    """The builder stage's instructions, as (keyword, arguments) pairs:
    continuation lines joined; comments and blank lines dropped, also
    inside a continued instruction, as Docker does."""
    stage, inside, pending = [], False, ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            if inside:
                break
            inside = rest.split()[-1].lower() == "builder"
            continue
        if inside:
            stage.append((keyword, rest.strip()))
    if not stage:
        sys.exit(f"{dockerfile}: no stage named `builder`")
    return stage


def ignored(path, patterns):
    """Whether `.dockerignore` leaves `path` (or a folder above it) out.
    Patterns as Docker reads them, but for `!` exceptions, which
    .dockerignore does not use (refused in `dockerignore`)."""
    parts = Path(path).parts
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        variants = [pattern]
        if pattern.startswith("**/"):
            variants.append(pattern[3:])  # `**/` also matches no folder
        for c in candidates:
            for v in variants:
                if fnmatch.fnmatchcase(c, v):
                    return True
    return False


def dockerignore():
    path = ROOT / ".dockerignore"
    patterns = []
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            sys.exit(f".dockerignore: `{line}`: exceptions are not understood by {__file__}")
        patterns.append(line.strip("/"))
    return patterns


def copy_context(stage, into):
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    patterns = dockerignore()
    for keyword, args in stage:
        if keyword != "COPY":
            continue
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            sys.exit(f"Dockerfile: COPY {args}: copies from another stage; not understood by {__file__}")
        *sources, dest = [w for w in words if not w.startswith("--")]
        if dest.startswith("/") or not dest.endswith("/"):
            sys.exit(f"Dockerfile: COPY {args}: only a relative folder (ending in /) is understood "
                     f"as the destination by {__file__}")
        for source in sources:
            folder = source.endswith("/")
            source = source.rstrip("/")
            files = [f for f in tracked if f == source or f.startswith(source + "/")]
            if not files:
                sys.exit(f"Dockerfile: COPY {source}: no such file in the repository")
            if folder and files == [source]:
                sys.exit(f"Dockerfile: COPY {source}/: a file, not a folder")
            for f in files:
                if ignored(f, patterns):
                    continue  # Docker never sends it
                # `COPY a b ./` puts the file itself in ./; `COPY dir/ dir/`
                # puts dir's contents in dir/.
                rel = Path(f).relative_to(source) if f != source else Path(Path(f).name)
                target = into / dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / f, target)


def arg_default(stage, name):
    for keyword, args in stage:
        if keyword == "ARG" and args.partition("=")[0] == name:
            return args.partition("=")[2]
    sys.exit(f"Dockerfile: the builder stage has no `ARG {name}`")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1]).resolve()
    stage = builder_stage(ROOT / "Dockerfile")
    runs = [" ".join(w for w in args.split() if not w.startswith("--mount="))
            for keyword, args in stage if keyword == "RUN"]
    if BUILD not in runs:
        sys.exit(f"Dockerfile: the builder stage no longer runs `{BUILD}`; update {__file__}")
    pgo = arg_default(stage, "PGO")
    with tempfile.TemporaryDirectory(prefix="recado-builder-") as tmp:
        context = Path(tmp)
        copy_context(stage, context)
        (context / "target").symlink_to(ROOT / "target")
        copied = sum(1 for p in context.rglob("*") if p.is_file() and not p.is_symlink())
        print(f"builder stage: {copied} files copied; PGO={pgo}", flush=True)
        subprocess.run(["./build-release", str(out)], cwd=context, check=True,
                       env=dict(os.environ, PGO=pgo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
