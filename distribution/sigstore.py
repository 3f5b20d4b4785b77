"""Sigstore (cosign) signatures with keys: the payload, the crypto and where they live.

A cosign signature is three things that travel together: a *payload* (the
"simple signing" JSON naming the image's repository and manifest digest), a *MIME type*
(``application/vnd.dev.cosign.simplesigning.v1+json``) and *annotations*, of which
``dev.cosignproject.cosign/signature`` holds the base64 signature over the payload bytes.

In a registry they are the layers of an OCI image tagged ``sha256-<manifest hex>.sig`` in
the image's own repository: each layer's blob is a payload, its media type the MIME type,
its descriptor annotations the annotations. On disk (skopeo's ``dir:`` form) each is a
``signature-N`` file: ``\\0sigstore-json\\n`` followed by JSON with ``mimeType``,
``payload`` (base64) and ``annotations``. Both forms are read and written here exactly as
containers/image and cosign do, so signatures move between the tools.

Everything read from a signature is untrusted until ``verify_signature`` has checked the
cryptographic signature with a trusted key: only then is the payload parsed, and callers
still have to check its digest and identity against the image (see ``policy.py``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pycontainers.distribution.cosign_key import PrivateKey, PublicKey
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import DigestError, TrustError

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
SIGNATURE_TYPE = "cosign container image signature"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
DIR_SIGNATURE_PREFIX = b"\x00sigstore-json\n"
# A signature payload is a few hundred bytes; refuse to buffer absurd ones.
MAX_PAYLOAD_SIZE = 4 << 20


class Why(enum.Enum):
    """Why a signature (or an image) was refused, for messages and for tests."""

    NO_SIGNATURE = "no signature"
    NO_MANIFEST = "no manifest"
    MALFORMED = "malformed signature"
    OTHER_KEY = "signature by another key"
    OTHER_DIGEST = "payload for another digest"
    IDENTITY = "identity mismatch"
    UNSUPPORTED = "unsupported"
    KEY_UNUSABLE = "key unusable"
    REJECTED = "rejected by policy"


class SignatureRejected(TrustError):
    """One signature did not satisfy a requirement; ``why`` classifies the cause."""

    def __init__(self, message: str, why: Why) -> None:
        super().__init__(message)
        self.why = why


@dataclass(frozen=True)
class Signature:
    """One sigstore signature as found, untrusted. ``origin`` says where, for messages."""

    mime_type: str
    payload: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""


@dataclass(frozen=True)
class SignedClaims:
    """What a verified payload asserts: this repository/reference has this manifest."""

    docker_reference: str
    manifest_digest: str
    optional: Mapping[str, Any] | None = None


# --- the dir: form ----------------------------------------------------------------------


def from_dir_blob(blob: bytes, *, origin: str = "") -> Signature:
    """Parse one ``signature-N`` file; raises ``SignatureRejected(MALFORMED)``."""
    if not blob.startswith(DIR_SIGNATURE_PREFIX):
        if blob[:1] == b"\x00":
            raise SignatureRejected(f"{origin}: unknown signature format", Why.UNSUPPORTED)
        raise SignatureRejected(
            f"{origin}: a simple-signing (gpg) signature, not a sigstore one", Why.UNSUPPORTED
        )
    try:
        doc = json.loads(blob[len(DIR_SIGNATURE_PREFIX) :])
        if not isinstance(doc, dict) or set(doc) - {"mimeType", "payload", "annotations"}:
            raise ValueError("want an object with mimeType, payload, annotations")
        mime, payload_b64 = doc.get("mimeType"), doc.get("payload")
        annotations = doc.get("annotations") or {}
        if not isinstance(mime, str) or not isinstance(payload_b64, str):
            raise ValueError("mimeType and payload must be strings")
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise ValueError("annotations must map strings to strings")
        payload = base64.b64decode(payload_b64, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SignatureRejected(
            f"{origin}: malformed sigstore signature: {exc}", Why.MALFORMED
        ) from exc
    return Signature(mime, payload, dict(annotations), origin)


def to_dir_blob(sig: Signature) -> bytes:
    doc = {
        "mimeType": sig.mime_type,
        "payload": base64.b64encode(sig.payload).decode(),
        "annotations": dict(sig.annotations),
    }
    return DIR_SIGNATURE_PREFIX + json.dumps(doc, separators=(",", ":")).encode()


def read_dir_signatures(path: Path) -> list[Signature | SignatureRejected]:
    """The ``signature-1``, ``signature-2``, ... files of a ``dir:`` image, in order.

    A file that does not parse is returned as its rejection, so one bad file is reported
    instead of hiding the others (containers/image stops at the first gap in numbering).
    """
    out: list[Signature | SignatureRejected] = []
    n = 1
    while True:
        f = path / f"signature-{n}"
        try:
            blob = f.read_bytes()
        except FileNotFoundError:
            return out
        try:
            out.append(from_dir_blob(blob, origin=f"signature-{n}"))
        except SignatureRejected as exc:
            out.append(exc)
        n += 1


# --- the registry form (the .sig attachment image) --------------------------------------


def signature_tag(manifest_digest: Digest) -> str:
    """The tag cosign and containers/image use for an image's signatures."""
    return f"{manifest_digest.algorithm}-{manifest_digest.hex}.sig"


