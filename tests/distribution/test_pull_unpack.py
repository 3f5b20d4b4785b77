"""Pull with ``unpack_into``: each layer unpacks while its blob downloads, verified twice.

The layer directories exist when ``pull_ref`` returns (nothing else unpacked them), and
match what ``LayerStore.ensure_image`` makes from the stored blobs. A blob that
decompresses to the right layer but does not match its digest leaves neither the blob
nor the layer dir; a layer whose diff_id does not match leaves neither either.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import stat
import struct
import tarfile
import time
import zlib
from pathlib import Path

import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.docker_transport import ConnectOptions, open_client
from pycontainers.distribution.endpoints import Endpoints
from pycontainers.distribution.errors import DigestMismatch
from pycontainers.distribution.imagecopy import CopyOptions, copy_image
from pycontainers.distribution.layer_errors import DiffIDMismatch, UnsafeEntry
from pycontainers.distribution.layerstore import LayerStore, resolve_image
from pycontainers.distribution.manifest import OCI_CONFIG, OCI_MANIFEST, Descriptor, ImageManifest
from pycontainers.distribution.progress import QuietProgress
from pycontainers.distribution.pull import pull_ref
from pycontainers.distribution.pullunpack import UnpackDuringPull
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.registries_conf import RegistriesConf
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.transports import ProgressFn, parse_transport_name
from pycontainers.reconciler.cli import main

pytestmark = pytest.mark.registry

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _tree(root: Path) -> list[tuple[str, int, int, int, str]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            body = ""
            if stat.S_ISREG(st.st_mode):
                body = Digest.of_bytes(p.read_bytes()).hex
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(p)
            out.append((str(p.relative_to(root)), st.st_mode, st.st_uid, st.st_gid, body))
    return sorted(out)


def _visible(layers: Path) -> list[str]:
    return sorted(n for n in os.listdir(layers) if n != ".lock") if layers.is_dir() else []


def test_layers_unpack_during_the_pull(
    registry: Registry, images: FixtureImages, tmp_path: Path, connect: ConnectOptions
) -> None:
    ref = ImageRef.parse(images.push(registry, "layered", "pullunpack-ok"))
    layers = LayerStore(tmp_path / "layers")
    result = asyncio.run(pull_ref(ref, tmp_path / "store", connect, unpack_into=layers))
    store = ContentStore(tmp_path / "store")
    image = resolve_image(store, str(ref))
    assert set(result.copy.fetched) >= {d.digest for d in image.manifest.layers}
    # pull_ref alone made them: every layer dir is there, complete, nothing staged
    assert _visible(layers.dir) == sorted(d.hex for d in image.config.diff_ids)

    again = LayerStore(tmp_path / "from-store")
    for streamed, stored in zip(
        layers.ensure_image(store, image), again.ensure_image(store, image), strict=True
    ):
        assert _tree(streamed) == _tree(stored)


def _same_size_gzip(raw: bytes, size: int) -> bytes:
    """A gzip member of ``raw`` padded to ``size`` bytes with a header comment (FCOMMENT):
    it decompresses to the very same layer but hashes to another digest."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = comp.compress(raw) + comp.flush()
    trailer = struct.pack("<II", zlib.crc32(raw), len(raw) & 0xFFFFFFFF)
    fixed = 10 + 1 + len(body) + len(trailer)  # header, comment's NUL, data, trailer
    assert fixed <= size, "the recompressed layer must not be larger than the original"
    header = b"\x1f\x8b\x08\x10" + b"\0\0\0\0" + b"\x02\xff"
    return header + b"c" * (size - fixed) + b"\0" + body + trailer


