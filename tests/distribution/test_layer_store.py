"""The layer store: one verified directory per diff_id, every compression, crash safety."""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from harness.images import FixtureImages
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.layer_errors import LayerError, UnsafeEntry
from pycontainers.distribution.layerstore import (
    LayerStore,
    default_layers_dir,
    lowerdir_option,
    referenced_diff_ids,
    resolve_image,
)
from pycontainers.distribution.layerstream import FeedStream
from pycontainers.distribution.store import ContentStore

TAR = "application/vnd.oci.image.layer.v1.tar"
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def entries(layers_dir: Path) -> list[str]:
    """What a layer store directory holds besides its lock file."""
    return sorted(n for n in os.listdir(layers_dir) if n != ".lock")


def listing(root: Path) -> list[tuple[str, int, str]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            body = p.read_bytes().hex() if stat.S_ISREG(st.st_mode) else ""
            out.append((str(p.relative_to(root)), st.st_mode, body))
    return sorted(out)


@pytest.fixture(scope="module")
def layered(images: FixtureImages) -> tuple[bytes, Digest]:
    """The first layer of the ``layered`` fixture, uncompressed, and its diff_id."""
    image = resolve_image(ContentStore(images.layout), "layered")
    raw = gzip.decompress(images.blob(str(image.manifest.layers[0].digest)))
    return raw, image.config.diff_ids[0]


class Exploding(io.RawIOBase):
    """A source that fails after ``after`` bytes, like a connection dropped mid-blob."""

    def __init__(self, data: bytes, after: int) -> None:
        self._src = io.BytesIO(data)
        self._after = after

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray) -> int:  # type: ignore[override]
        if self._src.tell() >= self._after:
            raise ConnectionResetError("connection reset by peer")
        chunk = self._src.read(min(len(buf), self._after - self._src.tell()))
        buf[: len(chunk)] = chunk
        return len(chunk)


def test_default_layers_dir_is_beside_the_storage_root() -> None:
    assert default_layers_dir("/var/lib/pycontainers/storage") == Path(
        "/var/lib/pycontainers/layers"
    )


@pytest.mark.parametrize("media_type", [TAR, GZIP, ZSTD, DOCKER_GZIP])
@pytest.mark.parametrize("source", ["file", "stream"])
def test_every_compression_gives_the_same_layer(
    media_type: str, source: str, layered: tuple[bytes, Digest], tmp_path: Path
) -> None:
    raw, diff_id = layered
    if media_type == ZSTD:
        blob = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True)
        data = blob.stdout
    elif media_type in (GZIP, DOCKER_GZIP):
        data = gzip.compress(raw)
    else:
        data = raw
    (tmp_path / "blob").write_bytes(data)
    reference = LayerStore(tmp_path / "ref").ensure(io.BytesIO(raw), TAR, diff_id)
    store = LayerStore(tmp_path / "layers")
    if source == "file":  # a real file descriptor: zstd reads it directly
        with open(tmp_path / "blob", "rb") as f:
            path = store.ensure(f, media_type, diff_id)
    else:  # a stream without a file descriptor: fed to zstd by a thread
        path = store.ensure(io.BytesIO(data), media_type, diff_id)
    assert path == tmp_path / "layers" / diff_id.hex
    assert listing(path) == listing(reference)
    assert entries(tmp_path / "layers") == [diff_id.hex]


def test_a_present_layer_is_not_read_again(layered: tuple[bytes, Digest], tmp_path: Path) -> None:
    raw, diff_id = layered
    store = LayerStore(tmp_path)
    first = store.ensure(io.BytesIO(raw), TAR, diff_id)
    again = store.ensure(Exploding(raw, 0), TAR, diff_id)  # type: ignore[arg-type]
    assert first == again and store.has(diff_id)


def test_multi_member_gzip_is_read_whole(layered: tuple[bytes, Digest], tmp_path: Path) -> None:
    """pigz and concatenated gzip files hold several members; all of them are the layer."""
    raw, diff_id = layered
    half = len(raw) // 2
    data = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    path = LayerStore(tmp_path).ensure(io.BytesIO(data), GZIP, diff_id)
    assert (path / "data" / "a.txt").read_bytes() == b"alpha\n"


