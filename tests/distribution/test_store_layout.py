"""The content store is an OCI layout that skopeo and umoci read; blobs only after verification."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from harness.images import FixtureImages
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import DigestMismatch, ImageNotKnown, SizeMismatch
from pycontainers.distribution.manifest import Descriptor, ImageManifest
from pycontainers.distribution.store import ContentStore


def _copy_image(images: FixtureImages, tag: str, store: ContentStore, name: str) -> Descriptor:
    src = images.descriptor(tag)
    desc = Descriptor(src["mediaType"], Digest.parse(src["digest"]), src["size"])
    manifest = images.manifest(tag)
    for blob in [manifest["config"], *manifest["layers"]]:
        d = Descriptor(blob["mediaType"], Digest.parse(blob["digest"]), blob["size"])
        with store.blob_writer(d) as w:
            w.write(images.blob(blob["digest"]))
            w.commit()
    with store.blob_writer(desc) as w:
        w.write(images.blob(src["digest"]))
        w.commit()
    store.tag(name, desc)
    return desc


def test_skopeo_and_umoci_read_our_store(tmp_path: Path, images: FixtureImages) -> None:
    store = ContentStore(tmp_path / "storage").init()
    name = "127.0.0.1:5000/some/app:v1"
    desc = _copy_image(images, "layered", store, name)
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{store.root}:{name}"],
        check=True,
        capture_output=True,
    ).stdout
    assert Digest.of_bytes(raw) == desc.digest
    listed = subprocess.run(
        ["umoci", "ls", "--layout", str(store.root)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert name in listed
    assert store.resolve(name).digest == desc.digest
    manifest = store.read_manifest(desc)
    assert isinstance(manifest, ImageManifest)
    assert store.has_blob(manifest.layers[0])


@pytest.mark.parametrize("background", [False, True])
def test_unverified_blob_never_lands(tmp_path: Path, background: bool) -> None:
    store = ContentStore(tmp_path).init()
    data = b"x" * 100
    desc = Descriptor("application/octet-stream", Digest.of_bytes(data), 100)
    with pytest.raises(DigestMismatch), store.blob_writer(desc, background=background) as w:
        w.write(b"y" * 100)
        w.commit()
    with pytest.raises(SizeMismatch), store.blob_writer(desc, background=background) as w:
        w.write(data + b"!")
    assert not store.has_blob(desc)
    assert list(store.ingest_dir.iterdir()) == []
    assert list((store.root / "blobs" / "sha256").iterdir()) == []


def test_background_writer_restarts_and_commits(tmp_path: Path) -> None:
    store = ContentStore(tmp_path).init()
    data = bytes(range(256)) * 4096
    desc = Descriptor("application/octet-stream", Digest.of_bytes(data), len(data))
    with store.blob_writer(desc, background=True) as w:
        w.write(b"junk" * 1000)
        w.truncate()  # the registry ignored a Range request: start over
        for i in range(0, len(data), 65536):
            w.write(data[i : i + 65536])
        w.commit()
    assert store.read_blob(desc.digest) == data


def test_tag_untag_prune(tmp_path: Path, images: FixtureImages) -> None:
    store = ContentStore(tmp_path).init()
    a = _copy_image(images, "busybox", store, "r.io/a:1")
    b = _copy_image(images, "busybox-arm64", store, "r.io/b:1")
    assert [i.name for i in store.images()] == ["r.io/a:1", "r.io/b:1"]
    store.untag("r.io/b:1")
    with pytest.raises(ImageNotKnown, match=r"r\.io/b:1"):
        store.resolve("r.io/b:1")
    report = store.prune()
    # busybox-arm64 shares its layer with busybox: only its manifest and config go
    arm_config = Digest.parse(images.manifest("busybox-arm64")["config"]["digest"])
    assert set(report.removed) == {b.digest, arm_config}
    assert store.has_blob(a)
    assert store.fsck().ok


def test_fsck_finds_and_repairs_corruption(tmp_path: Path, images: FixtureImages) -> None:
    store = ContentStore(tmp_path).init()
    _copy_image(images, "busybox", store, "r.io/a:1")
    layer = Digest.parse(images.manifest("busybox")["layers"][0]["digest"])
    path = store.blob_path(layer)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"CORRUPT")
    report = store.fsck()
    assert [d for d, _ in report.corrupt] == [layer]
    assert store.has_blob(layer)
    repaired = store.fsck(repair=True)
    assert repaired.removed == [layer]
    assert not store.has_blob(layer)
    assert repaired.missing == [("r.io/a:1", layer)]


def test_concurrent_tagging_loses_no_name(tmp_path: Path, images: FixtureImages) -> None:
    store = ContentStore(tmp_path).init()
    desc = _copy_image(images, "busybox", store, "r.io/base:1")

    def tag_many(prefix: str) -> None:
        s = ContentStore(tmp_path)  # separate instance: separate lock fds, like two processes
        for i in range(25):
            s.tag(f"r.io/{prefix}:{i}", desc)

    threads = [threading.Thread(target=tag_many, args=(p,)) for p in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.images()) == 1 + 4 * 25
    json.loads(store.index_path.read_text())
