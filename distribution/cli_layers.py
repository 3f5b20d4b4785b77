"""``pycontainers image`` subcommands: unpack, build.

``unpack REF DIR`` writes a plain rootfs (whiteouts applied) for tools that want one;
``unpack --layers REF`` fills the shared layer store instead and prints the layer
directories, bottom first. ``build`` makes an image from directories and tarballs.
Images are named as in skopeo: a bare reference means the local store at ``--root``,
``oci:DIR[:NAME]`` an OCI layout (NAME defaults to ``latest``). A short name given to
``build`` becomes ``localhost/NAME:TAG`` (Podman's convention), so a later run of that
name can never be mistaken for an image to pull from a registry.

This module only declares the options; the commands live in ``layer_commands`` and are
imported when one of them runs, so other commands start without loading them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from pycontainers.distribution import layer_commands

        command: Callable[[argparse.Namespace], int] = getattr(layer_commands, name)
        return command(args)

    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``image unpack`` and ``image build``."""
    unpack = sub.add_parser(
        "unpack",
        help="unpack an image into a plain rootfs directory (or into the layer store)",
        description="Unpack REF into DIR with whiteouts applied, or with --layers into "
        "the layer store (one overlayfs lower dir per layer, printed bottom first).",
    )
    unpack.add_argument("ref", metavar="REF", help="image in the store, or oci:DIR[:NAME]")
    unpack.add_argument("dir", metavar="DIR", nargs="?", help="new or empty directory")
    unpack.add_argument("--layers", action="store_true", help="fill the layer store instead")
    unpack.add_argument("--layers-dir", help="layer store directory (default: <root>/../layers)")
    unpack.add_argument("--platform", help="os/arch[/variant] to pick from an index")
    unpack.add_argument(
        "--max-size",
        type=int,
        default=None,
        help="refuse a layer larger than this many bytes uncompressed (default 64 GiB)",
    )
    unpack.add_argument(
        "--max-entries",
        type=int,
        default=None,
        help="refuse a layer with more entries than this (default 2,000,000)",
    )
    unpack.set_defaults(func=_lazy("cmd_unpack"))

    build = sub.add_parser(
        "build",
        help="build an image from directories and tarballs (no Dockerfile)",
        description="Each PATH (a directory, or a tar/tar.gz/tar.zst) becomes one layer, "
        "bottom first. Output is reproducible: entries sorted, owners 0:0, mtimes and "
        "the created date from SOURCE_DATE_EPOCH (default 0).",
    )
    build.add_argument("paths", metavar="PATH", nargs="+", type=Path)
    build.add_argument(
        "-t", "--tag", required=True, help="name in the store, or oci:DIR[:NAME] for an OCI layout"
    )
    build.add_argument("--entrypoint", help="JSON array, or a command line split like a shell")
    build.add_argument("--cmd", help="JSON array, or a command line split like a shell")
    build.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    build.add_argument("--workdir")
    build.add_argument("--user")
    build.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    build.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]")
    build.add_argument("--platform", help="os/arch[/variant] (default: this host)")
    build.add_argument("--os")
    build.add_argument("--arch")
    build.add_argument("--variant")
    build.add_argument("--compression", choices=["none", "gzip", "zstd"], default="gzip")
    build.add_argument(
        "--source-date-epoch", type=int, help="timestamp for every mtime and the created date"
    )
    build.set_defaults(func=_lazy("cmd_build"))
