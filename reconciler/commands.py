"""Engine subcommands of ``pycontainers``: validate, schema, diff, deploy-repo.

Each is a thin edge over the pure core: read a snapshot, load the desired state, plan,
print. ``diff`` and the daemon share ``load_desired`` and ``plan``, so what ``diff`` shows
is what the daemon would do.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from pycontainers.reconciler.errors import ReconcilerError, SpecError

if TYPE_CHECKING:
    from pycontainers.reconciler.snapshot import Snapshot


def default_spec_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/etc/pycontainers")
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(config) / "pycontainers"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the engine commands."""
    validate = sub.add_parser(
        "validate",
        help="check spec files (no root or systemd needed)",
        description="Check spec files and directories; print file:line:column: message for "
        "every problem and exit 1 if there is any.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", type=Path)
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.set_defaults(func=run_validate)

    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema of spec documents",
        description="Print the JSON Schema of a Container document (for editors using "
        "yaml-language-server: '# yaml-language-server: $schema=<file>').",
    )
    schema.set_defaults(func=run_schema)

    diff = sub.add_parser(
        "diff",
        help="show what would change (a plan), like terraform plan",
        description="Compare the specs with what runs and print the ordered plan.",
    )
    diff.add_argument(
        "path",
        nargs="?",
        type=Path,
        help=f"spec directory or file (default {default_spec_dir()})",
    )
    diff.add_argument(
        "--actual",
        type=Path,
        metavar="FILE",
        help="read the actual state from a JSON file instead of the units "
        "(until the units layer is wired in, the default is an empty state)",
    )
    diff.add_argument(
        "--git",
        metavar="URL",
        help="plan from a git repository instead of PATH (fetched into the storage root)",
    )
    diff.add_argument("--ref", default="main", help="branch or tag for --git (main)")
    diff.add_argument("--subdir", default="", help="specs directory inside the --git repository")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument("--all", action="store_true", help="also list unchanged containers")
    diff.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when the plan changes something (0: no changes, 1: errors)",
    )
    diff.set_defaults(func=run_diff)

    from pycontainers.reconciler.deployrepo import register as register_deploy_repo

    register_deploy_repo(sub)
    __import__("pycontainers.reconciler.engine_commands").reconciler.engine_commands.register(sub)


def _read_paths(paths: list[Path]) -> tuple[dict[str, bytes], dict[str, str], list[str]]:
    """Files from every PATH (files as given, directories via the directory source)."""
    from pycontainers.reconciler.dirsource import DirectorySource

    files: dict[str, bytes] = {}
    file_errors: dict[str, str] = {}
    fatal: list[str] = []
    for path in paths:
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except FileNotFoundError:
            is_dir = False
        except OSError as exc:
            file_errors[str(path)] = f"cannot read: {exc.strerror}"
            continue
        if is_dir:
            try:
                snapshot = DirectorySource(path).read_snapshot()
            except ReconcilerError as exc:
                fatal.append(str(exc))
                continue
            for rel, content in snapshot.files.items():
                files[str(path / rel)] = content
            for rel, problem in snapshot.file_errors.items():
                file_errors[str(path / rel)] = problem
        else:
            source = DirectorySource(path.parent)
            data, why = source.read_file(path)  # same checks as in a directory
            if data is not None:
                files[str(path)] = data
            else:
                file_errors[str(path)] = why or "no such file"
    return files, file_errors, fatal


def run_validate(args: argparse.Namespace) -> int:
    from pycontainers.reconciler.desired import load_desired
    from pycontainers.reconciler.snapshot import Snapshot

    files, file_errors, fatal = _read_paths(args.paths)
    desired = load_desired(
        Snapshot("validate", MappingProxyType(files), MappingProxyType(file_errors))
    )
    errors: list[SpecError] = list(desired.errors)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "containers": sorted(desired.containers),
                    "files": len(files) + len(file_errors),
                    "errors": [e.as_json() for e in errors]
                    + [{"message": m, "file": None} for m in fatal],
                },
                indent=2,
            )
        )
    else:
        for message in fatal:
            print(f"pycontainers: {message}", file=sys.stderr)
        for error in errors:
            print(error.format())
        if not errors and not fatal:
            count = len(files)
            print(
                f"ok: {len(desired.containers)} container(s) in {count} file(s)",
                file=sys.stderr,
            )
    return 1 if errors or fatal else 0


def _emit(text: str) -> None:
    """Write to stdout; a reader that went away (``| head``) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run_schema(args: argparse.Namespace) -> int:
    from pycontainers.reconciler.spec import json_schema

    _emit(json.dumps(json_schema(), indent=2) + "\n")
    return 0


def _git_snapshot(args: argparse.Namespace) -> Snapshot:
    from pycontainers.reconciler.gitsource import GitSource, GitSourceConfig, cache_dir_for

    config = GitSourceConfig(args.git, ref=args.ref, subdir=args.subdir)
    source = GitSource(config, cache_dir_for(Path(args.root), args.git))
    import asyncio

    result = asyncio.run(source.sync())
    if result.fetch_error is not None:
        print(
            f"pycontainers: warning: {result.fetch_error}; planning from the last good "
            f"revision {result.snapshot.revision}",
            file=sys.stderr,
        )
    return result.snapshot


def run_diff(args: argparse.Namespace) -> int:
    from pycontainers.reconciler.actual import (
        ActualStateProvider,
        EmptyActualState,
        JsonFileActualState,
    )
    from pycontainers.reconciler.desired import load_desired
    from pycontainers.reconciler.plan import plan
    from pycontainers.reconciler.planview import render_json, render_text
    from pycontainers.reconciler.snapshot import Snapshot

    path: Path = args.path or default_spec_dir()
    provider: ActualStateProvider = (
        JsonFileActualState(args.actual) if args.actual else EmptyActualState()
    )
    try:
        if args.git:
            snapshot = _git_snapshot(args)
        elif os.path.isdir(path):
            from pycontainers.reconciler.dirsource import DirectorySource

            snapshot = DirectorySource(path).read_snapshot()
        else:
            files, file_errors, fatal = _read_paths([path])
            if fatal:
                raise ReconcilerError(fatal[0])
            snapshot = Snapshot(
                Snapshot.content_revision(files, file_errors),
                MappingProxyType(files),
                MappingProxyType(file_errors),
                str(path),
            )
        import asyncio

        actual = asyncio.run(provider.actual_state())
    except ReconcilerError as exc:
        print(f"pycontainers: {exc.diagnostics()}", file=sys.stderr)
        return 1
    result = plan(load_desired(snapshot), actual)
    output = (
        render_json(result)
        if args.format == "json"
        else render_text(result, show_unchanged=args.all)
    )
    _emit(output)
    if result.errors:
        return 1
    if args.detailed_exitcode and result.changes:
        return 2
    return 0