def attachment_layers(manifest: bytes, *, origin: str) -> list[dict[str, Any]]:
    """The layer descriptors of a ``.sig`` manifest; raises ``SignatureRejected``."""
    try:
        doc = json.loads(manifest)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        media = doc.get("mediaType", OCI_MANIFEST_MEDIA_TYPE)
        if media != OCI_MANIFEST_MEDIA_TYPE or doc.get("schemaVersion") != 2:
            raise ValueError(f"unexpected manifest type {media!r}: want {OCI_MANIFEST_MEDIA_TYPE}")
        layers = doc.get("layers")
        if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
            raise ValueError("layers is not a list of descriptors")
    except ValueError as exc:
        raise SignatureRejected(
            f"{origin}: malformed signature attachment: {exc}", Why.MALFORMED
        ) from exc
    return layers


@dataclass(frozen=True)
class AttachedLayer:
    """One layer descriptor of a ``.sig`` image: where a signature's payload blob is."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str]
    origin: str

    def signature(self, payload: bytes) -> Signature:
        """The signature, given the payload blob (already checked against ``digest``)."""
        return Signature(self.media_type, payload, dict(self.annotations), self.origin)


def attached_layers(manifest: bytes, *, origin: str) -> list[AttachedLayer | SignatureRejected]:
    """Every layer of a ``.sig`` manifest; a malformed descriptor becomes its rejection."""
    out: list[AttachedLayer | SignatureRejected] = []
    for i, layer in enumerate(attachment_layers(manifest, origin=origin)):
        where = f"{origin} layer {i}"
        try:
            digest = Digest.parse(layer.get("digest", ""))
            size = layer.get("size")
            media = layer.get("mediaType")
            annotations = layer.get("annotations") or {}
            if (
                not isinstance(size, int)
                or isinstance(size, bool)
                or not 0 <= size <= MAX_PAYLOAD_SIZE
            ):
                raise ValueError(f"bad size {size!r}")
            if not isinstance(media, str) or not media:
                raise ValueError("no mediaType")
            if not isinstance(annotations, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
            ):
                raise ValueError("annotations must map strings to strings")
        except (ValueError, DigestError) as exc:
            out.append(SignatureRejected(f"{where}: malformed descriptor: {exc}", Why.MALFORMED))
            continue
        out.append(AttachedLayer(media, digest, size, dict(annotations), where))
    return out


def attachment_config(diff_ids: Sequence[Digest]) -> bytes:
    """The (empty) image config of a ``.sig`` image, as containers/image writes it."""
    doc = {
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [str(d) for d in diff_ids]},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def layer_descriptor(sig: Signature) -> dict[str, Any]:
    desc: dict[str, Any] = {
        "mediaType": sig.mime_type,
        "digest": str(Digest.of_bytes(sig.payload)),
        "size": len(sig.payload),
    }
    if sig.annotations:
        desc["annotations"] = dict(sig.annotations)
    return desc


def attachment_manifest(config: bytes, layers: Sequence[Mapping[str, Any]]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": OCI_CONFIG_MEDIA_TYPE,
            "digest": str(Digest.of_bytes(config)),
            "size": len(config),
        },
        "layers": [dict(x) for x in layers],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def layer_matches(layer: Mapping[str, Any], sig: Signature) -> bool:
    """Whether ``layer`` already carries ``sig`` (so signing twice adds nothing)."""
    want = layer_descriptor(sig)
    return all(layer.get(k) == want.get(k) for k in ("mediaType", "digest", "size")) and (
        layer.get("annotations") or {}
    ) == dict(sig.annotations)


# --- payload ------------------------------------------------------------------------------


def make_payload(
    docker_reference: str, manifest_digest: Digest, optional: Mapping[str, Any] | None = None
) -> bytes:
    """The simple-signing payload, byte for byte in cosign's field order."""
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": str(manifest_digest)},
            "type": SIGNATURE_TYPE,
        },
        "optional": dict(optional) if optional is not None else None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def parse_payload(payload: bytes, *, origin: str = "") -> SignedClaims:
    """Parse a payload strictly, as containers/image does: unknown critical fields fail.

    Only call this on a payload whose signature has been verified.
    """
    try:
        doc = json.loads(payload)
        if not isinstance(doc, dict) or set(doc) - {"critical", "optional"}:
            raise ValueError("want an object with critical and optional")
        critical = doc.get("critical")
        if not isinstance(critical, dict) or set(critical) != {"identity", "image", "type"}:
            raise ValueError("critical must have exactly identity, image and type")
        if critical["type"] != SIGNATURE_TYPE:
            raise ValueError(f"type is {critical['type']!r}, want {SIGNATURE_TYPE!r}")
        identity, image = critical["identity"], critical["image"]
        if not isinstance(identity, dict) or set(identity) != {"docker-reference"}:
            raise ValueError("critical.identity must have exactly docker-reference")
        if not isinstance(image, dict) or set(image) != {"docker-manifest-digest"}:
            raise ValueError("critical.image must have exactly docker-manifest-digest")
        ref, digest = identity["docker-reference"], image["docker-manifest-digest"]
        if not isinstance(ref, str) or not isinstance(digest, str):
            raise ValueError("docker-reference and docker-manifest-digest must be strings")
        optional = doc.get("optional")
        if optional is not None and not isinstance(optional, dict):
            raise ValueError("optional must be an object or null")
    except ValueError as exc:
        raise SignatureRejected(f"{origin}: malformed payload: {exc}", Why.MALFORMED) from exc
    return SignedClaims(ref, digest, optional)


