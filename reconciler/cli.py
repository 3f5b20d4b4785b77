"""The ``pycontainers`` command line: parses global options and dispatches to subcommands.

Subcommand modules are imported only when their command runs, so ``--help`` and
``--version`` stay fast and a broken optional part never hides the others.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from pycontainers import __version__

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _default_root() -> str:
    if os.geteuid() == 0:
        return "/var/lib/pycontainers/storage"
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data, "pycontainers", "storage")


def _default_runroot() -> str:
    if os.geteuid() == 0:
        return "/run/pycontainers"
    run = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/pycontainers-{os.geteuid()}"
    return os.path.join(run, "pycontainers")


def _registrars() -> list[Register]:
    """Each part of the project contributes its own subcommands."""
    from pycontainers.distribution.cli import register as register_image
    from pycontainers.reconciler.commands import register as register_engine

    return [register_image, register_engine]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pycontainers",
        description="Declarative containers for one Linux host, run as systemd units.",
    )
    parser.add_argument("--version", action="version", version=f"pycontainers {__version__}")
    parser.add_argument(
        "--root",
        default=os.environ.get("PYCONTAINERS_ROOT") or _default_root(),
        help="storage root (OCI layout, layers); env PYCONTAINERS_ROOT",
    )
    parser.add_argument(
        "--runroot",
        default=os.environ.get("PYCONTAINERS_RUNROOT") or _default_runroot(),
        help="run-time state (locks, status); env PYCONTAINERS_RUNROOT",
    )
    parser.add_argument(
        "--policy",
        default=os.environ.get("PYCONTAINERS_POLICY"),
        help="image trust policy (containers-policy.json(5)); env PYCONTAINERS_POLICY",
    )
    parser.add_argument("--debug", action="store_true", help="log debugging detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
