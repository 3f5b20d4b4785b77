"""The ``image unpack`` and ``image build`` commands (options in ``cli_layers``)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from pycontainers.distribution.build import ImageSettings, build_image
from pycontainers.distribution.errors import DistributionError, ImageNotKnown
from pycontainers.distribution.layer_errors import BuildError
from pycontainers.distribution.layerstore import (
    LayerStore,
    default_layers_dir,
    resolve_image,
    unpack_flat,
)
from pycontainers.distribution.layerstream import Compression
from pycontainers.distribution.manifest import Platform, host_platform
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.unpack import UnpackLimits


def _store_and_names(ref: str, root: str) -> tuple[ContentStore, list[str]]:
    """The store ``ref`` lives in and the names it may have there, preferred first.

    A short name (no registry) names a local build first, ``localhost/NAME:TAG`` as
    Podman names what it builds, then a pulled ``docker.io/library/NAME:TAG``.
    """
    if ref.startswith("oci:"):
        path, _, name = ref[len("oci:") :].partition(":")
        if not path:
            raise ImageNotKnown(f"invalid image {ref!r}: oci: needs a directory")
        return ContentStore(path), [name or "latest"]
    parsed = ImageRef.parse(ref)
    names = [str(parsed), ref]
    if parsed.short:
        names.insert(0, str(ImageRef.parse(f"localhost/{ref}")))
    return ContentStore(root), names


def _find(store: ContentStore, names: list[str], ref: str) -> str:
    known = {image.name for image in store.images()}
    for name in names:
        if name in known:
            return name
    raise ImageNotKnown(f"image {ref!r} is not in {store.root}")


def _command(text: str | None, what: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise BuildError(f"--{what} {text!r}: invalid JSON ({exc})") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BuildError(f"--{what} {text!r}: want a JSON array of strings")
        return tuple(value)
    return tuple(shlex.split(text))


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BuildError(f"--{what} {item!r}: want KEY=VALUE")
        out[key] = value
    return out


def cmd_unpack(args: argparse.Namespace) -> int:
    try:
        if args.layers == (args.dir is not None):
            print("pycontainers: give either DIR or --layers", file=sys.stderr)
            return 2
        store, names = _store_and_names(args.ref, args.root)
        platform = Platform.parse(args.platform) if args.platform else None
        image = resolve_image(store, _find(store, names, args.ref), platform)
        limits = UnpackLimits(
            max_bytes=UnpackLimits.max_bytes if args.max_size is None else args.max_size,
            max_entries=UnpackLimits.max_entries if args.max_entries is None else args.max_entries,
        )
        if args.layers:
            layers_dir = args.layers_dir or default_layers_dir(args.root)
            for path in LayerStore(layers_dir, limits=limits).ensure_image(store, image):
                print(path)
            return 0
        stats = unpack_flat(store, image, Path(args.dir), limits=limits)
    except DistributionError as exc:
        print(f"pycontainers: {exc.diagnostics()}", file=sys.stderr)
        return 1
    print(
        f"unpacked {args.ref} into {args.dir}: {stats.entries} entries, {stats.files} files, "
        f"{stats.bytes} bytes, {stats.whiteouts} whiteouts"
    )
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    try:
        base = Platform.parse(args.platform) if args.platform else host_platform()
        settings = ImageSettings(
            entrypoint=_command(args.entrypoint, "entrypoint"),
            cmd=_command(args.cmd, "cmd"),
            env=tuple(args.env),
            workdir=args.workdir,
            user=args.user,
            labels=_pairs(args.label, "label"),
            exposed_ports=tuple(args.expose),
            os=args.os or base.os,
            architecture=args.arch or base.architecture,
            variant=args.variant or (None if args.arch else base.variant),
        )
        store, names = _store_and_names(args.tag, args.root)
        built = build_image(
            args.paths,
            settings,
            store,
            names[0],
            compression=Compression(args.compression),
            epoch=args.source_date_epoch,
        )
    except DistributionError as exc:
        print(f"pycontainers: {exc.diagnostics()}", file=sys.stderr)
        return 1
    print(built.manifest.digest)
    return 0
