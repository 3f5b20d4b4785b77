"""``pycontainers image ...``: the image command group.

Each concern registers its own subcommands: registry and store commands
(``cli_registry``), layer unpack and image build (``cli_layers``), signing and trust
(``cli_trust``).
"""

from __future__ import annotations

import argparse

from pycontainers.distribution import cli_layers, cli_registry, cli_trust


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    image = sub.add_parser("image", help="manage images (pull, ls, inspect, copy, ...)")
    image_sub = image.add_subparsers(dest="image_command", metavar="IMAGE_COMMAND")
    for part in (cli_registry, cli_layers, cli_trust):
        part.register(image_sub)
