"""``pycontainers image ...``: the image commands (pull, ls, inspect, copy, ...)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``image`` command group; filled in by the distribution issues."""
    image = sub.add_parser("image", help="manage images (pull, ls, inspect, copy, ...)")
    image.add_subparsers(dest="image_command", metavar="IMAGE_COMMAND")
