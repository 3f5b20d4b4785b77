"""Plain HTTP only for registries marked insecure or on loopback.

Every registry here listens on loopback, so a non-loopback registry that speaks only
HTTP is simulated with httpx.MockTransport: https requests fail as a TLS handshake with
an HTTP server fails, http requests get the registry's /v2/ answer.
"""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest

from pycontainers.distribution.errors import InsecureRegistry
from pycontainers.distribution.registry import ClientOptions, RegistryClient, RetryPolicy


def _plain_http_registry(seen: list[str]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.scheme == "https":
            raise httpx.ConnectError("handshake failed") from ssl.SSLError("wrong version number")
        return httpx.Response(200, json={})

    return httpx.MockTransport(handle)


def _ping(host: str, insecure: bool | None, seen: list[str]) -> str:
    async def run() -> str:
        options = ClientOptions(
            insecure=insecure, transport=_plain_http_registry(seen), retry=RetryPolicy(attempts=2)
        )
        async with RegistryClient(host, options=options) as client:
            await client.ping()
            return client.base_url

    return asyncio.run(run())


def test_remote_registry_never_downgrades_to_http() -> None:
    seen: list[str] = []
    with pytest.raises(InsecureRegistry, match=r"registry\.example:5000: https failed"):
        _ping("registry.example:5000", None, seen)
    assert seen == ["https://registry.example:5000/v2/"]  # one try: TLS failures do not heal


def test_insecure_registry_falls_back_to_http() -> None:
    seen: list[str] = []
    assert _ping("registry.example:5000", True, seen) == "http://registry.example:5000"
    assert [u.split(":")[0] for u in seen] == ["https", "http"]


def test_loopback_falls_back_unless_tls_is_required() -> None:
    assert _ping("127.0.0.1:5000", None, []) == "http://127.0.0.1:5000"
    assert _ping("localhost:5000", None, []) == "http://localhost:5000"
    with pytest.raises(InsecureRegistry):
        _ping("127.0.0.1:5000", False, [])
