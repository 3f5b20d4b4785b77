"""The hooks of a push-to-deploy repository (run by git on the host, not by people).

``pre-receive`` validates the specs of the pushed deploy-branch commit and refuses the push
when any file is invalid (unless the repository allows invalid pushes); everything printed
here reaches the pusher as ``remote: ...`` lines. ``post-receive`` asks the daemon to sync.
Settings live in the repository's git config (``pycontainers.*``), written by
``pycontainers deploy-repo init``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from pycontainers.reconciler.desired import load_desired
from pycontainers.reconciler.errors import ReconcilerError
from pycontainers.reconciler.gitsource import git_env, read_commit
from pycontainers.reconciler.trigger import SyncRequest, write_sync_request

ZERO = "0" * 40


def _config(key: str, default: str = "") -> str:
    result = subprocess.run(
        ["git", "config", "--get", f"pycontainers.{key}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or default


def _say(message: str) -> None:
    print(f"pycontainers: {message}", file=sys.stderr)


def _updates() -> list[tuple[str, str, str]]:
    updates = []
    for line in sys.stdin.read().splitlines():
        old, new, ref = line.split()
        updates.append((old, new, ref))
    return updates


def pre_receive() -> int:
    branch_ref = f"refs/heads/{_config('branch', 'main')}"
    subdir = _config("subdir")
    reject_invalid = _config("rejectinvalid", "true") == "true"
    git_dir = Path(os.environ.get("GIT_DIR", ".")).resolve()
    status = 0
    for _old, new, ref in _updates():
        if ref != branch_ref:
            continue
        if new == ZERO:
            _say(f"refusing to delete {ref}: it would remove every container it deploys")
            status = 1
            continue
        try:
            # The pushed objects are still in git's quarantine: keep the hook's GIT_*
            # variables (GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES) to see them.
            snapshot = asyncio.run(
                read_commit(git_dir, new, subdir=subdir, env=git_env(keep_git_vars=True))
            )
        except ReconcilerError as exc:
            _say(f"cannot read {new[:12]}: {exc}")
            status = 1
            continue
        desired = load_desired(snapshot)
        for error in desired.errors:
            _say(error.format())
        names = ", ".join(sorted(desired.containers)) or "none"
        if desired.errors:
            verdict = "rejected" if reject_invalid else "accepted anyway (rejectInvalid=false)"
            _say(
                f"{new[:12]}: {len(desired.errors)} error(s) in {len(desired.invalid_files)} "
                f"file(s); push {verdict}; invalid files keep their containers as they are"
            )
            if reject_invalid:
                status = 1
        else:
            _say(f"{new[:12]}: {len(desired.containers)} valid container(s): {names}")
    return status


def post_receive() -> int:
    branch_ref = f"refs/heads/{_config('branch', 'main')}"
    runroot = Path(_config("runroot", "/run/pycontainers"))
    repository = str(Path(os.environ.get("GIT_DIR", ".")).resolve())
    for _old, new, ref in _updates():
        if ref != branch_ref or new == ZERO:
            continue
        try:
            path = write_sync_request(runroot, SyncRequest(repository, ref, new))
        except OSError as exc:
            _say(
                f"could not notify the daemon ({runroot}: {exc.strerror}); it syncs on its interval"
            )
            continue
        _say(f"{new[:12]} deployed; sync requested ({path})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["pre-receive"]:
        return pre_receive()
    if args == ["post-receive"]:
        return post_receive()
    print(
        "usage: python -m pycontainers.reconciler.deployhook pre-receive|post-receive",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
