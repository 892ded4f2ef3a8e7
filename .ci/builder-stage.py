#!/usr/bin/env python3
"""The container image's build stage, run without a container engine.

CI has no Docker engine, so the image itself is never built there. This
checks the part that can break silently: the builder stage's build. It copies
exactly the paths the Dockerfile's builder stage COPYs (the repository's
tracked files under them: a clean clone's build context) into an empty
folder, then runs the build command that stage runs there, `./build-release`,
which makes the profile-guided binary and refuses one that fails the shipped
examples' `recado check` and `recado test`. A file the build needs but the
Dockerfile forgets to copy fails here.

    .ci/builder-stage.py OUT     # OUT: where the built binary is written

The copy's `target/` is the repository's, so compiled dependencies are
shared with the repository's own builds.
"""
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = "./build-release /usr/local/bin/recado"


def builder_stage(dockerfile):
    """The builder stage's instructions, as (keyword, arguments) pairs, with
    continuation lines joined and comments dropped."""
    stage, inside, pending = [], False, ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
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


def copy_context(stage, into):
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for keyword, args in stage:
        if keyword != "COPY":
            continue
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        *sources, dest = words
        for source in sources:
            source = source.rstrip("/")
            files = [f for f in tracked if f == source or f.startswith(source + "/")]
            if not files:
                sys.exit(f"Dockerfile: COPY {source}: no such file in the repository")
            for f in files:
                # `COPY a b ./` puts the file itself in ./; `COPY dir/ dir/`
                # puts dir's contents in dir/.
                rel = Path(f).relative_to(source) if f != source else Path(Path(f).name)
                target = into / dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / f, target)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1]).resolve()
    stage = builder_stage(ROOT / "Dockerfile")
    runs = [args for keyword, args in stage if keyword == "RUN"]
    if not any(BUILD in r for r in runs):
        sys.exit(f"Dockerfile: the builder stage no longer runs `{BUILD}`; update {__file__}")
    with tempfile.TemporaryDirectory(prefix="recado-builder-") as tmp:
        context = Path(tmp)
        copy_context(stage, context)
        (context / "target").symlink_to(ROOT / "target")
        print(f"builder stage: {sum(1 for _ in context.rglob('*') if _.is_file())} files copied",
              flush=True)
        subprocess.run(["./build-release", str(out)], cwd=context, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
