"""Authentication against real registries: Basic (htpasswd) and Bearer tokens, auth files, login."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution import authfile
from pycontainers.distribution.auth import parse_challenges
from pycontainers.distribution.authfile import Credentials
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.docker_transport import ConnectOptions, open_client
from pycontainers.distribution.errors import NotFound, Unauthorized
from pycontainers.distribution.pull import pull
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.store import ContentStore

from .conftest import Cli

pytestmark = pytest.mark.registry


def _write_auth(path: Path, registry: Registry, *, password: str | None = None) -> None:
    raw = f"{registry.username}:{password or registry.password}".encode()
    path.write_text(
        json.dumps({"auths": {registry.host: {"auth": base64.b64encode(raw).decode()}}})
    )


def test_challenge_parsing() -> None:
    got = parse_challenges(
        'Bearer realm="https://auth.io/token",service="reg.io",'
        'scope="repository:a/b:pull,push", Basic realm="x \\"y\\""'
    )
    assert [c.scheme for c in got] == ["bearer", "basic"]
    assert got[0].params == {
        "realm": "https://auth.io/token",
        "service": "reg.io",
        "scope": "repository:a/b:pull,push",
    }
    assert got[1].params["realm"] == 'x "y"'


def test_basic_auth_from_auth_file(
    registry_basic: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    ref = images.push(registry_basic, "busybox", repo_name)
    assert connect.authfile is not None
    with pytest.raises(Unauthorized, match=rf"^{ref}: unauthorized"):
        asyncio.run(pull(ref, store_root, connect))
    assert list(ContentStore(store_root).all_blobs()) == []
    _write_auth(connect.authfile, registry_basic)
    result = asyncio.run(pull(ref, store_root, connect))
    assert str(result.copy.manifest.digest) == images.descriptor("busybox")["digest"]


def test_wrong_basic_password_is_unauthorized(
    registry_basic: Registry, images: FixtureImages, store_root: Path, connect: ConnectOptions
) -> None:
    ref = images.push(registry_basic, "busybox", "auth/wrong-pass")
    connect.credentials = Credentials(registry_basic.username, "nope")
    with pytest.raises(Unauthorized) as info:
        asyncio.run(pull(ref, store_root, connect))
    assert str(info.value).startswith(ref)
    assert list(ContentStore(store_root).all_blobs()) == []


def test_bearer_token_anonymous_public_and_credentials_private(
    registry_token: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    public = images.push(registry_token, "busybox", f"public/{repo_name}")
    private = images.push(registry_token, "busybox", f"private/{repo_name}")
    asyncio.run(pull(public, store_root, connect))  # anonymous token, pull on public/
    with pytest.raises(Unauthorized, match=rf"^{private}: unauthorized"):
        asyncio.run(pull(private, store_root, connect))
    connect.credentials = Credentials(registry_token.username, registry_token.password)
    asyncio.run(pull(private, store_root, connect))
    assert {i.name for i in ContentStore(store_root).images()} == {public, private}


def test_bearer_token_is_cached_per_scope(
    registry_token: Registry, images: FixtureImages, connect: ConnectOptions, repo_name: str
) -> None:
    issuer = registry_token.token_issuer
    assert issuer is not None
    ref = ImageRef.parse(images.push(registry_token, "layered", repo_name))
    connect.credentials = Credentials(registry_token.username, registry_token.password)

    async def many_requests() -> tuple[int, int]:
        async with open_client(ref, connect) as client:
            before = issuer.issued
            manifest = await client.get_manifest(ref.repository, "latest")
            await client.get_manifest(ref.repository, str(manifest.digest))
            for layer in images.manifest("layered")["layers"]:
                await client.blob_exists(ref.repository, _digest(layer["digest"]))
            one_scope = issuer.issued - before
            with pytest.raises(NotFound):  # another scope: another token
                await client.list_tags("public/other")
            return one_scope, issuer.issued - before

    one_scope, two_scopes = asyncio.run(many_requests())
    assert one_scope == 1
    assert two_scopes == 2


def test_expired_token_is_fetched_again(
    registry_token: Registry, images: FixtureImages, connect: ConnectOptions, repo_name: str
) -> None:
    issuer = registry_token.token_issuer
    assert issuer is not None
    ref = ImageRef.parse(images.push(registry_token, "busybox", f"public/{repo_name}"))
    now = [1000.0]

    async def run() -> int:
        async with open_client(ref, connect) as client:
            client.auth._clock = lambda: now[0]
            before = issuer.issued
            await client.get_manifest(ref.repository, "latest")
            await client.get_manifest(ref.repository, "latest")
            now[0] += 3600  # past expires_in
            await client.get_manifest(ref.repository, "latest")
            return issuer.issued - before

    assert asyncio.run(run()) == 2


def _digest(text: str) -> Digest:
    return Digest.parse(text)


def test_auth_file_lookup_order_and_docker_config(tmp_path: Path) -> None:
    containers = tmp_path / "auth.json"
    docker = tmp_path / "config.json"
    entry = base64.b64encode(b"u1:p1").decode()
    containers.write_text(json.dumps({"auths": {"reg.io/team": {"auth": entry}}}))
    hub = base64.b64encode(b"hubuser:hubpass").decode()
    docker.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": hub}}}))
    paths = [containers, docker]
    assert authfile.lookup("reg.io", "team/app", paths) == Credentials("u1", "p1")
    assert authfile.lookup("reg.io", "other/app", paths) is None
    assert authfile.lookup("docker.io", "library/busybox", paths) == Credentials(
        "hubuser", "hubpass"
    )


def test_login_logout_cli(registry_token: Registry, run_cli: Cli, tmp_path: Path) -> None:
    auth = Path(run_cli.env["REGISTRY_AUTH_FILE"])
    bad = run_cli(
        "image",
        "login",
        "-u",
        registry_token.username,
        "--password-stdin",
        registry_token.host,
        input="wrong\n",
    )
    assert bad.returncode == 1
    assert "refused the credentials" in bad.stderr
    assert not auth.exists()
    ok = run_cli(
        "image",
        "login",
        "-u",
        registry_token.username,
        "--password-stdin",
        registry_token.host,
        input=registry_token.password + "\n",
    )
    assert ok.returncode == 0, ok.stderr
    saved = authfile.lookup(registry_token.host, "x", [auth])
    assert saved == Credentials(registry_token.username, registry_token.password)
    assert oct(auth.stat().st_mode & 0o777) == "0o600"
    assert run_cli("image", "logout", registry_token.host).returncode == 0
    assert authfile.lookup(registry_token.host, "x", [auth]) is None
    again = run_cli("image", "logout", registry_token.host)
    assert again.returncode == 1 and "not logged in" in again.stderr
