"""Bad input and faults during pulls: one clear error naming the image, nothing unverified stored.

Real registry faults (unknown tag, unauthorized, corrupt storage, the registry dying
mid-blob) use the real docker-registry. Faults a real registry cannot produce (403,
429 + Retry-After, a body longer than the descriptor, a truncated body, a manifest that is
not JSON or not the schema, an unknown media type) are injected by ``FaultInjector``,
an httpx transport that forwards everything else to the real registry.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.docker_transport import ConnectOptions
from pycontainers.distribution.errors import (
    DigestMismatch,
    DistributionError,
    Forbidden,
    ManifestError,
    NotFound,
    RateLimited,
    SizeMismatch,
    UnsupportedMediaType,
)
from pycontainers.distribution.manifest import OCI_MANIFEST, Descriptor
from pycontainers.distribution.progress import QuietProgress
from pycontainers.distribution.pull import pull
from pycontainers.distribution.registry import RetryPolicy
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.transports import ProgressFn

from .conftest import Cli, FaultInjector, leftovers, push_unique_image

pytestmark = pytest.mark.registry


def _assert_clean_failure(exc: DistributionError, ref: str, store_root: Path) -> None:
    message = str(exc)
    assert message.startswith(ref), message
    assert "\n" not in message
    assert leftovers(store_root) == []
    store = ContentStore(store_root)
    if store.exists():
        assert store.images() == []
        assert store.fsck().corrupt == []


def _fail(ref: str, store_root: Path, connect: ConnectOptions, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        asyncio.run(pull(ref, store_root, connect))
    assert isinstance(info.value, DistributionError)
    _assert_clean_failure(info.value, ref, store_root)


# ---- real registry ------------------------------------------------------------------------


def test_unknown_tag_and_repository(
    registry: Registry, images: FixtureImages, store_root: Path, connect: ConnectOptions
) -> None:
    images.push(registry, "busybox", "faults/known")
    _fail(f"{registry.host}/faults/known:nope", store_root, connect, NotFound)
    _fail(f"{registry.host}/faults/unknown:latest", store_root, connect, NotFound)


def test_unknown_image_on_the_command_line(registry: Registry, run_cli: Cli) -> None:
    ref = f"{registry.host}/faults/missing:1"
    result = run_cli("image", "pull", ref)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {ref}: not found (manifest unknown)"]


def test_unauthorized_on_the_command_line(
    registry_token: Registry, images: FixtureImages, run_cli: Cli, repo_name: str
) -> None:
    ref = images.push(registry_token, "busybox", f"private/{repo_name}")
    result = run_cli("image", "pull", ref)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {ref}: unauthorized (authentication required); hint: ")


def test_corrupt_blob_in_registry_storage(
    registry: Registry, store_root: Path, connect: ConnectOptions, repo_name: str, run_cli: Cli
) -> None:
    image = push_unique_image(registry, repo_name)
    path = registry.blob_path(image.layer_digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch) as info:
        asyncio.run(pull(image.ref, store_root, connect))
    assert "digest mismatch" in str(info.value) and image.layer_digest in str(info.value)
    _assert_clean_failure(info.value, image.ref, store_root)
    assert not ContentStore(store_root).blob_path(Digest.parse(image.layer_digest)).exists()
    result = run_cli("image", "pull", image.ref)
    assert result.returncode == 1 and "digest mismatch" in result.stderr


class KillRegistryMidBlob(QuietProgress):
    """Progress that kills the registry once ``after`` bytes of a big blob have arrived,
    and starts it again in the background (as a crashed and restarted registry)."""

    def __init__(self, registry: Registry, after: int) -> None:
        self.registry = registry
        self.after = after
        self.received = 0
        self.killed = False
        self.restart: threading.Thread | None = None

    def blob_started(self, desc: Descriptor, label: str) -> ProgressFn:
        def advance(nbytes: int) -> None:
            self.received += max(nbytes, 0)
            if desc.size > self.after and self.received > self.after and not self.killed:
                self.killed = True
                self.registry.kill()
                self.restart = threading.Thread(target=self.registry.start)
                self.restart.start()

        return advance


def test_registry_dies_mid_blob_and_the_pull_resumes(
    registry: Registry, store_root: Path, connect: ConnectOptions, repo_name: str
) -> None:
    image = push_unique_image(registry, repo_name, layer_size=48 << 20)
    injector = FaultInjector()  # only records requests here
    connect.transport = injector
    connect.retry = RetryPolicy(attempts=8, base_delay=0.2, max_delay=1.0)
    killer = KillRegistryMidBlob(registry, after=4 << 20)
    try:
        result = asyncio.run(pull(image.ref, store_root, connect, progress=killer))
    finally:
        if killer.restart is not None:
            killer.restart.join()
    assert killer.killed
    assert result.copy.fetched
    ranges = [h.get("range", "") for _, url, h in injector.seen if image.layer_digest in url]
    assert any(r.startswith("bytes=") and r != "bytes=0-" for r in ranges), ranges
    assert ContentStore(store_root).fsck().ok
    assert leftovers(store_root) == []


# ---- injected faults (a real registry cannot produce these) -------------------------------


def _is_manifest(request: httpx.Request) -> bool:
    return "/manifests/" in request.url.path and request.method == "GET"


def _is_layer(request: httpx.Request, digest: str) -> bool:
    return request.url.path.endswith(f"/blobs/{digest}") and request.method == "GET"


def test_forbidden(
    registry: Registry, store_root: Path, connect: ConnectOptions, repo_name: str
) -> None:
    image = push_unique_image(registry, repo_name)
    body = b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}'

    def deny(request: httpx.Request) -> httpx.Response | None:
        return httpx.Response(403, content=body) if _is_manifest(request) else None

    connect.transport = FaultInjector(before=deny)
    _fail(image.ref, store_root, connect, Forbidden)


def test_rate_limited_then_served_honours_retry_after(
    registry: Registry, store_root: Path, connect: ConnectOptions, repo_name: str
) -> None:
    image = push_unique_image(registry, repo_name)
    limited = [0]

    def limit_twice(request: httpx.Request) -> httpx.Response | None:
        if _is_layer(request, image.layer_digest) and limited[0] < 2:
            limited[0] += 1
            return httpx.Response(429, headers={"Retry-After": "0"})
        return None

    connect.transport = FaultInjector(before=limit_twice)
    result = asyncio.run(pull(image.ref, store_root, connect))
    assert limited[0] == 2
    assert len(result.copy.fetched) == 2


def test_rate_limited_for_good(
    registry: Registry, store_root: Path, connect: ConnectOptions, repo_name: str
) -> None:
    image = push_unique_image(registry, repo_name)

    def limit(request: httpx.Request) -> httpx.Response | None:
        if _is_manifest(request):
            return httpx.Response(429, headers={"Retry-After": "0"}, content=b"slow down")
        return None

    injector = FaultInjector(before=limit)
    connect.transport = injector
    _fail(image.ref, store_root, connect, RateLimited)
    assert sum(1 for m, u, _ in injector.seen if "/manifests/" in u) == connect.retry.attempts


def test_blob_larger_than_descriptor_is_cut_off(
    registry: Registry, store_root: Path, connect: ConnectOptions, repo_name: str
) -> None:
    image = push_unique_image(registry, repo_name)
    extra = 10 << 20

    async def longer(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if not _is_layer(request, image.layer_digest):
            return None
        body = await response.aread()

        async def endless() -> AsyncIterator[bytes]:
            yield body
            for _ in range(extra // 65536):
                yield b"\0" * 65536

        return httpx.Response(200, content=endless())

    connect.transport = FaultInjector(after=longer)
    with pytest.raises(SizeMismatch, match="more data than the descriptor") as info:
        asyncio.run(pull(image.ref, store_root, connect))
    _assert_clean_failure(info.value, image.ref, store_root)


def test_truncated_body_resumes_with_range(
    registry: Registry, store_root: Path, connect: ConnectOptions, repo_name: str
) -> None:
    image = push_unique_image(registry, repo_name, layer_size=1 << 20)
    cut = [False]

    async def truncate_once(
        request: httpx.Request, response: httpx.Response
    ) -> httpx.Response | None:
        if not _is_layer(request, image.layer_digest) or cut[0]:
            return None
        cut[0] = True
        body = await response.aread()

        async def first_third() -> AsyncIterator[bytes]:
            yield body[: len(body) // 3]

        return httpx.Response(200, content=first_third())

    injector = FaultInjector(after=truncate_once)
    connect.transport = injector
    asyncio.run(pull(image.ref, store_root, connect))
    layer_requests = [h for _, u, h in injector.seen if u.endswith(image.layer_digest)]
    assert [h.get("range") for h in layer_requests] == [None, f"bytes={(1 << 20) // 3}-"]
    assert ContentStore(store_root).fsck().ok


@pytest.mark.parametrize(
    ("body", "content_type", "error", "cause"),
    [
        (b"<html>oops</html>", "text/html", ManifestError, "not valid JSON"),
        (b'{"schemaVersion": 2, "layers": "x"}', OCI_MANIFEST, ManifestError, "no config"),
        (
            json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example+json"}).encode(),
            "application/vnd.example+json",
            UnsupportedMediaType,
            "unsupported manifest media type",
        ),
        (
            b'{"schemaVersion": 1, "name": "x", "fsLayers": []}',
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            UnsupportedMediaType,
            "schema 1",
        ),
    ],
)
def test_bad_manifests(
    body: bytes,
    content_type: str,
    error: type[Exception],
    cause: str,
    registry: Registry,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    image = push_unique_image(registry, repo_name)

    def serve(request: httpx.Request) -> httpx.Response | None:
        if _is_manifest(request):
            return httpx.Response(200, content=body, headers={"Content-Type": content_type})
        return None

    connect.transport = FaultInjector(before=serve)
    with pytest.raises(error, match=cause) as info:
        asyncio.run(pull(image.ref, store_root, connect))
    assert isinstance(info.value, DistributionError)
    _assert_clean_failure(info.value, image.ref, store_root)


def test_endless_manifest_is_cut_off(
    registry: Registry, store_root: Path, connect: ConnectOptions, repo_name: str
) -> None:
    image = push_unique_image(registry, repo_name)
    sent = [0]

    def endless(request: httpx.Request) -> httpx.Response | None:
        if not _is_manifest(request):
            return None

        async def body() -> AsyncIterator[bytes]:
            while sent[0] < 64 << 20:
                sent[0] += 1 << 16
                yield b" " * (1 << 16)

        return httpx.Response(200, content=body(), headers={"Content-Type": OCI_MANIFEST})

    connect.transport = FaultInjector(before=endless)
    with pytest.raises(ManifestError, match="manifest larger than") as info:
        asyncio.run(pull(image.ref, store_root, connect))
    assert sent[0] < 8 << 20  # stopped reading soon after the 4 MiB limit
    _assert_clean_failure(info.value, image.ref, store_root)


def test_registry_that_ignores_range_restarts_from_zero(
    registry: Registry, store_root: Path, connect: ConnectOptions, repo_name: str
) -> None:
    image = push_unique_image(registry, repo_name, layer_size=1 << 20)
    answers: list[int] = []

    async def truncate_then_ignore_range(
        request: httpx.Request, response: httpx.Response
    ) -> httpx.Response | None:
        if not _is_layer(request, image.layer_digest):
            return None
        if not answers:  # first answer: a third of the body, then the connection ends
            answers.append(200)
            body = await response.aread()

            async def first_third() -> AsyncIterator[bytes]:
                yield body[: len(body) // 3]

            return httpx.Response(200, content=first_third())
        await response.aclose()  # a Range request: answer 200 with the whole body instead
        answers.append(200)
        full = httpx.Request("GET", request.url)
        whole = await injector.real.handle_async_request(full)
        data = await whole.aread()

        async def everything() -> AsyncIterator[bytes]:
            yield data

        return httpx.Response(200, content=everything())

    injector = FaultInjector(after=truncate_then_ignore_range)
    connect.transport = injector
    asyncio.run(pull(image.ref, store_root, connect))
    ranges = [h.get("range") for _, u, h in injector.seen if u.endswith(image.layer_digest)]
    assert ranges == [None, f"bytes={(1 << 20) // 3}-"]
    assert ContentStore(store_root).fsck().ok
    assert leftovers(store_root) == []
