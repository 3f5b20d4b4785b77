"""Engine subcommands: ``apply``, ``daemon``, ``status``, ``logs``, ``suspend``, ``resume``.

Thin edges over ``engine`` and ``daemon``: parse, open the bus, run, print. Root talks to
the system manager, anybody else to their own user manager (rootless mode).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from pycontainers.reconciler.errors import ReconcilerError

if TYPE_CHECKING:  # imported lazily at run time: --help stays fast
    from pycontainers.reconciler.layout import EnginePaths
    from pycontainers.units.bus import BusTarget


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apply = sub.add_parser(
        "apply",
        help="reconcile once: make what runs match PATH (no daemon needed)",
        description="One reconcile pass: pull and verify images, write bundles, start, "
        "replace and (for a directory) remove container units, then print the outcome.",
    )
    apply.add_argument("path", type=Path, metavar="PATH", help="spec directory or file")
    apply.add_argument(
        "--no-prune",
        action="store_true",
        help="never remove containers missing from PATH (the default for a single file)",
    )
    apply.add_argument("--format", choices=("text", "json"), default="text")
    apply.set_defaults(func=run_apply)

    daemon = sub.add_parser(
        "daemon",
        help="watch a spec directory or git repository and keep containers converged",
        description="The engine as a service (pycontainers.service, Type=notify): "
        "reconciles on every change, on `systemctl reload`, and periodically.",
    )
    daemon.add_argument("path", type=Path, nargs="?", metavar="PATH", help="spec directory")
    daemon.add_argument("--git", metavar="URL", help="follow a git repository instead")
    daemon.add_argument("--ref", default="main", help="git branch or tag (default main)")
    daemon.add_argument("--subdir", default="", help="specs below this repository directory")
    daemon.add_argument(
        "--resync-interval", type=float, default=300.0, metavar="SECONDS", help="default 300"
    )
    daemon.add_argument(
        "--fetch-interval", type=float, default=60.0, metavar="SECONDS", help="git, default 60"
    )
    daemon.add_argument(
        "--auto-update-interval",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="re-resolve tags of imagePullPolicy: Always images (default 3600, 0: never)",
    )
    daemon.set_defaults(func=run_daemon)

    status = sub.add_parser("status", help="what runs, what failed and why (last reconcile)")
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.add_argument("--events", action="store_true", help="list recent events instead")
    status.set_defaults(func=run_status)

    logs = sub.add_parser("logs", help="a container's output (its unit's journal)")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", default=None, help="show this many lines")
    logs.set_defaults(func=run_logs)

    for verb, text in (("suspend", "pause"), ("resume", "resume")):
        p = sub.add_parser(verb, help=f"{text} reconciliation of NAME (or of everything)")
        p.add_argument("name", nargs="?", metavar="NAME")
        p.set_defaults(func=run_suspend, verb=verb)


def paths_of(args: argparse.Namespace) -> EnginePaths:
    from pycontainers.reconciler.layout import EnginePaths

    return EnginePaths(Path(args.root).absolute(), Path(args.runroot).absolute())


def bus_target() -> BusTarget:
    from pycontainers.units.bus import bus_for

    return bus_for("system" if os.geteuid() == 0 else "user")


def setup_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _fail(text: str) -> int:
    print(f"pycontainers: {text}", file=sys.stderr)
    return 1


def run_apply(args: argparse.Namespace) -> int:
    from pycontainers.units.errors import UnitError

    setup_logging(args.debug)
    try:
        import asyncio

        return asyncio.run(_apply(args))
    except (ReconcilerError, UnitError) as exc:
        return _fail(exc.diagnostics())


async def _apply(args: argparse.Namespace) -> int:
    from pycontainers.reconciler.apply import Applier
    from pycontainers.reconciler.engine import DirectorySpecSource, Engine, FixedSource, Source
    from pycontainers.reconciler.images import ImageSupply
    from pycontainers.reconciler.snapshot import Snapshot
    from pycontainers.reconciler.status import render_text
    from pycontainers.units.backend import SystemdBackend

    path: Path = args.path.absolute()
    paths = paths_of(args)
    source: Source
    if path.is_dir():
        source, prune = DirectorySpecSource(path), not args.no_prune
    else:
        from pycontainers.reconciler.dirsource import DirectorySource

        data, why = DirectorySource(path.parent).read_file(path)
        if data is None:
            return _fail(f"cannot read {path}: {why or 'no such file'}")
        files = {path.name: data}
        snapshot = Snapshot(
            Snapshot.content_revision(files, {}), MappingProxyType(files), source=str(path)
        )
        source, prune = FixedSource(snapshot, str(path)), False
    images = ImageSupply(paths, args.policy)
    async with await SystemdBackend.open(bus_target()) as backend:
        engine = Engine(paths, Applier(paths, backend, images), images, source, prune=prune)
        result = await engine.reconcile(fetch=True)
    if args.format == "json":
        print(json.dumps(dict(result.status), indent=2))
    else:
        for outcome in result.outcomes:
            if outcome.ok:
                print(f"{outcome.kind} {outcome.name}: {outcome.reason}")
            else:
                print(f"{outcome.kind} {outcome.name} FAILED: {outcome.error}")
        sys.stdout.write(render_text(result.status))
    failed = any(not o.ok for o in result.outcomes)
    return 1 if failed or result.plan.errors else 0


def run_daemon(args: argparse.Namespace) -> int:
    from pycontainers.reconciler.daemon import run

    setup_logging(args.debug)
    return run(args, paths_of(args), bus_target())


def run_status(args: argparse.Namespace) -> int:
    from pycontainers.reconciler.status import read_status, render_events, render_text

    paths = paths_of(args)
    status = read_status(paths.status_file)
    if status is None:
        return _fail(
            f"no status at {paths.status_file}: nothing has reconciled yet "
            "(start the daemon: systemctl start pycontainers, or run pycontainers apply PATH)"
        )
    if args.format == "json":
        print(json.dumps(status, indent=2))
    elif args.events:
        sys.stdout.write(render_events(status))
    else:
        sys.stdout.write(render_text(status))
    return 0


def run_logs(args: argparse.Namespace) -> int:
    from pycontainers.units.errors import UnitSpecError
    from pycontainers.units.model import unit_name

    try:
        unit = unit_name(args.name)
    except UnitSpecError as exc:
        return _fail(str(exc))
    argv = ["journalctl", "--no-pager", "-o", "short-iso"]
    if os.geteuid() != 0:
        argv.append("--user")
    argv += ["-u", unit]
    if args.follow:
        argv.append("-f")
    if args.lines:
        argv += ["-n", str(args.lines)]
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        return _fail(f"cannot run journalctl: {exc.strerror}")


def run_suspend(args: argparse.Namespace) -> int:
    from pycontainers.reconciler.engine import Suspension, read_suspension, write_suspension
    from pycontainers.reconciler.trigger import SyncRequest, write_sync_request

    paths = paths_of(args)
    current = read_suspension(paths)
    suspend = args.verb == "suspend"
    if args.name is None:
        new = Suspension(all=suspend, names=current.names if suspend else frozenset())
    elif suspend:
        new = Suspension(current.all, current.names | {args.name})
    else:
        new = Suspension(current.all, current.names - {args.name})
    try:
        write_suspension(paths, new)
    except OSError as exc:
        return _fail(f"cannot write {paths.suspended_file}: {exc.strerror}")
    with contextlib.suppress(OSError):  # wake the daemon, if one runs
        write_sync_request(paths.runroot, SyncRequest("pycontainers-suspend", args.verb, ""))
    what = args.name or "everything"
    print(f"{'suspended' if suspend else 'resumed'} {what}")
    return 0
