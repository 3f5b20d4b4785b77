"""Applying a policy to one image: find the scope, run its requirements, explain the verdict.

Pure except for reading key files (at evaluation time, like containers/image, so a bad
key only affects its own scope). Signatures are fetched lazily: only a
``sigstoreSigned`` requirement asks for them. A ``sigstoreSigned`` requirement accepts as
soon as one signature passes all three checks, in this order: the cryptographic
signature verifies with a trusted key, the payload names this manifest's digest, and its
identity satisfies ``signedIdentity``. When none passes, the verdict lists every
signature's reason and classifies the refusal by the signature that got furthest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import TrustError
from pycontainers.distribution.policy import Policy, Requirement, SignedIdentity
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.sigstore import (
    SIMPLE_SIGNING_MEDIA_TYPE,
    Signature,
    SignatureRejected,
    SignedClaims,
    Why,
    check_manifest_digest,
    verify_signature,
)


class ImageRejected(TrustError):
    """The policy refused an image; ``verdict`` says which scope, requirement and why."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.summary())
        self.verdict = verdict


SignatureList = Sequence[Signature | SignatureRejected]


@dataclass(frozen=True)
class UnverifiedImage:
    """What the policy looks at: where the image is, its manifest and its signatures.

    ``manifest`` is the exact bytes (None when the source has none);
    ``fetch_signatures`` is called at most once, and only if a requirement needs them.
    """

    transport: str
    identities: tuple[str, ...]
    namespaces: tuple[str, ...]
    docker_reference: ImageRef | None
    manifest: bytes | None
    fetch_signatures: Callable[[], SignatureList] = field(compare=False)
    description: str = ""

    @cached_property
    def signatures(self) -> SignatureList:
        return self.fetch_signatures()

    @property
    def manifest_digest(self) -> Digest | None:
        return None if self.manifest is None else Digest.of_bytes(self.manifest)


def docker_namespaces(ref: ImageRef) -> tuple[str, ...]:
    """containers/image's PolicyConfigurationNamespaces for a docker reference."""
    out = []
    name = ref.name
    while True:
        out.append(name)
        if "/" not in name:
            break
        name = name.rsplit("/", 1)[0]
    host = name.split(":", 1)[0]
    while "." in host:
        host = host.split(".", 1)[1]
        out.append(f"*.{host}")
    return tuple(out)


def docker_image(
    ref: ImageRef, manifest: bytes | None, fetch_signatures: Callable[[], SignatureList]
) -> UnverifiedImage:
    """An image as the ``docker`` transport sees it: scopes from ``ref``."""
    identities = [str(ref)]
    if ref.tag is not None and ref.digest is not None:
        identities += [f"{ref.name}@{ref.digest}", f"{ref.name}:{ref.tag}"]
    return UnverifiedImage(
        "docker",
        tuple(identities),
        docker_namespaces(ref),
        ref,
        manifest,
        fetch_signatures,
        f"docker://{ref}",
    )


def path_image(
    transport: str,
    path: Path,
    manifest: bytes | None,
    fetch_signatures: Callable[[], SignatureList],
    docker_reference: ImageRef | None = None,
) -> UnverifiedImage:
    """An image in a local directory (``dir:``, ``oci:``): scopes are the path and parents."""
    resolved = path.resolve()
    parents = tuple(str(p) for p in resolved.parents if str(p) != "/")
    return UnverifiedImage(
        transport,
        (str(resolved),),
        parents,
        docker_reference,
        manifest,
        fetch_signatures,
        f"{transport}:{path}",
    )


@dataclass(frozen=True)
class Verdict:
    """The outcome, with enough detail that an operator knows what to change."""

    accepted: bool
    image: str
    policy: str
    scope: str
    requirement: str | None
    reasons: tuple[str, ...]
    why: Why | None = None

    def summary(self) -> str:
        if self.accepted:
            return f"{self.image}: accepted by policy {self.policy} scope {self.scope}"
        what = f" requirement {self.requirement}" if self.requirement else ""
        cause = f" ({self.why.value})" if self.why else ""
        detail = "; ".join(self.reasons)
        return (
            f"{self.image}: rejected by policy {self.policy} scope {self.scope}{what}{cause}: "
            f"{detail}"
        )

    def explain(self) -> str:
        """Several lines for ``image verify``."""
        lines = [
            f"{'accepted' if self.accepted else 'rejected'}: {self.image}",
            f"  policy: {self.policy}",
            f"  scope: {self.scope}",
        ]
        if self.requirement:
            lines.append(f"  {'failed' if not self.accepted else 'checked'}: {self.requirement}")
        if self.why:
            lines.append(f"  why: {self.why.value}")
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)


