"""Building an OCI image from directories and tarballs, without a Dockerfile (ko/apko/jib).

Each input is one layer, bottom first: a directory is archived, a tarball (plain, gzip
or zstd) is taken as the layer it already is. The result is reproducible: the same
inputs give the same digests, because directory layers are written with entries sorted
by name, owners 0:0 without names, every mtime set to ``SOURCE_DATE_EPOCH`` (default 0),
no xattrs, PAX format; gzip runs with a zero header mtime and no file name; and the
config and manifest are canonical JSON (sorted keys, no spaces) whose ``created`` is
that same epoch. Compressed digests are stable for one compressor build: another zlib
(zlib-ng, say) or zstd release may emit other bytes for the same tar, while the
diff_ids (hashes of the tars) stay the same everywhere.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.layer_errors import BuildError
from pycontainers.distribution.layerstream import Compression, LayerStream
from pycontainers.distribution.manifest import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Descriptor,
)
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.tarstream import TarReader
from pycontainers.distribution.unpack import safe_relpath

_LAYER_TYPE = {
    Compression.NONE: OCI_LAYER,
    Compression.GZIP: OCI_LAYER_GZIP,
    Compression.ZSTD: OCI_LAYER_ZSTD,
}
_MAGIC = {b"\x1f\x8b": Compression.GZIP, b"\x28\xb5\x2f\xfd": Compression.ZSTD}


@dataclass(frozen=True)
class ImageSettings:
    """The image config fields ``image build`` sets (OCI image-spec config.md names)."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None


@dataclass(frozen=True)
class BuiltLayer:
    descriptor: Descriptor
    diff_id: Digest
    source: str


