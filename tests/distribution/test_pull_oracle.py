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


def _push_docker_format(registry: Registry, images: FixtureImages, tag: str, repo: str) -> str:
    """Push with skopeo converted to Docker schema 2 (manifest, or manifest list with --all)."""
    dest = f"{registry.host}/{repo}:v2s2"
    extra = ["--all"] if tag == "multi" else []
    cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false", "--format", "v2s2", *extra]
    subprocess.run([*cmd, images.ref(tag), f"docker://{dest}"], check=True)
    return dest


@pytest.mark.parametrize("tag", ["layered", "multi"])
def test_docker_schema2_and_manifest_list_match_skopeo(
    tag: str,
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
    tmp_path: Path,
) -> None:
    ref = _push_docker_format(registry, images, tag, repo_name)
    result = asyncio.run(pull(ref, store_root, connect))
    # skopeo's dir: keeps the manifest as the registry sent it (oci: would convert it)
    theirs = tmp_path / "skopeo-dir"
    subprocess.run(
        ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{theirs}"],
        check=True,
    )
    store = ContentStore(store_root)
    ours = store.resolve(ref)
    assert store.read_blob(ours.digest) == (theirs / "manifest.json").read_bytes()
    assert ours.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    their_blobs = {p.name for p in theirs.iterdir()} - {"manifest.json", "version"}
    assert _blob_set(store_root) == their_blobs | {ours.digest.hex}
    if tag == "multi":
        assert result.copy.source_digest != result.copy.manifest.digest  # the list was resolved


def test_pull_by_digest(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    pushed = images.push(registry, "busybox", repo_name)
    digest = images.descriptor("busybox")["digest"]
    by_digest = pushed.rsplit(":", 1)[0] + "@" + digest
    result = asyncio.run(pull(by_digest, store_root, connect))
    assert result.name == by_digest
    assert str(ContentStore(store_root).resolve(by_digest).digest) == digest


def test_store_remembers_the_index_a_platform_came_from(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    multi = images.push(registry, "multi", f"{repo_name}/multi")
    single = images.push(registry, "busybox", f"{repo_name}/single")
    asyncio.run(pull(multi, store_root, connect))
    asyncio.run(pull(single, store_root, connect))
    store = ContentStore(store_root)
    # what a HEAD on the tag answers, so "has the tag moved?" compares like with like
    assert str(store.source_digest(multi)) == images.descriptor("multi")["digest"]
    assert str(store.resolve(multi).digest) == images.descriptor("busybox")["digest"]
    assert str(store.source_digest(single)) == images.descriptor("busybox")["digest"]
    subprocess.run(  # an extra annotation does not bother skopeo
        ["skopeo", "inspect", "--raw", f"oci:{store_root}:{multi}"], check=True, capture_output=True
    )
