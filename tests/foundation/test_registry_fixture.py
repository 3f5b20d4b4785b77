"""The registry fixtures are real registries that skopeo can push to and HTTP reads back."""

from __future__ import annotations

import hashlib
import json
import subprocess

import httpx
import pytest

from harness.images import FixtureImages
from harness.registry import Registry

pytestmark = pytest.mark.registry

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"


def test_push_with_skopeo_and_read_manifest_over_http(
    registry: Registry, images: FixtureImages
) -> None:
    images.push(registry, "busybox", "harness/busybox")
    r = httpx.get(f"{registry.url}/v2/harness/busybox/manifests/latest", headers={"Accept": ACCEPT})
    assert r.status_code == 200
    expected = images.descriptor("busybox")["digest"]
    assert "sha256:" + hashlib.sha256(r.content).hexdigest() == expected
    assert r.headers["Docker-Content-Digest"] == expected
    layer = json.loads(r.content)["layers"][0]
    blob = httpx.get(f"{registry.url}/v2/harness/busybox/blobs/{layer['digest']}")
    assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == layer["digest"]


def test_multi_arch_index_pushes_whole(registry: Registry, images: FixtureImages) -> None:
    images.push(registry, "multi", "harness/multi")
    r = httpx.get(f"{registry.url}/v2/harness/multi/manifests/latest", headers={"Accept": ACCEPT})
    index = json.loads(r.content)
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}


def test_basic_auth_registry(registry_basic: Registry, images: FixtureImages) -> None:
    assert httpx.get(f"{registry_basic.url}/v2/").status_code == 401
    images.push(registry_basic, "busybox", "harness/basic")
    ok = httpx.get(
        f"{registry_basic.url}/v2/harness/basic/manifests/latest",
        headers={"Accept": ACCEPT, **registry_basic.auth_header()},
    )
    assert ok.status_code == 200


def test_token_auth_registry(registry_token: Registry, images: FixtureImages) -> None:
    challenge = httpx.get(f"{registry_token.url}/v2/")
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"].startswith("Bearer realm=")
    images.push(registry_token, "busybox", "harness/token")
    issuer = registry_token.token_issuer
    assert issuer is not None
    token = httpx.get(
        issuer.realm,
        params={"service": "pyc-test-registry", "scope": "repository:harness/token:pull"},
        auth=(registry_token.username, registry_token.password),
    ).json()["token"]
    ok = httpx.get(
        f"{registry_token.url}/v2/harness/token/manifests/latest",
        headers={"Accept": ACCEPT, "Authorization": f"Bearer {token}"},
    )
    assert ok.status_code == 200
    # an anonymous token carries no access to a private repository
    anon = httpx.get(
        issuer.realm,
        params={"service": "pyc-test-registry", "scope": "repository:harness/token:pull"},
    ).json()["token"]
    denied = httpx.get(
        f"{registry_token.url}/v2/harness/token/manifests/latest",
        headers={"Accept": ACCEPT, "Authorization": f"Bearer {anon}"},
    )
    assert denied.status_code == 401


def test_registry_restart_keeps_storage(registry: Registry, images: FixtureImages) -> None:
    images.push(registry, "layered", "harness/restart")
    registry.kill()
    registry.start()
    r = httpx.get(f"{registry.url}/v2/harness/restart/manifests/latest", headers={"Accept": ACCEPT})
    assert r.status_code == 200


def test_images_are_readable_by_umoci(images: FixtureImages) -> None:
    tags = subprocess.run(
        ["umoci", "ls", "--layout", str(images.layout)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(tags) == sorted(["busybox", "busybox-arm64", "multi", "layered"])
    assert len(images.manifest("layered")["layers"]) == 3