def test_interrupted_unpack_leaves_nothing_taken_as_complete(
    layered: tuple[bytes, Digest], tmp_path: Path
) -> None:
    raw, diff_id = layered
    store = LayerStore(tmp_path)
    with pytest.raises(LayerError, match="connection reset"):
        store.ensure(io.BufferedReader(Exploding(raw, len(raw) // 2)), TAR, diff_id)
    assert not store.has(diff_id)
    assert entries(tmp_path) == []


def test_stale_temp_dirs_are_removed_unless_locked(tmp_path: Path) -> None:
    store = LayerStore(tmp_path)
    crashed = tmp_path / ".tmp-deadbeef-0001"
    (crashed / "half").mkdir(parents=True)
    busy = tmp_path / ".tmp-deadbeef-0002"
    busy.mkdir()
    fd = os.open(busy, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert store.remove_stale() == 1
        assert not crashed.exists() and busy.exists()
    finally:
        os.close(fd)


def test_concurrent_unpacks_of_one_layer_agree(
    layered: tuple[bytes, Digest], tmp_path: Path
) -> None:
    raw, diff_id = layered
    store = LayerStore(tmp_path)
    results: list[Path | BaseException] = []

    def worker() -> None:
        try:
            results.append(store.ensure(io.BytesIO(raw), TAR, diff_id))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [tmp_path / diff_id.hex] * 4
    assert entries(tmp_path) == [diff_id.hex]


def test_userxattr_opaque_for_rootless_overlay(images: FixtureImages, tmp_path: Path) -> None:
    store = ContentStore(images.layout)
    image = resolve_image(store, "layered")
    dirs = LayerStore(tmp_path, opaque_xattr="user.overlay.opaque").ensure_image(store, image)
    assert os.getxattr(dirs[1] / "opaque", "user.overlay.opaque") == b"y"
    assert "trusted.overlay.opaque" not in os.listxattr(dirs[1] / "opaque")


DEVICE_SCRIPT = """
import io, json, os, sys, tarfile
from pycontainers.distribution.unpack import ApplyOptions, Mode, apply_layer
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    for name, kind in (("null", tarfile.CHRTYPE), ("pipe", tarfile.FIFOTYPE)):
        info = tarfile.TarInfo(name); info.type = kind; info.devmajor, info.devminor = 1, 3
        tar.addfile(info)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
stats = apply_layer(fd, [buf.getvalue()], ApplyOptions(mode=Mode.FLATTEN))
print(json.dumps({"skipped": stats.skipped_devices, "names": sorted(os.listdir(sys.argv[1]))}))
"""


@pytest.mark.root
@pytest.mark.parametrize("with_mknod", [True, False], ids=["cap_mknod", "no_cap_mknod"])
def test_device_nodes_only_where_permitted(with_mknod: bool, tmp_path: Path) -> None:
    drop = [] if with_mknod else ["setpriv", "--bounding-set=-mknod", "--inh-caps=-mknod"]
    out = subprocess.run(
        [*drop, sys.executable, "-c", DEVICE_SCRIPT, str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout)
    if with_mknod:
        assert result == {"skipped": 0, "names": ["null", "pipe"]}
        assert (tmp_path / "null").lstat().st_rdev == os.makedev(1, 3)
    else:
        assert result == {"skipped": 1, "names": ["pipe"]}


def feeder(stream: FeedStream, data: bytes, *, fail_at: int | None = None) -> threading.Thread:
    """A stand-in for a download loop: hands the blob over in 512-byte pieces."""

    def run() -> None:
        try:
            for pos in range(0, len(data), 512):
                if fail_at is not None and pos >= fail_at:
                    stream.finish(ConnectionResetError("registry went away"))
                    return
                stream.feed(data[pos : pos + 512])
            stream.finish()
        except BrokenPipeError:
            pass  # the unpack gave up first; a real download would stop here

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_unpack_while_the_blob_arrives(layered: tuple[bytes, Digest], tmp_path: Path) -> None:
    raw, diff_id = layered
    stream = FeedStream()
    thread = feeder(stream, gzip.compress(raw))
    try:
        path = LayerStore(tmp_path).ensure(stream, GZIP, diff_id)
    finally:
        stream.close()
        thread.join()
    assert (path / "data" / "a.txt").read_bytes() == b"alpha\n"


def test_failed_download_leaves_no_layer(layered: tuple[bytes, Digest], tmp_path: Path) -> None:
    raw, diff_id = layered
    blob = gzip.compress(raw)
    stream = FeedStream()
    thread = feeder(stream, blob, fail_at=len(blob) // 2)
    store = LayerStore(tmp_path)
    try:
        with pytest.raises(LayerError, match="registry went away"):
            store.ensure(stream, GZIP, diff_id)
    finally:
        stream.close()
        thread.join()
    assert entries(tmp_path) == []


def test_failed_unpack_releases_the_download(tmp_path: Path) -> None:
    """The feeder must not block forever once the unpack has stopped reading."""
    junk = os.urandom(4 << 20)  # not gzip: the unpack fails at once
    stream = FeedStream(depth=2)
    thread = feeder(stream, junk)
    try:
        with pytest.raises(LayerError):
            LayerStore(tmp_path).ensure(stream, GZIP, Digest.of_bytes(b""))
    finally:
        stream.close()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_hostile_layer_during_a_stalled_download_does_not_hang(tmp_path: Path) -> None:
    """The unpack refuses the first bad entry even though the rest never arrives."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("../escape"), io.BytesIO(b""))
    stream = FeedStream()
    stream.feed(buf.getvalue()[:1024])  # the header and more, then the download stalls
    store = LayerStore(tmp_path)
    try:
        with pytest.raises(UnsafeEntry, match="path contains"):
            store.ensure(stream, TAR, Digest.of_bytes(b""))
    finally:
        stream.close()
    assert entries(tmp_path) == []


@pytest.mark.root
def test_prune_keeps_what_images_and_mounts_use(images: FixtureImages, tmp_path: Path) -> None:
    store = ContentStore(images.layout)
    layers = LayerStore(tmp_path / "layers")
    busybox = layers.ensure_image(store, resolve_image(store, "busybox"))
    layered = layers.ensure_image(store, resolve_image(store, "layered"))
    assert referenced_diff_ids(store) >= set(layers.layers())

    keep = {Digest.parse(f"sha256:{p.name}") for p in busybox}
    merged, work, upper = tmp_path / "merged", tmp_path / "work", tmp_path / "upper"
    for d in (merged, work, upper):
        d.mkdir()
    opts = f"lowerdir={lowerdir_option(layered[:2])},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        removed = layers.prune(keep)
        assert [f"{d.hex}" for d in removed] == [layered[2].name]  # the unmounted one
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    removed = layers.prune(keep)
    assert sorted(d.hex for d in removed) == sorted(p.name for p in layered[:2])
    assert entries(tmp_path / "layers") == sorted(p.name for p in busybox)