def _push_image(registry: Registry, repo: str, raw: bytes, blob: bytes) -> str:
    """Push a one-layer image (layer ``blob``, uncompressed ``raw``) with our client."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [str(Digest.of_bytes(raw))]},
            "config": {},
        }
    ).encode()

    async def push() -> None:
        ref = ImageRef.parse(f"{registry.host}/{repo}:latest")
        async with open_client(ref, ConnectOptions(registries=RegistriesConf())) as client:
            cfg = await client.push_blob_bytes(repo, config, OCI_CONFIG)
            lay = await client.push_blob_bytes(repo, blob, GZIP_LAYER)
            doc = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": cfg.to_json(),
                "layers": [lay.to_json()],
            }
            await client.put_manifest(repo, "latest", json.dumps(doc).encode(), OCI_MANIFEST)

    asyncio.run(push())
    return f"{registry.host}/{repo}:latest"


def _tar(*entries: tuple[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _push_unique_layer_image(registry: Registry, repo: str) -> tuple[str, str, bytes]:
    """A one-layer image whose layer no other test shares (the registry stores blobs
    once for all repositories, so corrupting a shared one would break other tests)."""
    raw = _tar(("data/unique.bin", os.urandom(256 * 1024)))
    blob = gzip.compress(raw, compresslevel=1)
    return _push_image(registry, repo, raw, blob), str(Digest.of_bytes(blob)), raw


def test_a_bad_blob_leaves_neither_blob_nor_layer(
    registry: Registry, tmp_path: Path, connect: ConnectOptions
) -> None:
    text, layer_digest, raw = _push_unique_layer_image(registry, "pullunpack-bad")
    path = registry.blob_path(layer_digest)
    original = path.read_bytes()
    forged = _same_size_gzip(raw, len(original))
    assert gzip.decompress(forged) == raw
    path.write_bytes(forged)

    layers = LayerStore(tmp_path / "layers")
    with pytest.raises(DigestMismatch):
        asyncio.run(pull_ref(ImageRef.parse(text), tmp_path / "store", connect, unpack_into=layers))
    store = ContentStore(tmp_path / "store")
    assert not store.blob_path(Digest.parse(layer_digest)).exists()
    assert _visible(layers.dir) == []  # no layer dir, no staged leftovers


class WrongDiffIDs(UnpackDuringPull):
    """Claims every layer unpacks to the empty diff_id (a config that lies)."""

    def plan(self, manifest: ImageManifest, label: str) -> dict[Digest, tuple[str, Digest]]:
        planned = super().plan(manifest, label)
        return {k: (media, Digest.of_bytes(b"")) for k, (media, _) in planned.items()}


def test_a_diff_id_mismatch_leaves_neither_blob_nor_layer(
    images: FixtureImages, tmp_path: Path, connect: ConnectOptions
) -> None:
    store = ContentStore(tmp_path / "store")
    layers = LayerStore(tmp_path / "layers")

    async def run() -> None:
        endpoints = Endpoints(store.root, connect)
        src = await endpoints.source(parse_transport_name(images.ref("busybox")))
        dst = await endpoints.destination(parse_transport_name("r.io/pullunpack/lie:1"))
        try:
            await copy_image(src, dst, CopyOptions(unpack=WrongDiffIDs(store, layers)))
        finally:
            await dst.aclose()
            await src.aclose()

    with pytest.raises(DiffIDMismatch):
        asyncio.run(run())
    layer = images.manifest("busybox")["layers"][0]
    assert not store.blob_path(Digest.parse(layer["digest"])).exists()
    assert _visible(layers.dir) == []
    assert not store.exists() or store.images() == []


def test_cli_pull_layers_also_unpacks_blobs_already_present(
    registry: Registry, images: FixtureImages, tmp_path: Path
) -> None:
    """``image pull --layers``: streamed where downloaded, from the store where present."""
    text = images.push(registry, "layered", "pullunpack-cli")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    root = ["--root", str(tmp_path / "storage"), "--policy", str(policy)]
    assert main([*root, "image", "pull", "-q", text]) == 0  # blobs only
    assert not (tmp_path / "layers").exists()
    assert main([*root, "image", "pull", "--layers", "-q", text]) == 0
    store = ContentStore(tmp_path / "storage")
    image = resolve_image(store, text)
    assert _visible(tmp_path / "layers") == sorted(d.hex for d in image.config.diff_ids)


class SlowLink(QuietProgress):
    """Counts the bytes received and holds the download loop as a 20 MB/s link would, so
    how much arrives before the refusal does not depend on loopback speed."""

    def __init__(self) -> None:
        self.received = 0

    def blob_started(self, desc: Descriptor, label: str) -> ProgressFn:
        def advance(nbytes: int) -> None:
            self.received += max(nbytes, 0)
            time.sleep(max(nbytes, 0) / 20e6)

        return advance


def test_a_refused_layer_stops_its_download(
    registry: Registry, tmp_path: Path, connect: ConnectOptions
) -> None:
    """The unpack refuses the first entry; the rest of the blob is not fetched."""
    raw = _tar(("../escape", b"x"), ("big.bin", os.urandom(32 << 20)))
    blob = gzip.compress(raw, compresslevel=1)
    text = _push_image(registry, "pullunpack-hostile", raw, blob)
    layers = LayerStore(tmp_path / "layers")
    link = SlowLink()
    with pytest.raises(UnsafeEntry):
        asyncio.run(
            pull_ref(
                ImageRef.parse(text), tmp_path / "store", connect, progress=link, unpack_into=layers
            )
        )
    assert link.received < len(blob) // 2
    assert not ContentStore(tmp_path / "store").blob_path(Digest.of_bytes(blob)).exists()
    assert _visible(layers.dir) == []
