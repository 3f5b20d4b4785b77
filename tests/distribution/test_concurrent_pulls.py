"""Concurrent pulls of the same and of overlapping images share the store safely."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.docker_transport import ConnectOptions
from pycontainers.distribution.pull import PullResult, pull
from pycontainers.distribution.store import ContentStore

from .conftest import PYTHON, leftovers

pytestmark = pytest.mark.registry


def test_parallel_pulls_in_one_process_fetch_each_blob_once(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    a = images.push(registry, "busybox", f"{repo_name}/amd")
    b = images.push(registry, "busybox-arm64", f"{repo_name}/arm")
    gets: list[str] = []

    async def record(request: httpx.Request) -> None:
        if request.method == "GET" and "/blobs/" in request.url.path:
            gets.append(request.url.path.rsplit("/", 1)[1])

    connect.event_hooks = {"request": [record]}

    async def both() -> list[PullResult]:
        # More waiters than the default executor has threads: waiting for a blob lock
        # must not hold a thread the lock's holder needs to finish.
        pulls = [pull(a, store_root, connect) for _ in range(10)]
        pulls += [pull(b, store_root, connect) for _ in range(4)]
        return list(await asyncio.gather(*pulls))

    results = asyncio.run(both())
    layer = images.manifest("busybox")["layers"][0]["digest"]
    assert layer == images.manifest("busybox-arm64")["layers"][0]["digest"]
    assert gets.count(layer) == 1  # the shared layer came once, the others waited for it
    assert len(gets) == len(set(gets))
    assert {r.name for r in results} == {a, b}
    store = ContentStore(store_root)
    assert {i.name for i in store.images()} == {a, b}
    assert store.fsck().ok


def test_parallel_pull_processes(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    repo_name: str,
    cli_env: dict[str, str],
) -> None:
    refs = [
        images.push(registry, "layered", f"{repo_name}/l"),
        images.push(registry, "busybox", f"{repo_name}/a"),
        images.push(registry, "busybox-arm64", f"{repo_name}/b"),
    ]
    cmd = [str(PYTHON), "-m", "pycontainers.reconciler.cli", "--root", str(store_root)]
    procs = [
        subprocess.Popen(
            [*cmd, "image", "pull", "-q", ref],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for ref in [*refs, *refs]
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outputs
    store = ContentStore(store_root)
    assert {i.name for i in store.images()} == set(refs)
    assert store.fsck().ok
    assert leftovers(store_root) == []
    assert os.path.exists(store.index_path)
