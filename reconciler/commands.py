"""Engine subcommands of ``pycontainers`` (validate, schema, diff, apply, daemon, status)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the engine commands; filled in by the reconciler issues."""
    del sub
