"""``image copy`` between docker://, oci:, dir: and the store; skopeo reads what we write.

Oracles: skopeo copies an image out of our store to the registry and back into it;
skopeo reads what we push (monolithic and chunked) and what we write as dir: and oci:.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.docker_transport import ConnectOptions
from pycontainers.distribution.endpoints import Endpoints
from pycontainers.distribution.imagecopy import CopyOptions, CopyResult, copy_image
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.transports import parse_transport_name

from .conftest import Cli, FaultInjector

pytestmark = pytest.mark.registry


def _skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout


def _copy(
    src: str, dst: str, store_root: Path, connect: ConnectOptions, **options: object
) -> CopyResult:
    async def run() -> CopyResult:
        endpoints = Endpoints(store_root, connect)
        source = await endpoints.source(parse_transport_name(src))
        dest = await endpoints.destination(parse_transport_name(dst))
        try:
            return await copy_image(source, dest, CopyOptions(**options))  # type: ignore[arg-type]
        finally:
            await dest.aclose()
            await source.aclose()

    return asyncio.run(run())


def test_skopeo_copies_out_of_our_store_and_back(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    ref = images.push(registry, "layered", repo_name)
    _copy(f"docker://{ref}", ref, store_root, connect)
    back = f"{registry.host}/{repo_name}-back:v1"
    _skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{store_root}:{ref}", f"docker://{back}")
    digest = images.descriptor("layered")["digest"]
    assert (
        _skopeo(
            "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{back}"
        ).strip()
        == digest
    )
    _skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{back}", f"oci:{store_root}:{back}")
    store = ContentStore(store_root)
    assert str(store.resolve(back).digest) == digest
    assert store.fsck().ok
    # umoci reads the store too (it validates the layout while unpacking)
    listed = subprocess.run(
        ["umoci", "ls", "--layout", str(store_root)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert set(listed) == {ref, back}
    stat = subprocess.run(
        ["umoci", "stat", "--json", "--image", f"{store_root}:{back}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert len(json.loads(stat)["history"]) >= 3
    bundle = store_root.parent / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store_root}:{ref}", str(bundle)],
        check=True,
        capture_output=True,
    )
    assert (bundle / "rootfs" / "gone-dir" / "back.txt").read_text() == "back\n"
    assert not (bundle / "rootfs" / "data" / "a.txt").exists()  # whited out in layer 2


@pytest.mark.parametrize("chunk_size", [None, 256 * 1024])
def test_push_from_store_monolithic_and_chunked(
    chunk_size: int | None,
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    _copy(images.ref("layered"), "localhost/layered:1", store_root, connect)
    connect.chunk_size = chunk_size
    dest = f"{registry.host}/{repo_name}:pushed"
    result = _copy("localhost/layered:1", f"docker://{dest}", store_root, connect)
    assert len(result.fetched) == 4
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{dest}"],
        check=True,
        capture_output=True,
    ).stdout
    assert str(Digest.of_bytes(raw)) == images.descriptor("layered")["digest"]
    again = _copy("localhost/layered:1", f"docker://{dest}", store_root, connect)
    assert again.fetched == [] and len(again.present) == 4  # HEAD says they exist


def test_cross_repository_mount(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    src = images.push(registry, "busybox", f"{repo_name}/a")
    dst = f"{registry.host}/{repo_name}/b:latest"
    seen: list[tuple[str, str]] = []

    async def record(request: object) -> None:
        seen.append((getattr(request, "method", ""), str(getattr(request, "url", ""))))

    connect.event_hooks = {"request": [record]}
    result = _copy(f"docker://{src}", f"docker://{dst}", store_root, connect)
    assert len(result.fetched) == 2
    assert [u for m, u in seen if m == "POST"] and all(
        "mount=" in u for m, u in seen if m == "POST"
    )
    assert not [u for m, u in seen if m == "GET" and "/blobs/" in u]  # nothing downloaded
    out = _skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{dst}")
    assert out.strip() == images.descriptor("busybox")["digest"]


def test_dir_transport_matches_skopeo(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
    tmp_path: Path,
) -> None:
    ref = images.push(registry, "layered", repo_name)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    _copy(f"docker://{ref}", f"dir:{ours}", store_root, connect)
    _skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{theirs}")
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in theirs.iterdir())
    assert (ours / "manifest.json").read_bytes() == (theirs / "manifest.json").read_bytes()
    assert (ours / "version").read_bytes() == (theirs / "version").read_bytes()
    # and a dir: written by skopeo comes into the store
    _copy(f"dir:{theirs}", "r.io/from-dir:1", store_root, connect)
    digest = ContentStore(store_root).resolve("r.io/from-dir:1").digest
    assert str(digest) == images.descriptor("layered")["digest"]


def test_copy_whole_index_with_all(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    dest = f"{registry.host}/{repo_name}:multi"
    _copy(images.ref("multi"), f"docker://{dest}", store_root, connect, all_platforms=True)
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{dest}"],
        check=True,
        capture_output=True,
    ).stdout
    assert str(Digest.of_bytes(raw)) == images.descriptor("multi")["digest"]
    for arch in ("amd64", "arm64"):
        out = _skopeo(
            "inspect", "--tls-verify=false", f"--override-arch={arch}", f"docker://{dest}"
        )
        assert json.loads(out)["Architecture"] == arch


def test_copy_command_line_json(
    registry: Registry, images: FixtureImages, run_cli: Cli, repo_name: str, tmp_path: Path
) -> None:
    dest = f"oci:{tmp_path / 'layout'}:copied"
    result = run_cli("image", "copy", "--format", "json", images.ref("busybox"), dest)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["digest"] == images.descriptor("busybox")["digest"]
    pushed = run_cli("image", "copy", "-q", dest, f"docker://{registry.host}/{repo_name}:cli")
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == doc["digest"]


def test_push_restarts_an_upload_the_registry_failed(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    """A 503 on an upload's final PUT (injected: the real registry does not fail on cue)."""
    failed: list[str] = []

    def fail_first_put(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT" and "/blobs/uploads/" in request.url.path and not failed:
            failed.append(str(request.url))
            return httpx.Response(503, content=b"try again")
        return None

    connect.transport = FaultInjector(before=fail_first_put)
    dest = f"{registry.host}/{repo_name}:retried"
    result = _copy(images.ref("busybox"), f"docker://{dest}", store_root, connect)
    assert failed and len(result.fetched) == 2
    out = _skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{dest}")
    assert out.strip() == images.descriptor("busybox")["digest"]
