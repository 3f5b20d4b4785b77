"""``pycontainers deploy-repo init``: a bare repository on the host that deploys on push.

``git push <host>:<path> main`` then runs the hooks in ``deployhook``: the push is checked
(invalid specs are shown to the pusher and refused) and the daemon is told to sync that
commit at once. The daemon follows the repository as a git source with a local path URL.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from pycontainers.reconciler.errors import DeployRepoError

HOOKS = ("pre-receive", "post-receive")


def hook_script(python: str, hook: str) -> str:
    return (
        "#!/bin/sh\n"
        "# Installed by `pycontainers deploy-repo init`; see docs/spec.md (push to deploy).\n"
        f"exec {shlex.quote(python)} -m pycontainers.reconciler.deployhook {hook}\n"
    )


def init_deploy_repo(
    path: Path,
    *,
    runroot: Path,
    branch: str = "main",
    subdir: str = "",
    reject_invalid: bool = True,
    python: str = sys.executable,
) -> Path:
    """Create (or update the hooks and settings of) a deploy repository; idempotent."""
    path = path.absolute()
    if path.exists() and any(path.iterdir()) and not (path / "HEAD").exists():
        raise DeployRepoError(f"cannot create deploy repository {path}: directory is not empty")
    from pycontainers.reconciler.gitsource import git_env  # loads asyncio: not at parse time

    env = git_env()

    def git(*args: str) -> None:
        result = subprocess.run(
            ["git", *args], env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DeployRepoError(
                f"cannot set up deploy repository {path}: git {args[0]} failed: "
                f"{result.stderr.strip().removeprefix('fatal: ')}"
            )

    git("init", "--bare", "--quiet", f"--initial-branch={branch}", str(path))
    settings = {
        "pycontainers.branch": branch,
        "pycontainers.runroot": str(runroot),
        "pycontainers.subdir": subdir,
        "pycontainers.rejectInvalid": "true" if reject_invalid else "false",
    }
    for key, value in settings.items():
        git("--git-dir", str(path), "config", key, value)
    for hook in HOOKS:
        target = path / "hooks" / hook
        target.write_text(hook_script(python, hook))
        os.chmod(target, 0o755)
    return path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = sub.add_parser(
        "deploy-repo",
        help="manage the push-to-deploy git repository",
        description="A bare git repository on this host: pushing to its deploy branch "
        "validates the specs and makes the daemon apply that commit.",
    )
    verbs = deploy.add_subparsers(dest="deploy_command", metavar="DEPLOY_COMMAND")
    init = verbs.add_parser(
        "init",
        help="create the repository and install its hooks",
        description="Create a bare repository with pre-receive (validate) and post-receive "
        "(notify the daemon) hooks. Running it again updates the hooks and settings.",
    )
    init.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="repository path (default: deploy.git next to the storage root)",
    )
    init.add_argument("--branch", default="main", help="the branch that deploys (main)")
    init.add_argument("--subdir", default="", help="read specs below this directory only")
    init.add_argument(
        "--allow-invalid",
        action="store_true",
        help="accept pushes with invalid specs (they are still reported to the pusher)",
    )
    init.set_defaults(func=run_init)

    def usage(args: argparse.Namespace) -> int:
        deploy.print_help(sys.stderr)
        return 2

    deploy.set_defaults(func=usage)


def run_init(args: argparse.Namespace) -> int:
    path: Path = args.path or Path(args.root).parent / "deploy.git"
    try:
        created = init_deploy_repo(
            path,
            runroot=Path(args.runroot),
            branch=args.branch,
            subdir=args.subdir,
            reject_invalid=not args.allow_invalid,
        )
    except DeployRepoError as exc:
        print(f"pycontainers: {exc}", file=sys.stderr)
        return 1
    host = socket.gethostname()
    print(f"deploy repository ready: {created}")
    print(f"  push with: git push {host}:{created} HEAD:{args.branch}")
    print(f"  the daemon follows it as a git source: url {created}, ref {args.branch}")
    return 0
