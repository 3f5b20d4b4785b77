"""The ``pycontainers image`` registry and store commands (options in ``cli_registry``).

Each command turns its options into the distribution types, runs one coroutine with
``asyncio.run`` (the async edge of the package), prints data on stdout (text, or JSON
with ``--format json``) and progress or errors on stderr. A ``DistributionError``
becomes exactly one line, ``error: MESSAGE`` (with ``; hint: NEXT STEP`` where there is
one), and exit status 1; bad command-line input exits 2 as argparse does.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pycontainers.distribution import authfile
from pycontainers.distribution.authfile import Credentials
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.docker_transport import ConnectOptions, open_client
from pycontainers.distribution.endpoints import Endpoints
from pycontainers.distribution.errors import DistributionError, ImageNotKnown
from pycontainers.distribution.imagecopy import CopyOptions, TrustCheck, copy_image
from pycontainers.distribution.manifest import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    parse_config,
    parse_manifest,
)
from pycontainers.distribution.progress import human_size, progress_for
from pycontainers.distribution.pull import pull
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.registries_conf import RegistriesConf
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.transports import (
    DockerName,
    ImageSource,
    StoreName,
    parse_transport_name,
)

if TYPE_CHECKING:
    from pycontainers.distribution.layerstore import LayerStore

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def run(command: str, args: argparse.Namespace) -> int:
    """Run one command (``pull``, ``ls``, ...) and return its exit status."""
    return _sync(COMMANDS[command])(args)


def _connect(args: argparse.Namespace) -> ConnectOptions:
    creds = None
    if getattr(args, "creds", None):
        user, _, password = args.creds.partition(":")
        creds = Credentials(user, password)
    tls = getattr(args, "tls_verify", None)
    return ConnectOptions(
        tls_verify=None if tls is None else tls == "true",
        ca_bundle=getattr(args, "ca_bundle", None),
        credentials=creds,
        authfile=getattr(args, "authfile", None),
        registries=RegistriesConf.load(),
    )


def _platform(args: argparse.Namespace) -> Platform | None:
    return Platform.parse(args.platform) if getattr(args, "platform", None) else None


def _trust_check(args: argparse.Namespace) -> TrustCheck:
    """The policy check for pulls and copies (``--policy``, else the default policy file).

    Fails closed: if the policy code cannot be loaded, nothing is pulled (a policy on
    this host may demand signatures; accepting everything instead would be silent).
    """
    try:
        from pycontainers.distribution.policy import load_policy
        from pycontainers.distribution.trust import PolicyTrustCheck
    except ImportError as exc:
        raise DistributionError(
            f"the image trust policy cannot be checked: signature verification is not "
            f"available ({exc})"
        ) from exc
    check: TrustCheck = PolicyTrustCheck(load_policy(args.policy))
    return check


def _sync(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(handler(args))
        except DistributionError as exc:
            if args.debug:
                traceback.print_exc()
            # One line, as scripts and journald read it; the hint (the next step) after ";".
            _error(f"{exc}; hint: {exc.hint}" if exc.hint else str(exc))
            return 1
        except KeyboardInterrupt:
            _error("interrupted")
            return 130
        except BrokenPipeError:
            # The reader went away (``| head``): stop quietly, as coreutils do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 141

    return run


def _error(text: str) -> None:
    print(f"error: {text}", file=sys.stderr)


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=False))


# ---- commands --------------------------------------------------------------------------


async def _pull(args: argparse.Namespace) -> int:
    progress = progress_for(sys.stderr, quiet=args.quiet or args.format == "json")
    options = CopyOptions(platform=_platform(args), trust=_trust_check(args))
    layers = None
    if getattr(args, "layers", False):
        from pycontainers.distribution.layerstore import LayerStore, default_layers_dir

        layers = LayerStore(default_layers_dir(args.root))
    root = Path(args.root)
    result = await pull(args.image, root, _connect(args), options, progress, unpack_into=layers)
    copy = result.copy
    if layers is not None:
        await asyncio.to_thread(_unpack_rest, root, layers, result.name, _platform(args))
    if args.format == "json":
        _print_json(
            {
                "name": result.name,
                "digest": str(copy.manifest.digest),
                "sourceDigest": str(copy.source_digest),
                "fetched": [str(d) for d in copy.fetched],
                "present": [str(d) for d in copy.present],
                "bytesFetched": copy.bytes_fetched,
            }
        )
    else:
        if not args.quiet:
            print(
                f"pulled {result.name}: {len(copy.fetched)} blobs fetched "
                f"({human_size(copy.bytes_fetched)}), {len(copy.present)} already present",
                file=sys.stderr,
            )
        print(copy.manifest.digest)
    return 0


def _unpack_rest(root: Path, layers: LayerStore, name: str, platform: Platform | None) -> None:
    """Layers whose blobs were already in the store were not streamed: unpack them now."""
    from pycontainers.distribution.layerstore import resolve_image

    store = ContentStore(root)
    layers.ensure_image(store, resolve_image(store, name, platform))


def _image_size(store: ContentStore, desc: Descriptor) -> int | None:
    """Bytes of every blob the image uses that is present (all platforms of an index)."""
    try:
        present, _ = store.reachable(desc)
    except (DistributionError, OSError):
        return None
    return sum(present.values())


async def _ls(args: argparse.Namespace) -> int:
    store = ContentStore(args.root)
    images = store.images() if store.exists() else []
    rows = []
    for image in images:
        size = _image_size(store, image.descriptor)
        rows.append((image, size))
    if args.format == "json":
        _print_json(
            [
                {
                    "name": image.name,
                    "digest": str(image.descriptor.digest),
                    "mediaType": image.descriptor.media_type,
                    "size": size,
                }
                for image, size in rows
            ]
        )
        return 0
    if args.quiet:
        for image, _ in rows:
            print(image.name)
        return 0
    width = max([len("NAME"), *(len(i.name) for i, _ in rows)])
    print(f"{'NAME':<{width}}  {'DIGEST':<19}  SIZE")
    for image, size in rows:
        shown = human_size(size) if size is not None else "?"
        print(f"{image.name:<{width}}  sha256:{image.descriptor.digest.short()}  {shown}")
    return 0


async def _open_inspect_source(args: argparse.Namespace, endpoints: Endpoints) -> ImageSource:
    name = parse_transport_name(args.image)
    if isinstance(name, StoreName) and endpoints.store_name(name.text) is None:
        # Not pulled: inspect it where it lives, as skopeo inspect does.
        candidates = endpoints.connect.registries.candidates(name.text)
        name = DockerName(candidates[0])
    return await endpoints.source(name)


async def _inspect(args: argparse.Namespace) -> int:
    endpoints = Endpoints(Path(args.root), _connect(args))
    src = await _open_inspect_source(args, endpoints)
    try:
        top = await src.get_manifest()
        if args.raw and not args.config:
            sys.stdout.buffer.write(top.raw)
            sys.stdout.flush()
            return 0
        label = str(src.name)
        parsed = parse_manifest(top.raw, top.media_type, what=label)
        manifest = parsed
        if isinstance(parsed, ImageIndex):
            chosen = parsed.select(_platform(args), what=label)
            inst = await src.get_manifest(chosen.digest)
            manifest = parse_manifest(inst.raw, inst.media_type or chosen.media_type, what=label)
        if not isinstance(manifest, ImageManifest):
            raise DistributionError(f"{label}: nested indexes are not supported")
        config_raw = await _read_blob(src, manifest.config)
        if args.config:
            sys.stdout.buffer.write(config_raw)
            sys.stdout.flush()
            return 0
        config = parse_config(config_raw, what=f"{label}: config")
        tags: list[str] = []
        if isinstance(src.name, DockerName) and src.client is not None:
            ref = src.name.ref
            try:
                tags = await src.client.list_tags(ref.repository)
            except DistributionError:
                tags = []
        doc = config.document
        _print_json(
            {
                "Name": _inspect_name(src),
                "Digest": str(top.digest),
                "RepoTags": tags,
                "Created": config.created,
                "DockerVersion": doc.get("docker_version", ""),
                "Labels": (config.config.get("Labels") or None),
                "Architecture": config.platform.architecture,
                "Os": config.platform.os,
                "Variant": config.platform.variant or "",
                "Layers": [str(d.digest) for d in manifest.layers],
                "LayersData": [
                    {
                        "MIMEType": d.media_type,
                        "Digest": str(d.digest),
                        "Size": d.size,
                        "Annotations": dict(d.annotations) or None,
                    }
                    for d in manifest.layers
                ],
                "Env": config.config.get("Env"),
            }
        )
        return 0
    finally:
        await src.aclose()


def _inspect_name(src: ImageSource) -> str:
    if isinstance(src.name, DockerName):
        return src.name.ref.name
    return str(src.name)


async def _read_blob(src: ImageSource, desc: Descriptor) -> bytes:
    local = src.local_blob(desc)
    if local is not None:
        data = local.read_bytes()
        desc.digest.verify_bytes(data, what=f"{src.name}: blob {desc.digest}")
        return data
    if isinstance(src.name, DockerName) and src.client is not None:
        return await src.client.get_blob_bytes(src.name.ref.repository, desc)
    raise ImageNotKnown(f"{src.name}: blob {desc.digest} missing")


async def _rm(args: argparse.Namespace) -> int:
    endpoints = Endpoints(Path(args.root), _connect(args))
    store = endpoints.store
    status = 0
    for text in args.images:
        try:
            ImageRef.parse(text)
            name = endpoints.store_name(text)
            if name is None:
                raise ImageNotKnown(f"image {text!r} is not in the store at {store.root}")
            store.untag(name)
            print(name)
        except DistributionError as exc:
            _error(str(exc))
            status = 1
    if store.exists():
        await asyncio.to_thread(store.prune)
        await asyncio.to_thread(_prune_layers, Path(args.root))
    return status


def _prune_layers(root: Path) -> list[Digest]:
    """Layer dirs no stored image, engine bundle or mount uses go with their images."""
    from pycontainers.distribution.layerstore import (
        LayerStore,
        default_containers_dir,
        default_layers_dir,
        prune_layers,
    )

    layers = LayerStore(default_layers_dir(root))
    return prune_layers(ContentStore(root), layers, default_containers_dir(root))


async def _copy(args: argparse.Namespace) -> int:
    connect = _connect(args)
    connect.chunk_size = args.chunk_size
    endpoints = Endpoints(Path(args.root), connect)
    src_name = parse_transport_name(args.source)
    dst_name = parse_transport_name(args.destination)
    progress = progress_for(sys.stderr, quiet=args.quiet or args.format == "json")
    options = CopyOptions(
        platform=_platform(args), all_platforms=args.all, trust=_trust_check(args)
    )
    src = await endpoints.source(src_name)
    try:
        dst = await endpoints.destination(dst_name)
        try:
            result = await copy_image(src, dst, options, progress)
        finally:
            await dst.aclose()
    finally:
        await src.aclose()
    if args.format == "json":
        _print_json(
            {
                "source": str(src_name),
                "destination": str(dst_name),
                "digest": str(result.manifest.digest),
                "fetched": [str(d) for d in result.fetched],
                "present": [str(d) for d in result.present],
            }
        )
    else:
        print(result.manifest.digest)
    return 0


async def _login(args: argparse.Namespace) -> int:
    username = args.username
    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if username is None:
        if not sys.stdin.isatty():
            raise DistributionError(f"login {args.registry}: --username is required")
        username = input("Username: ")
    if password is None:
        if not sys.stdin.isatty():
            raise DistributionError(f"login {args.registry}: --password or --password-stdin")
        password = getpass.getpass("Password: ")
    creds = Credentials(username, password)
    registry = args.registry.removeprefix("https://").removeprefix("http://").rstrip("/")
    ref = ImageRef.parse(f"{registry}/login-check")
    connect = _connect(args)
    connect.credentials = creds
    async with open_client(ref, connect) as client:
        await client.check_credentials()
    path = authfile.login(ref.domain, creds, args.authfile)
    print(f"login succeeded: credentials for {ref.domain} saved in {path}")
    return 0


async def _logout(args: argparse.Namespace) -> int:
    if not args.all and not args.registry:
        raise DistributionError("logout: name a registry or use --all")
    registry = None if args.all else ImageRef.parse(f"{args.registry}/x").domain
    if not authfile.logout(registry, args.authfile):
        raise DistributionError(f"logout: not logged in to {args.registry or 'any registry'}")
    print(f"removed credentials for {registry or 'every registry'}")
    return 0


async def _prune(args: argparse.Namespace) -> int:
    store = ContentStore(args.root)
    if not store.exists():
        report_removed: list[str] = []
        freed = 0
    else:
        report = await asyncio.to_thread(store.prune)
        report_removed = [str(d) for d in report.removed]
        freed = report.freed_bytes
    layers = [str(d) for d in await asyncio.to_thread(_prune_layers, Path(args.root))]
    if args.format == "json":
        _print_json({"removed": report_removed, "freedBytes": freed, "removedLayers": layers})
    elif not args.quiet:
        print(
            f"removed {len(report_removed)} blobs, freed {human_size(freed)}; "
            f"removed {len(layers)} unpacked layers"
        )
    return 0


async def _fsck(args: argparse.Namespace) -> int:
    store = ContentStore(args.root)
    store.check_layout()
    report = await asyncio.to_thread(store.fsck, repair=args.repair)
    if args.format == "json":
        _print_json(
            {
                "checked": report.checked,
                "corrupt": [{"digest": str(d), "problem": why} for d, why in report.corrupt],
                "removed": [str(d) for d in report.removed],
                "missing": [{"image": n, "digest": str(d)} for n, d in report.missing],
                "stray": report.stray,
            }
        )
    else:
        for digest, why in report.corrupt:
            removed = " (removed)" if digest in report.removed else ""
            print(f"corrupt blob {digest}: {why}{removed}")
        for name, digest in report.missing:
            print(f"image {name}: blob {digest} is missing; pull it again")
        if not args.quiet:
            print(
                f"checked {report.checked} blobs: {len(report.corrupt)} corrupt, "
                f"{len(report.missing)} missing"
            )
    return 0 if report.ok else 1


COMMANDS: dict[str, Handler] = {
    "pull": _pull,
    "ls": _ls,
    "inspect": _inspect,
    "rm": _rm,
    "copy": _copy,
    "login": _login,
    "logout": _logout,
    "prune": _prune,
    "fsck": _fsck,
}
