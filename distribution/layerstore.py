"""Unpacked layers, one directory per diff_id, shared by every image; and flattened unpack.

Layout (``layers_dir`` defaults to ``<storage root>/../layers``, so
``/var/lib/pycontainers/storage`` keeps its layers in ``/var/lib/pycontainers/layers``)::

    LAYERS/<diff_id hex>/        the layer in overlayfs format (a lowerdir as it stands)
    LAYERS/.tmp-<hex>-<random>/  an unpack in progress (flock held on the directory)

A layer directory appears only by ``rename(2)`` of a finished temp directory whose
uncompressed stream matched the config's diff_id, after ``syncfs``; so a directory named
by a diff_id is always complete, and a crash leaves only a ``.tmp-`` directory that
``remove_stale()`` deletes once nobody holds its lock. Two processes unpacking the same
layer race harmlessly: the first rename wins and the loser discards its copy.

``prune_layers`` removes layer dirs nothing uses: no image in the content store, no
engine bundle (``<root>/../containers/NAME/ID/config.json`` lists its lower dirs in the
rootfs overlay annotation) and no overlay mounted in any mount namespace. It holds the
store's lock exclusively; ``ensure`` holds it shared even when the layer is already
there, so it never hands out a directory being removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import DigestError, ManifestError
from pycontainers.distribution.layer_errors import DiffIDMismatch, LayerError
from pycontainers.distribution.layerstream import LayerStream, Readable, compression_of
from pycontainers.distribution.manifest import (
    IMAGE_MANIFEST_TYPES,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    Platform,
    parse_config,
)
from pycontainers.distribution.store import ContentStore, FileLock
from pycontainers.distribution.unpack import (
    DEFAULT_LIMITS,
    ApplyOptions,
    ApplyStats,
    Mode,
    UnpackLimits,
    apply_layer,
)

_libc = ctypes.CDLL(None, use_errno=True)


def default_layers_dir(storage_root: Path | str) -> Path:
    """``<storage root>/../layers``: beside the content store, as ARCHITECTURE.md lays out."""
    return Path(storage_root).absolute().parent / "layers"


@dataclass(frozen=True)
class Image:
    """A resolved image: its manifest and config, with one diff_id per layer."""

    name: str
    manifest: ImageManifest
    config: ImageConfig


def resolve_image(store: ContentStore, name: str, platform: Platform | None = None) -> Image:
    """Find ``name`` in the store (choosing a platform from an index) and read its config."""
    manifest = store.read_manifest(store.resolve(name), what=f"image {name}")
    if isinstance(manifest, ImageIndex):
        chosen = manifest.select(platform, what=f"image {name}")
        manifest = store.read_manifest(chosen, what=f"image {name}")
        if not isinstance(manifest, ImageManifest):
            raise ManifestError(f"image {name}: index entry {chosen.digest} is not a manifest")
    raw = store.read_blob(manifest.config.digest)
    manifest.config.digest.verify_bytes(raw, what=f"image {name}: config")
    config = parse_config(raw, what=f"image {name}: config")
    if len(config.diff_ids) != len(manifest.layers):
        raise ManifestError(
            f"image {name}: config lists {len(config.diff_ids)} diff_ids "
            f"for {len(manifest.layers)} layers"
        )
    return Image(name, manifest, config)


def _syncfs(fd: int) -> None:
    if _libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[tuple[Path, int]]:
    """A locked temp directory beside ``final``, renamed to ``final`` if the body succeeds.

    ``final`` may exist as an empty directory (rename(2) replaces it); anything else
    there is left alone and ``FileExistsError`` is raised after the temp dir is removed.
    """
    tmp = final.parent / f".tmp-{final.name}-{secrets.token_hex(4)}"
    os.mkdir(tmp, 0o700)
    fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # A layer without a "./" entry leaves the root as a plain 0755 directory.
        os.fchmod(fd, 0o755)
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp, fd
        _syncfs(fd)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise FileExistsError(exc.errno, exc.strerror, str(final)) from exc
            raise
    finally:
        os.close(fd)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def unpack_stream(
    root_fd: int,
    src: Readable,
    media_type: str,
    diff_id: Digest,
    options: ApplyOptions,
    *,
    limits: UnpackLimits = DEFAULT_LIMITS,
    what: str = "layer",
) -> ApplyStats:
    """Decompress, hash and apply one layer blob in a single pass; check its diff_id."""
    with LayerStream(src, compression_of(media_type), what=what, max_bytes=limits.max_bytes) as s:
        stats = apply_layer(root_fd, s.chunks(), options, limits=limits, what=what)
        got = s.diff_id()
    if got != diff_id:
        raise DiffIDMismatch(
            f"{what}: diff_id mismatch: the config says {diff_id}, the uncompressed "
            f"layer hashes to {got}"
        )
    return stats


class LayerStore:
    """The directory of unpacked layers (overlayfs lower dirs), keyed by diff_id."""

    def __init__(
        self,
        layers_dir: Path | str,
        *,
        limits: UnpackLimits = DEFAULT_LIMITS,
        opaque_xattr: str = "trusted.overlay.opaque",
    ) -> None:
        self.dir = Path(layers_dir)
        self.limits = limits
        self.options = ApplyOptions(mode=Mode.OVERLAY, opaque_xattr=opaque_xattr)

    def path(self, diff_id: Digest) -> Path:
        return self.dir / diff_id.hex

    def has(self, diff_id: Digest) -> bool:
        return self.path(diff_id).is_dir()

    def ensure(self, src: Readable, media_type: str, diff_id: Digest, *, what: str = "") -> Path:
        """The layer's directory, unpacking ``src`` first if it is not there yet.

        Even the fast path (the layer exists) takes the store's shared lock, so it never
        hands out a directory that ``prune`` (exclusive) is renaming away.
        """
        final = self.path(diff_id)
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._lock(exclusive=False):
            if final.is_dir():
                return final
            try:
                with staged_dir(final) as (_, fd):
                    unpack_stream(
                        fd,
                        src,
                        media_type,
                        diff_id,
                        self.options,
                        limits=self.limits,
                        what=what or f"layer {diff_id}",
                    )
            except FileExistsError:
                if not final.is_dir():
                    raise
        return final

    def ensure_image(self, store: ContentStore, image: Image) -> list[Path]:
        """Every layer of ``image`` unpacked; the list runs from the bottom layer up.

        The shared lock is held across the whole image, so ``prune`` cannot remove a
        lower layer while an upper one is still being unpacked.
        """
        out = []
        with self._lock(exclusive=False):
            for desc, diff_id in zip(image.manifest.layers, image.config.diff_ids, strict=True):
                if not self.has(diff_id):
                    with store.open_blob(desc.digest) as blob:
                        self.ensure(
                            blob,
                            desc.media_type,
                            diff_id,
                            what=f"image {image.name}: layer {desc.digest}",
                        )
                out.append(self.path(diff_id))
        return out

    def remove_stale(self) -> int:
        """Delete temp dirs of unpacks that died (their lock is free); returns how many."""
        removed = 0
        if not self.dir.is_dir():
            return 0
        for entry in self.dir.iterdir():
            if not entry.name.startswith(".tmp-"):
                continue
            try:
                fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                shutil.rmtree(entry)
                removed += 1
            finally:
                os.close(fd)
        return removed

    def layers(self) -> list[Digest]:
        """The diff_ids of the complete layer directories."""
        if not self.dir.is_dir():
            return []
        out = []
        for entry in self.dir.iterdir():
            if len(entry.name) == 64 and not entry.name.startswith("."):
                with contextlib.suppress(DigestError):
                    out.append(Digest.parse(f"sha256:{entry.name}"))
        return sorted(out)

    def prune(self, keep: Iterable[Digest], *, in_use: Iterable[Path] = ()) -> list[Digest]:
        """Remove every layer not in ``keep`` or ``in_use`` that no mount uses; returns them.

        "Mounted" means a lowerdir of an overlay in any mount namespace on the host
        (containers mount their rootfs in their own namespace, invisible in ours).
        A layer is first renamed to a ``.tmp-`` name, so it stops being a complete layer
        at once, then deleted. The exclusive store lock keeps ``ensure`` from handing out
        a layer while it goes.
        """
        wanted = {d.hex for d in keep} | {Path(p).name for p in in_use}
        removed = []
        with self._lock(exclusive=True):
            mounted = _mountinfo()
            for diff_id in self.layers():
                path = self.path(diff_id)
                if diff_id.hex in wanted or f"{path}:" in mounted or f"{path}," in mounted:
                    continue
                doomed = self.dir / f".tmp-del-{diff_id.hex}-{secrets.token_hex(4)}"
                try:
                    os.rename(path, doomed)
                except FileNotFoundError:
                    continue
                shutil.rmtree(doomed, ignore_errors=True)
                removed.append(diff_id)
        return removed

    def _lock(self, *, exclusive: bool) -> FileLock:
        self.dir.mkdir(parents=True, exist_ok=True)
        return FileLock(self.dir / ".lock", shared=not exclusive)


def _mountinfo() -> str:
    """Mount options of every mount in every mount namespace, each line ending in ``,``.

    overlayfs shows ``lowerdir=A:B:C,upperdir=...`` (or ``lowerdir+=A``, one per layer,
    when mounted through fsconfig) among its options; a layer path followed by ``:`` or
    ``,`` there is in use. Each namespace is read once, through the first process in it.
    """
    seen: set[str] = set()
    texts = []
    for proc in _proc_entries():
        try:
            ns = os.readlink(f"/proc/{proc}/ns/mnt")
            if ns in seen:
                continue
            text = Path(f"/proc/{proc}/mountinfo").read_text()
        except OSError:
            continue  # gone, or not ours to read
        seen.add(ns)
        texts.append(text)
    return "\n".join(line + "," for text in texts for line in text.splitlines())


def _proc_entries() -> list[str]:
    names = [n for n in os.listdir("/proc") if n.isdigit()]
    return ["self", *names]


# The engine's bundle annotation naming the rootfs overlay (reconciler/bundle.py); the
# layer store reads it so a container that is not running keeps its layers too.
OVERLAY_ANNOTATION = "org.pycontainers.rootfs.overlay"


def default_containers_dir(storage_root: Path | str) -> Path:
    """``<storage root>/../containers``: where the engine keeps bundles (reconciler/layout)."""
    return Path(storage_root).absolute().parent / "containers"


def bundle_layer_dirs(containers_dir: Path) -> set[Path]:
    """Every lower layer directory named by a bundle (``containers/NAME/ID/config.json``).

    A bundle that cannot be read keeps nothing: it is not a bundle the engine can run.
    """
    out: set[Path] = set()
    if not containers_dir.is_dir():
        return out
    for config in containers_dir.glob("*/*/config.json"):
        try:
            doc = json.loads(config.read_bytes())
            data = doc["annotations"][OVERLAY_ANNOTATION]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not isinstance(data, str):
            continue
        for option in data.split(","):
            key, _, value = option.partition("=")
            if key in ("lowerdir", "lowerdir+"):
                out.update(Path(p) for p in value.split(":") if p)
    return out


def prune_layers(
    store: ContentStore, layers: LayerStore, containers_dir: Path | None = None
) -> list[Digest]:
    """Remove layer dirs no stored image, no engine bundle and no mount uses.

    The content store's gc lock (exclusive) waits out pulls in progress, whose layers
    may already be unpacked but whose image is not named yet.
    """
    if not layers.dir.is_dir():
        return []
    bundles = bundle_layer_dirs(containers_dir) if containers_dir is not None else set()
    if not store.exists():
        return layers.prune((), in_use=bundles)
    with store.gc_lock(exclusive=True):
        return layers.prune(referenced_diff_ids(store), in_use=bundles)


def referenced_diff_ids(store: ContentStore) -> set[Digest]:
    """The diff_ids of every image the store names (each platform it holds of an index).

    An image that cannot be read raises: pruning must not guess what is unused.
    """
    out: set[Digest] = set()
    for stored in store.images():
        manifest = store.read_manifest(stored.descriptor, what=f"image {stored.name}")
        manifests = [manifest]
        if isinstance(manifest, ImageIndex):
            manifests = [
                store.read_manifest(d, what=f"image {stored.name}")
                for d in manifest.manifests
                if d.media_type in IMAGE_MANIFEST_TYPES and store.has_blob(d)
            ]
        for m in manifests:
            if isinstance(m, ImageManifest) and store.has_blob(m.config):
                raw = store.read_blob(m.config.digest)
                m.config.digest.verify_bytes(raw, what=f"image {stored.name}: config")
                out.update(parse_config(raw, what=f"image {stored.name}: config").diff_ids)
    return out


def lowerdir_option(layer_dirs: list[Path]) -> str:
    """overlayfs ``lowerdir=`` wants the top layer first; ``layer_dirs`` is bottom-up."""
    return ":".join(str(p) for p in reversed(layer_dirs))


def unpack_flat(
    store: ContentStore,
    image: Image,
    dest: Path,
    *,
    limits: UnpackLimits = DEFAULT_LIMITS,
    options: ApplyOptions | None = None,
) -> ApplyStats:
    """All layers of ``image`` applied in order into ``dest`` (a plain rootfs).

    ``dest`` must not exist or be an empty directory; it appears complete or not at all.
    """
    opts = options or ApplyOptions(mode=Mode.FLATTEN)
    if opts.mode is not Mode.FLATTEN:
        raise ValueError("unpack_flat needs Mode.FLATTEN")
    dest = Path(dest).absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise LayerError(f"unpack {image.name}: {dest} exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    total = ApplyStats()
    try:
        with staged_dir(dest) as (_, fd):
            for desc, diff_id in zip(image.manifest.layers, image.config.diff_ids, strict=True):
                with store.open_blob(desc.digest) as blob:
                    stats = unpack_stream(
                        fd,
                        blob,
                        desc.media_type,
                        diff_id,
                        opts,
                        limits=limits,
                        what=f"image {image.name}: layer {desc.digest}",
                    )
                total += stats
    except FileExistsError as exc:
        raise LayerError(f"unpack {image.name}: {dest} appeared while unpacking") from exc
    return total
