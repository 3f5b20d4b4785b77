"""Signatures found through the OCI 1.1 referrers API.

Mocked at the HTTP boundary (httpx.MockTransport) because no registry here implements
the referrers API: Debian's docker-registry 2.8 answers 404 (the real-registry tests in
test_sign_registry.py cover that answer as "no referrers"). Everything above HTTP is the
real client, policy and crypto.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from pycontainers.distribution import cosign_key
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.policy import parse_policy
from pycontainers.distribution.policy_eval import ImageRejected, Verdict
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.registry import ClientOptions, RegistryClient, RetryPolicy
from pycontainers.distribution.sigstore import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    make_payload,
    sign,
)
from pycontainers.distribution.trust import COSIGN_SIGNATURE_ARTIFACT, PolicyTrustCheck

HOST = "registry.test"
REPO = "team/app"
IMAGE_MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [],
    }
).encode()
IMAGE_DIGEST = Digest.of_bytes(IMAGE_MANIFEST)


def _registry(key: cosign_key.PrivateKey, referrers: bool) -> httpx.MockTransport:
    payload = make_payload(f"{HOST}/{REPO}:1", IMAGE_DIGEST)
    payload_digest = Digest.of_bytes(payload)
    sig_manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": COSIGN_SIGNATURE_ARTIFACT,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": str(Digest.of_bytes(b"{}")),
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
                    "digest": str(payload_digest),
                    "size": len(payload),
                    "annotations": {SIGNATURE_ANNOTATION: sign(key, payload)},
                }
            ],
            "subject": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": str(IMAGE_DIGEST),
                "size": len(IMAGE_MANIFEST),
            },
        }
    ).encode()
    sig_digest = Digest.of_bytes(sig_manifest)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": str(sig_digest),
                    "size": len(sig_manifest),
                    "artifactType": COSIGN_SIGNATURE_ARTIFACT,
                }
            ],
        }
    ).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v2/":
            return httpx.Response(200)
        if path == f"/v2/{REPO}/referrers/{IMAGE_DIGEST}" and referrers:
            return httpx.Response(
                200,
                content=index,
                headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
            )
        if path == f"/v2/{REPO}/manifests/{sig_digest}":
            return httpx.Response(
                200,
                content=sig_manifest,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
        if path == f"/v2/{REPO}/blobs/{payload_digest}":
            return httpx.Response(200, content=payload)
        return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND", "message": path}]})

    return httpx.MockTransport(handler)


def _check(tmp_path: Path, referrers: bool) -> Verdict:
    key = cosign_key.generate()
    pub = tmp_path / "k.pub"
    pub.write_bytes(cosign_key.public_key_pem(key))
    doc = {"default": [{"type": "sigstoreSigned", "keyPath": str(pub)}]}
    policy = parse_policy(json.dumps(doc).encode(), source="p.json")

    async def run() -> Verdict:
        options = ClientOptions(transport=_registry(key, referrers), retry=RetryPolicy(attempts=1))
        async with RegistryClient(HOST, options=options) as client:
            return await PolicyTrustCheck(policy).check(
                ImageRef.parse(f"{HOST}/{REPO}:1"), IMAGE_MANIFEST, IMAGE_DIGEST, client
            )

    return asyncio.run(run())


def test_signature_attached_as_a_referrer_is_found(tmp_path: Path) -> None:
    verdict = _check(tmp_path, referrers=True)
    assert verdict.accepted
    assert f"{HOST}/{REPO}@sha256:" in "".join(verdict.reasons)


def test_registry_without_referrers_api_means_no_signature(tmp_path: Path) -> None:
    with pytest.raises(ImageRejected, match="a signature is required, but none was found"):
        _check(tmp_path, referrers=False)
