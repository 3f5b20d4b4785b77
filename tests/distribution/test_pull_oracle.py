"""Pulls from the real registry match skopeo's: same manifest digests, same blob sets."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.docker_transport import ConnectOptions
from pycontainers.distribution.imagecopy import CopyOptions
from pycontainers.distribution.manifest import Platform
from pycontainers.distribution.pull import pull
from pycontainers.distribution.store import ContentStore

pytestmark = pytest.mark.registry


def _skopeo_pull(ref: str, dest: Path, *extra: str) -> None:
    subprocess.run(
        [
            "skopeo",
            "copy",
            "-q",
            "--src-tls-verify=false",
            *extra,
            f"docker://{ref}",
            f"oci:{dest}:img",
        ],
        check=True,
    )


def _blob_set(layout: Path) -> set[str]:
    return {p.name for p in (layout / "blobs" / "sha256").iterdir()}


@pytest.mark.parametrize("tag", ["busybox", "layered"])
def test_pull_matches_skopeo(
    tag: str,
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
    tmp_path: Path,
) -> None:
    ref = images.push(registry, tag, repo_name)
    result = asyncio.run(pull(ref, store_root, connect))
    _skopeo_pull(ref, tmp_path / "skopeo")
    store = ContentStore(store_root)
    skopeo_store = ContentStore(tmp_path / "skopeo")
    assert store.resolve(ref).digest == skopeo_store.resolve("img").digest
    assert str(result.copy.manifest.digest) == images.descriptor(tag)["digest"]
    assert _blob_set(store_root) == _blob_set(tmp_path / "skopeo")
    assert store.fsck().ok


def test_multi_arch_pull_selects_platform_like_skopeo(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
    tmp_path: Path,
) -> None:
    ref = images.push(registry, "multi", repo_name)
    options = CopyOptions(platform=Platform("linux", "arm64"))
    result = asyncio.run(pull(ref, store_root, connect, options))
    _skopeo_pull(ref, tmp_path / "skopeo", "--override-arch=arm64")
    want = images.descriptor("busybox-arm64")["digest"]
    assert str(result.copy.manifest.digest) == want
    assert str(ContentStore(tmp_path / "skopeo").resolve("img").digest) == want
    assert str(result.copy.source_digest) == images.descriptor("multi")["digest"]
    assert _blob_set(store_root) == _blob_set(tmp_path / "skopeo")


def test_second_pull_downloads_nothing(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    ref = images.push(registry, "layered", repo_name)
    blob_gets: list[str] = []

    async def record(request: object) -> None:
        url = str(getattr(request, "url", ""))
        if "/blobs/" in url and getattr(request, "method", "") == "GET":
            blob_gets.append(url)

    connect.event_hooks = {"request": [record]}
    first = asyncio.run(pull(ref, store_root, connect))
    assert len(blob_gets) == 4  # config + 3 layers
    assert len(first.copy.fetched) == 4
    blob_gets.clear()
    second = asyncio.run(pull(ref, store_root, connect))
    assert blob_gets == []
    assert second.copy.fetched == []
    assert sorted(second.copy.present) == sorted(first.copy.fetched)
    assert isinstance(second.copy.manifest.digest, Digest)
