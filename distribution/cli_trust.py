"""``pycontainers image`` subcommands: keygen, sign, verify."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this part's image subcommands (none yet)."""
    del sub