@dataclass(frozen=True)
class BuiltImage:
    manifest: Descriptor
    config: Descriptor
    layers: tuple[BuiltLayer, ...]


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org) or 0; a bad value is an error."""
    text = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH", "")
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise BuildError(f"SOURCE_DATE_EPOCH={text!r}: not an integer") from None
    if value < 0:
        raise BuildError(f"SOURCE_DATE_EPOCH={text!r}: negative")
    return value


def _normal_port(port: str) -> str:
    number, _, proto = port.partition("/")
    proto = proto or "tcp"
    if not number.isdigit() or not 0 < int(number) < 65536 or proto not in ("tcp", "udp", "sctp"):
        raise BuildError(f"exposed port {port!r}: want PORT[/tcp|udp|sctp]")
    return f"{int(number)}/{proto}"


def config_document(
    settings: ImageSettings, diff_ids: Sequence[Digest], epoch: int
) -> dict[str, Any]:
    """The image config (pure): the same settings, diff_ids and epoch give the same dict."""
    created = datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config: dict[str, Any] = {}
    if settings.user:
        config["User"] = settings.user
    if settings.exposed_ports:
        config["ExposedPorts"] = {_normal_port(p): {} for p in settings.exposed_ports}
    if settings.env:
        for item in settings.env:
            if "=" not in item or item.startswith("="):
                raise BuildError(f"env {item!r}: want NAME=VALUE")
        config["Env"] = list(settings.env)
    if settings.entrypoint is not None:
        config["Entrypoint"] = list(settings.entrypoint)
    if settings.cmd is not None:
        config["Cmd"] = list(settings.cmd)
    if settings.workdir:
        if not settings.workdir.startswith("/"):
            raise BuildError(f"workdir {settings.workdir!r}: must be an absolute path")
        config["WorkingDir"] = settings.workdir
    if settings.labels:
        config["Labels"] = dict(settings.labels)
    doc: dict[str, Any] = {
        "created": created,
        "architecture": settings.architecture,
        "os": settings.os,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [str(d) for d in diff_ids]},
        # No source paths in history: a build from a temp dir must still reproduce.
        "history": [
            {"created": created, "created_by": f"pycontainers image build: layer {i + 1}"}
            for i in range(len(diff_ids))
        ],
    }
    if settings.variant:
        doc["variant"] = settings.variant
    return doc


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- layers ------------------------------------------------------------------------------


class _Tee:
    """A write-only file object that hashes and counts what passes to ``out``."""

    def __init__(self, out: IO[bytes] | None) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()


def _walk_sorted(top: Path) -> Iterator[tuple[Path, str]]:
    """(path, archive name) for every entry below ``top``, sorted by name bytes."""

    def walk(d: Path, prefix: str) -> Iterator[tuple[Path, str]]:
        with os.scandir(d) as it:
            names = sorted((e.name for e in it), key=os.fsencode)
        for name in names:
            p = d / name
            arc = f"{prefix}{name}"
            yield p, arc
            if p.is_dir() and not p.is_symlink():
                yield from walk(p, arc + "/")

    yield from walk(top, "")


def _tar_directory(top: Path, out: IO[bytes], epoch: int) -> None:
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path, arc in _walk_sorted(top):
            st = path.lstat()
            info = tarfile.TarInfo(arc)
            info.mtime = epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    info.type = tarfile.LNKTYPE
                    info.linkname = seen[key]
                    tar.addfile(info)
                    continue
                seen[key] = arc
                info.size = st.st_size
                with open(path, "rb") as f:
                    tar.addfile(info, f)
                continue
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            elif stat.S_ISFIFO(st.st_mode):
                info.type = tarfile.FIFOTYPE
            else:
                continue  # sockets have no place in an image
            tar.addfile(info)


def _copy_tarball(src: Path, out: IO[bytes]) -> None:
    """The uncompressed bytes of a tarball, checked to be a tar whose names are safe."""
    with open(src, "rb") as f:
        head = f.read(4)
        compression = _MAGIC.get(head[:2]) or _MAGIC.get(head) or Compression.NONE
        f.seek(0)
        with LayerStream(f, compression, what=f"tarball {src}") as stream:
            reader = TarReader(_copying(stream.chunks(), out), what=f"tarball {src}")
            for entry in reader:
                safe_relpath(entry.name, f"tarball {src}")
            reader.finish()


def _copying(chunks: Iterator[bytes], out: IO[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        out.write(chunk)
        yield chunk


class _Compressor:
    """Deterministic compression of a stream into ``out`` (gzip in-process, zstd piped)."""

    def __init__(self, compression: Compression, out: _Tee, raw: IO[bytes]) -> None:
        self.compression = compression
        self._proc: subprocess.Popen[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        self._out = out
        if compression is Compression.GZIP:
            self._gz = gzip.GzipFile(
                filename="", mode="wb", compresslevel=6, fileobj=cast(IO[bytes], out), mtime=0
            )
        elif compression is Compression.ZSTD:
            exe = shutil.which("zstd")
            if exe is None:
                raise BuildError("zstd compression needs the `zstd` program (Debian: zstd)")
            # -T1: multi-threaded zstd may cut frames differently; one thread is stable.
            self._proc = subprocess.Popen(
                [exe, "-q", "-c", "-3", "-T1", "--no-check"],
                stdin=subprocess.PIPE,
                stdout=raw.fileno(),
            )

    def write(self, data: bytes) -> int:
        if self._gz is not None:
            return self._gz.write(data)
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.write(data)
            return len(data)
        return self._out.write(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            if self._proc.wait() != 0:
                raise BuildError("zstd failed while compressing a layer")


def build_layer(
    source: Path, blob_path: Path, compression: Compression, epoch: int
) -> tuple[Digest, Digest, int]:
    """Write ``source`` as a (compressed) layer file; returns (diff_id, digest, size)."""
    with open(blob_path, "wb") as raw_out:
        blob = _Tee(raw_out)
        comp = _Compressor(compression, blob, raw_out)
        tar_stream = _Tee(cast(IO[bytes], comp))
        try:
            if source.is_dir():
                _tar_directory(source, cast(IO[bytes], tar_stream), epoch)
            elif source.is_file():
                _copy_tarball(source, cast(IO[bytes], tar_stream))
            else:
                raise BuildError(f"layer source {source}: not a directory or a tarball")
        finally:
            comp.close()
    diff_id = Digest("sha256", tar_stream.hash.hexdigest())
    if compression is Compression.ZSTD:  # zstd wrote the file itself
        return diff_id, Digest.of_file(blob_path), blob_path.stat().st_size
    return diff_id, Digest("sha256", blob.hash.hexdigest()), blob.size


# -- the image ---------------------------------------------------------------------------


def build_image(
    sources: Sequence[Path],
    settings: ImageSettings,
    store: ContentStore,
    name: str,
    *,
    compression: Compression = Compression.GZIP,
    epoch: int | None = None,
) -> BuiltImage:
    """Build the image into ``store`` (the storage root or an ``oci:`` layout) as ``name``."""
    if not sources:
        raise BuildError("image build needs at least one directory or tarball")
    when = source_date_epoch() if epoch is None else epoch
    store.init()
    layers: list[BuiltLayer] = []
    ingest = store.ingest_dir
    ingest.mkdir(parents=True, exist_ok=True)
    with store.gc_lock(), tempfile.TemporaryDirectory(dir=ingest, prefix="build-") as tmp:
        for src in sources:
            path = Path(tmp) / f"layer-{len(layers)}"
            try:
                diff_id, digest, size = build_layer(Path(src), path, compression, when)
            except OSError as exc:
                raise BuildError(f"layer source {src}: {exc.strerror or exc}") from exc
            desc = Descriptor(_LAYER_TYPE[compression], digest, size)
            store.ingest_file(desc, path, what=f"layer from {src}")
            layers.append(BuiltLayer(desc, diff_id, str(src)))
        config_raw = canonical_json(
            config_document(
                settings,
                [layer.diff_id for layer in layers],
                when,
            )
        )
        config = store.put_bytes(config_raw, OCI_CONFIG)
        manifest_doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.descriptor.to_json() for layer in layers],
        }
        manifest = store.put_bytes(canonical_json(manifest_doc), OCI_MANIFEST)
        store.tag(name, manifest)
    return BuiltImage(manifest, config, tuple(layers))
