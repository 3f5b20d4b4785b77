"""Signing an image in a registry, the way cosign and skopeo attach signatures.

The manifest the registry serves for the reference (an index for a multi-platform
image: cosign signs what the tag names) is signed with a simple-signing payload, and
the signature is stored as a new layer of the ``sha256-<hex>.sig`` attachment image in
the same repository, next to any signatures already there. The payload names the
reference as given, with its tag (skopeo's choice, which the default
``matchRepoDigestOrExact`` identity accepts); a digest-only reference is signed as its
repository (cosign's choice). ``identity`` overrides both, like skopeo's
``--sign-identity``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pycontainers import __version__
from pycontainers.distribution.cosign_key import PrivateKey
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import NotFound
from pycontainers.distribution.manifest import Descriptor
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.sigstore import (
    OCI_CONFIG_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    Signature,
    attachment_config,
    attachment_layers,
    attachment_manifest,
    layer_descriptor,
    layer_matches,
    make_payload,
    sign,
    signature_tag,
)


class _RawManifest(Protocol):
    @property
    def raw(self) -> bytes: ...

    @property
    def digest(self) -> Digest: ...


class PushClient(Protocol):
    """What signing needs from a registry client (``RegistryClient`` has it)."""

    host: str

    async def get_manifest(
        self, repo: str, reference: str, *, accept: str = ..., what: str = ...
    ) -> _RawManifest: ...

    async def put_manifest(
        self, repo: str, reference: str, raw: bytes, media_type: str
    ) -> Digest: ...

    async def push_blob_bytes(self, repo: str, data: bytes, media_type: str) -> Descriptor: ...


@dataclass(frozen=True)
class SignResult:
    manifest_digest: Digest
    signed_identity: str
    attachment: str  # host/repo:sha256-<hex>.sig
    attachment_digest: Digest
    added: bool  # False when the same signature was already attached


def signed_identity_for(ref: ImageRef) -> str:
    if ref.tag is not None:
        return f"{ref.name}:{ref.tag}"
    return ref.name


async def sign_image(
    client: PushClient,
    ref: ImageRef,
    key: PrivateKey,
    *,
    identity: str | None = None,
    now: float | None = None,
) -> SignResult:
    """Sign what the registry serves for ``ref`` and push the ``.sig`` attachment."""
    repo = ref.repository
    served = await client.get_manifest(repo, ref.reference)
    docker_reference = identity or signed_identity_for(ref)
    payload = make_payload(
        docker_reference,
        served.digest,
        {"creator": f"pycontainers {__version__}", "timestamp": int(now or time.time())},
    )
    sig = Signature(SIMPLE_SIGNING_MEDIA_TYPE, payload, {SIGNATURE_ANNOTATION: sign(key, payload)})
    tag = signature_tag(served.digest)
    where = f"{client.host}/{repo}:{tag}"
    added, digest = await attach_signatures(client, repo, served.digest, [sig])
    return SignResult(served.digest, docker_reference, where, digest, bool(added))


async def attach_signatures(
    client: PushClient, repo: str, manifest_digest: Digest, sigs: Sequence[Signature]
) -> tuple[int, Digest]:
    """Add ``sigs`` to the ``.sig`` attachment of ``manifest_digest``; (how many new, digest).

    Signatures already attached (same payload, type and annotations) are not added twice,
    so copying an image with its signatures again changes nothing.
    """
    tag = signature_tag(manifest_digest)
    where = f"{client.host}/{repo}:{tag}"
    layers = await _existing_layers(client, repo, tag, where)
    added = 0
    for sig in sigs:
        if any(layer_matches(layer, sig) for layer in layers):
            continue
        await client.push_blob_bytes(repo, sig.payload, sig.mime_type)
        layers.append(layer_descriptor(sig))
        added += 1
    config = attachment_config([Digest.parse(layer["digest"]) for layer in layers])
    await client.push_blob_bytes(repo, config, OCI_CONFIG_MEDIA_TYPE)
    manifest = attachment_manifest(config, layers)
    digest = await client.put_manifest(repo, tag, manifest, OCI_MANIFEST_MEDIA_TYPE)
    return added, digest


async def _existing_layers(
    client: PushClient, repo: str, tag: str, where: str
) -> list[dict[str, Any]]:
    """The layers of the attachment already there, so signing adds instead of replacing."""
    try:
        existing = await client.get_manifest(repo, tag, accept=OCI_MANIFEST_MEDIA_TYPE, what=where)
    except NotFound:
        return []
    # An attachment we do not understand raises: replacing it would lose what others wrote.
    return [dict(layer) for layer in attachment_layers(existing.raw, origin=where)]
