"""Fixtures for the registry/store tests: a fresh store per test, connect options, a CLI runner."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.registry import Registry
from pycontainers.distribution.authfile import Credentials
from pycontainers.distribution.docker_transport import ConnectOptions, open_client
from pycontainers.distribution.manifest import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.registries_conf import RegistriesConf
from pycontainers.distribution.registry import RetryPolicy

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def connect(tmp_path: Path) -> ConnectOptions:
    """No user auth files, no host registries.conf, quick retries."""
    return ConnectOptions(
        authfile=tmp_path / "no-auth.json",
        registries=RegistriesConf(),
        retry=RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.5),
    )


@pytest.fixture
def repo_name() -> str:
    """A repository name no other test uses (the session registry is shared)."""
    return f"t/{uuid.uuid4().hex[:10]}"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    env["CONTAINERS_REGISTRIES_CONF"] = str(tmp_path / "registries.conf")
    env["HOME"] = str(tmp_path / "home")
    env.pop("XDG_RUNTIME_DIR", None)
    yield env


class Cli:
    """Runs ``pycontainers --root STORE ...`` as a subprocess, as a user would."""

    def __init__(self, store_root: Path, env: dict[str, str]) -> None:
        self.store_root = store_root
        self.env = env

    def __call__(self, *args: str, input: str | None = None) -> CliResult:
        cmd = [str(PYTHON), "-m", "pycontainers.reconciler.cli", "--root", str(self.store_root)]
        proc = subprocess.run(
            [*cmd, *args],
            capture_output=True,
            text=True,
            env=self.env,
            input=input,
            timeout=120,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def run_cli(store_root: Path, cli_env: dict[str, str]) -> Cli:
    return Cli(store_root, cli_env)


@dataclass
class PushedImage:
    """An image with its own random layer, so tests may corrupt it without harming others."""

    ref: str
    manifest: bytes
    config: bytes
    layer: bytes

    @property
    def layer_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.layer).hexdigest()


def push_unique_image(registry: Registry, repo: str, layer_size: int = 64 * 1024) -> PushedImage:
    """Push (with our client) a one-layer image whose layer is random bytes."""
    layer = os.urandom(layer_size)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": [diff_id],
            },
            "config": {},
        }
    ).encode()

    async def push() -> bytes:
        ref = ImageRef.parse(f"{registry.host}/{repo}:latest")
        opts = ConnectOptions(registries=RegistriesConf())
        if registry.mode != "plain":
            opts.credentials = Credentials(registry.username, registry.password)
        async with open_client(ref, opts) as client:
            cfg = await client.push_blob_bytes(repo, config, OCI_CONFIG)
            lay = await client.push_blob_bytes(repo, layer, OCI_LAYER)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": cfg.to_json(),
                    "layers": [lay.to_json()],
                }
            ).encode()
            await client.put_manifest(repo, "latest", manifest, OCI_MANIFEST)
            return manifest

    manifest = asyncio.run(push())
    return PushedImage(f"{registry.host}/{repo}:latest", manifest, config, layer)


def leftovers(store_root: Path) -> list[str]:
    """Temp files of unfinished blob writes (lock files are not content)."""
    ingest = store_root / ".ingest"
    if not ingest.is_dir():
        return []
    return sorted(p.name for p in ingest.iterdir() if not p.name.endswith(".lock"))


class FaultInjector(httpx.AsyncBaseTransport):
    """Passes requests to the real registry, letting a test rewrite chosen answers.

    Used only for faults a real registry cannot produce (a body longer than the
    descriptor, a truncated body, 429 with Retry-After, 403, a manifest that is not
    JSON, an unknown media type). ``before`` may answer without asking the registry;
    ``after`` may replace the registry's answer. ``seen`` records (method, url, headers).
    """

    def __init__(
        self,
        before: Callable[[httpx.Request], httpx.Response | None] | None = None,
        after: Callable[[httpx.Request, httpx.Response], Awaitable[httpx.Response | None]]
        | None = None,
    ) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.before = before
        self.after = after
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, str(request.url), dict(request.headers)))
        if self.before is not None:
            canned = self.before(request)
            if canned is not None:
                return canned
        response = await self.real.handle_async_request(request)
        if self.after is not None:
            replaced = await self.after(request, response)
            if replaced is not None:
                return replaced
        return response

    async def aclose(self) -> None:
        await self.real.aclose()
