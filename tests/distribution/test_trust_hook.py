"""The trust hook runs on the top-level manifest before any blob is fetched."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.docker_transport import ConnectOptions
from pycontainers.distribution.errors import TrustError
from pycontainers.distribution.imagecopy import CopyOptions
from pycontainers.distribution.pull import pull
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.registry import RegistryClient

from .conftest import leftovers

pytestmark = pytest.mark.registry


class Recorder:
    def __init__(self, reject: bool) -> None:
        self.reject = reject
        self.calls: list[tuple[str, Digest, bool]] = []

    async def check(
        self, ref: ImageRef, manifest: bytes, manifest_digest: Digest, client: RegistryClient
    ) -> object:
        self.calls.append((str(ref), manifest_digest, Digest.of_bytes(manifest) == manifest_digest))
        if self.reject:
            raise TrustError(f"{ref}: rejected by the test policy")
        return None


@pytest.mark.parametrize("reject", [False, True])
def test_trust_check_sees_the_index_before_any_blob(
    reject: bool,
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    ref = images.push(registry, "multi", repo_name)
    blob_gets: list[str] = []

    async def record(request: httpx.Request) -> None:
        if "/blobs/" in request.url.path:
            blob_gets.append(request.url.path)

    connect.event_hooks = {"request": [record]}
    trust = Recorder(reject)
    options = CopyOptions(trust=trust)
    if reject:
        with pytest.raises(TrustError, match="rejected by the test policy"):
            asyncio.run(pull(ref, store_root, connect, options))
        assert blob_gets == []
        assert leftovers(store_root) == []
        assert (
            not (store_root / "index.json").exists()
            or 'manifests":[]' in (store_root / "index.json").read_text()
        )
    else:
        asyncio.run(pull(ref, store_root, connect, options))
        assert blob_gets
    index_digest = Digest.parse(images.descriptor("multi")["digest"])
    assert trust.calls == [(ref, index_digest, True)]