def scope_for(policy: Policy, image: UnverifiedImage) -> tuple[str, tuple[Requirement, ...]]:
    """The most specific scope for ``image`` (see policy.py) and its requirements."""
    return policy.scope_for(image.transport, (*image.identities, *image.namespaces))


def evaluate(policy: Policy, image: UnverifiedImage) -> Verdict:
    """Check ``image`` against the scope that applies; every requirement must accept."""
    scope, reqs = scope_for(policy, image)

    def verdict(ok: bool, req: str | None, reasons: Iterable[str], why: Why | None) -> Verdict:
        return Verdict(ok, image.description, policy.source, scope, req, tuple(reasons), why)

    if image.manifest is None:
        return verdict(False, None, ["the image has no manifest"], Why.NO_MANIFEST)
    accepted: list[str] = []
    for req in reqs:
        try:
            accepted.append(_check(req, image))
        except SignatureRejected as exc:
            return verdict(False, req.describe(), [str(exc)], exc.why)
        except _AllRejected as exc:
            return verdict(False, req.describe(), exc.reasons, exc.why)
    return verdict(True, " and ".join(r.describe() for r in reqs), accepted, None)


def enforce(policy: Policy, image: UnverifiedImage) -> Verdict:
    """``evaluate``, raising ``ImageRejected`` unless accepted."""
    result = evaluate(policy, image)
    if not result.accepted:
        raise ImageRejected(result)
    return result


class _AllRejected(Exception):
    def __init__(self, reasons: list[str], why: Why) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.why = why


# How far a signature got before it failed; the furthest one explains the verdict best.
_PROGRESS = [Why.UNSUPPORTED, Why.MALFORMED, Why.OTHER_KEY, Why.OTHER_DIGEST, Why.IDENTITY]


def _check(req: Requirement, image: UnverifiedImage) -> str:
    if req.type == "insecureAcceptAnything":
        return "insecureAcceptAnything: accepted without checks"
    if req.type == "reject":
        raise SignatureRejected("this scope rejects every image", Why.REJECTED)
    if req.unsupported:
        raise SignatureRejected(f"{req.unsupported} by pycontainers", Why.UNSUPPORTED)
    return _check_sigstore(req, image)


def _check_sigstore(req: Requirement, image: UnverifiedImage) -> str:
    assert image.manifest is not None
    keys = req.load_keys()
    rejections: list[SignatureRejected] = []
    non_sigstore = other_attachments = 0
    for sig in image.signatures:
        if isinstance(sig, SignatureRejected):
            if sig.why is Why.UNSUPPORTED:
                non_sigstore += 1
            else:
                rejections.append(sig)
            continue
        if sig.mime_type != SIMPLE_SIGNING_MEDIA_TYPE:
            other_attachments += 1
            continue
        try:
            claims = verify_signature(sig, keys)
            check_manifest_digest(image.manifest, claims, origin=sig.origin)
            _check_identity(req.signed_identity, image, claims, sig.origin)
        except SignatureRejected as exc:
            rejections.append(exc)
            continue
        return (
            f"{sig.origin}: verified, signs {claims.manifest_digest} as {claims.docker_reference}"
        )
    if not rejections:
        extra = ""
        if non_sigstore or other_attachments:
            extra = (
                f" ({non_sigstore} non-sigstore signatures, "
                f"{other_attachments} other attachments ignored)"
            )
        raise SignatureRejected(
            f"a signature is required, but none was found{extra}", Why.NO_SIGNATURE
        )
    best = max(rejections, key=lambda r: _PROGRESS.index(r.why) if r.why in _PROGRESS else -1)
    raise _AllRejected([str(r) for r in rejections], best.why)


def _check_identity(
    identity: SignedIdentity, image: UnverifiedImage, claims: SignedClaims, origin: str
) -> None:
    if identity.matches(image.docker_reference, claims.docker_reference):
        return
    target = image.docker_reference or "an image without a docker reference"
    raise SignatureRejected(
        f"{origin}: signed identity {claims.docker_reference!r} does not match "
        f"{str(target)!r} under signedIdentity {identity.describe()}",
        Why.IDENTITY,
    )
