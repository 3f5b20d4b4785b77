"""``pycontainers image`` subcommands: pull, ls, inspect, rm, copy, login, logout, prune, fsck.

This module only declares the options: the commands live in ``image_commands`` and are
imported when one of them runs, so every other ``pycontainers`` command (and ``--help``)
starts without loading httpx, asyncio and the registry client.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def _lazy(command: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from pycontainers.distribution import image_commands

        return image_commands.run(command, args)

    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this part's image subcommands."""
    p = sub.add_parser("pull", help="pull an image from a registry into the store")
    p.add_argument(
        "image",
        help="image reference (short names use registries.conf), or oci:DIR:NAME / dir:PATH "
        "(stored as NAME, short names under localhost/, or as localhost/PATH)",
    )
    p.add_argument(
        "--layers",
        action="store_true",
        help="also unpack the layers into the layer store (<root>/../layers), each while "
        "its blob downloads",
    )
    _connect_args(p)
    _platform_args(p)
    _output_args(p)
    p.set_defaults(func=_lazy("pull"))

    p = sub.add_parser("ls", help="list images in the store")
    _output_args(p, quiet_help="print names only")
    p.set_defaults(func=_lazy("ls"))

    p = sub.add_parser("inspect", help="show an image's metadata (remote images without pulling)")
    p.add_argument("image", help="docker://REF, oci:DIR[:NAME], dir:PATH, or a stored/remote REF")
    p.add_argument("--raw", action="store_true", help="print the manifest exactly as stored")
    p.add_argument("--config", action="store_true", help="print the image config")
    _connect_args(p)
    _platform_args(p)
    p.set_defaults(func=_lazy("inspect"))

    p = sub.add_parser("rm", help="remove images from the store (and blobs nothing else uses)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=_lazy("rm"))

    p = sub.add_parser("copy", help="copy an image between docker://, oci:, dir: and the store")
    p.add_argument("source")
    p.add_argument("destination")
    p.add_argument("--all", action="store_true", help="copy every platform of an index")
    p.add_argument("--chunk-size", type=int, default=None, help="push in chunks of this many bytes")
    _connect_args(p)
    _platform_args(p)
    _output_args(p)
    p.set_defaults(func=_lazy("copy"))

    p = sub.add_parser("login", help="save credentials for a registry (containers-auth.json)")
    p.add_argument("registry")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("--authfile", type=Path, help="file to write (default: containers-auth.json)")
    _tls_args(p)
    p.set_defaults(func=_lazy("login"))

    p = sub.add_parser("logout", help="remove saved credentials for a registry")
    p.add_argument("registry", nargs="?")
    p.add_argument("--all", action="store_true", help="remove every saved credential")
    p.add_argument("--authfile", type=Path)
    p.set_defaults(func=_lazy("logout"))

    p = sub.add_parser(
        "prune",
        help="remove blobs no image in the store uses, and unpacked layers nothing uses",
        description="Remove blobs no image in the store reaches, and layer directories "
        "(<root>/../layers) that no stored image, no engine bundle "
        "(<root>/../containers/*/*/config.json) and no mounted overlay uses.",
    )
    _output_args(p)
    p.set_defaults(func=_lazy("prune"))

    p = sub.add_parser(
        "fsck",
        help="re-verify every blob in the store",
        description="Re-hash every blob in the store and check that every image's blobs "
        "are present. Exit status 1 if anything was wrong (also after --repair: the "
        "images that lost blobs must be pulled again).",
    )
    p.add_argument(
        "--repair", action="store_true", help="remove corrupt blobs (pull their images again)"
    )
    _output_args(p)
    p.set_defaults(func=_lazy("fsck"))


# ---- options ---------------------------------------------------------------------------


def _tls_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tls-verify",
        choices=("true", "false"),
        default=None,
        help="false: allow plain http and skip certificate checks; true: require verified "
        "https even for localhost (default: verify, except loopback and registries.conf "
        "insecure registries)",
    )
    p.add_argument("--ca-bundle", help="PEM file of CA certificates to trust")


def _connect_args(p: argparse.ArgumentParser) -> None:
    _tls_args(p)
    p.add_argument("--authfile", type=Path, help="credentials file (containers-auth.json)")
    p.add_argument("--creds", help="USER:PASSWORD for the registry")


def _platform_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--platform", help="os/arch[/variant] to pick from an index (default: host)")


def _output_args(p: argparse.ArgumentParser, quiet_help: str = "no progress output") -> None:
    p.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    p.add_argument("--format", choices=("text", "json"), default="text")