# --- crypto ------------------------------------------------------------------------------


def sign(key: PrivateKey, payload: bytes) -> str:
    """The base64 signature cosign puts in the annotation.

    ECDSA: ASN.1 DER over SHA-256; RSA: PKCS#1 v1.5 with SHA-256; Ed25519: pure Ed25519
    over the payload, which is what containers/image verifies.
    """
    if isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = key.sign(payload)
    return base64.b64encode(raw).decode()


def check_signature(key: PublicKey, payload: bytes, raw: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(raw, payload)
    except InvalidSignature:
        return False
    return True


def verify_signature(sig: Signature, keys: Sequence[PublicKey]) -> SignedClaims:
    """Check ``sig`` against any of ``keys`` and return its (now trusted) claims.

    Raises ``SignatureRejected``: ``MALFORMED`` without the annotation, ``OTHER_KEY`` if
    no key verifies it. Digest and identity are the caller's to check.
    """
    encoded = sig.annotations.get(SIGNATURE_ANNOTATION)
    if encoded is None:
        raise SignatureRejected(
            f"{sig.origin}: no {SIGNATURE_ANNOTATION} annotation", Why.MALFORMED
        )
    try:
        # Go's base64 decoder skips newlines, and PKI-issued annotations contain them.
        raw = base64.b64decode("".join(encoded.split()), validate=True)
    except binascii.Error as exc:
        raise SignatureRejected(
            f"{sig.origin}: {SIGNATURE_ANNOTATION} is not base64", Why.MALFORMED
        ) from exc
    if not any(check_signature(k, sig.payload, raw) for k in keys):
        which = "the trusted key" if len(keys) == 1 else f"any of the {len(keys)} trusted keys"
        raise SignatureRejected(
            f"{sig.origin}: cryptographic signature does not verify with {which} "
            "(signed by another key, or tampered with)",
            Why.OTHER_KEY,
        )
    return parse_payload(sig.payload, origin=sig.origin)


def check_manifest_digest(manifest: bytes, claims: SignedClaims, *, origin: str) -> None:
    """Raise unless ``manifest`` hashes to the digest the payload names.

    Docker schema 1 manifests carry JWS signatures that containers/image strips before
    hashing; we do not support schema 1, so such a manifest is refused, never matched.
    """
    try:
        want = Digest.parse(claims.manifest_digest)
    except DigestError as exc:
        raise SignatureRejected(f"{origin}: malformed payload: {exc}", Why.MALFORMED) from exc
    try:
        doc = json.loads(manifest)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("schemaVersion") == 1:
        raise SignatureRejected(
            f"{origin}: the image manifest is docker schema 1, whose digest cannot be verified",
            Why.UNSUPPORTED,
        )
    got = Digest.of_bytes(manifest, want.algorithm)
    if got != want:
        raise SignatureRejected(
            f"{origin}: payload signs manifest {want}, but this image's manifest is {got}",
            Why.OTHER_DIGEST,
        )
