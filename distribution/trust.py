"""Where the policy meets images: reading an image's manifest and signatures from a source.

``policy.evaluate`` is pure; this module does the I/O around it. A ``dir:`` image (skopeo's
directory form) has ``manifest.json`` and ``signature-N`` files. A registry image has its
manifest, and its signatures are the layers of the ``sha256-<hex>.sig`` attachment image
in the same repository (cosign's and containers/image's tag scheme) plus, where the
registry implements the OCI 1.1 referrers API, cosign signature artifacts that refer to
the manifest. docker-registry 2.8 (Debian's) has no referrers API and answers 404, which
means "none there"; the tag scheme is what works against it.

``PolicyTrustCheck`` is the pull path's hook: it runs on the top-level manifest (the one
the tag or digest names, an index for multi-platform images, as cosign signs it) before
any layer or config blob is fetched, and raises ``ImageRejected`` unless accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import (
    DistributionError,
    NotFound,
    RegistryError,
    TransportError,
)
from pycontainers.distribution.manifest import OCI_INDEX, Descriptor
from pycontainers.distribution.policy import Policy, Requirement
from pycontainers.distribution.policy_eval import (
    SignatureList,
    UnverifiedImage,
    Verdict,
    docker_image,
    docker_namespaces,
    enforce,
    path_image,
    scope_for,
)
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.sigstore import (
    MAX_PAYLOAD_SIZE,
    OCI_MANIFEST_MEDIA_TYPE,
    Signature,
    SignatureRejected,
    Why,
    attached_layers,
    read_dir_signatures,
    signature_tag,
)
from pycontainers.distribution.transports import DirName, OciName, StoreName, TransportName

# cosign's artifactType for signatures stored as OCI 1.1 referrers.
COSIGN_SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"


def dir_image(path: Path, as_reference: ImageRef | None = None) -> UnverifiedImage:
    """A ``dir:`` image; with ``as_reference`` it is judged as if it were that docker image."""
    if not path.is_dir():
        raise TransportError(f"dir:{path}: not a directory")
    try:
        manifest: bytes | None = (path / "manifest.json").read_bytes()
    except FileNotFoundError:
        manifest = None
    except OSError as exc:
        raise TransportError(f"dir:{path}: cannot read manifest.json: {exc.strerror}") from exc

    def signatures() -> SignatureList:
        return read_dir_signatures(path)

    if as_reference is not None:
        image = docker_image(as_reference, manifest, signatures)
        return replace(image, description=f"dir:{path} as docker://{as_reference}")
    return path_image("dir", path, manifest, signatures)


class SignatureClient(Protocol):
    """What reading signatures needs from a registry client (``RegistryClient`` has it)."""

    host: str

    async def get_manifest(
        self, repo: str, reference: str, *, accept: str = ..., what: str = ...
    ) -> _RawManifest: ...

    async def get_blob_bytes(self, repo: str, desc: Descriptor, *, limit: int = ...) -> bytes: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        scopes: list[str],
        what: str,
        headers: dict[str, str] | None = ...,
    ) -> _Response: ...


class _RawManifest(Protocol):
    @property
    def raw(self) -> bytes: ...


class _Response(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...


def needs_signatures(reqs: tuple[Requirement, ...]) -> bool:
    return any(r.type == "sigstoreSigned" and not r.unsupported for r in reqs)


async def registry_signatures(client: SignatureClient, repo: str, digest: Digest) -> SignatureList:
    """Every signature stored for ``digest`` in ``repo``: the ``.sig`` tag, then referrers."""
    out: list[Signature | SignatureRejected] = []
    tag = signature_tag(digest)
    origin = f"{client.host}/{repo}:{tag}"
    try:
        attachment = await client.get_manifest(
            repo, tag, accept=OCI_MANIFEST_MEDIA_TYPE, what=origin
        )
    except NotFound:
        attachment = None
    if attachment is not None:
        out += await _attachment_signatures(client, repo, attachment.raw, origin)
    out += await _referrer_signatures(client, repo, digest)
    return out


async def _attachment_signatures(
    client: SignatureClient, repo: str, manifest: bytes, origin: str
) -> list[Signature | SignatureRejected]:
    """The layers of one ``.sig`` image as signatures; payload blobs are digest-checked."""
    try:
        layers = attached_layers(manifest, origin=origin)
    except SignatureRejected as exc:
        return [exc]
    out: list[Signature | SignatureRejected] = []
    for layer in layers:
        if isinstance(layer, SignatureRejected):
            out.append(layer)
            continue
        desc = Descriptor(layer.media_type, layer.digest, layer.size)
        payload = await client.get_blob_bytes(repo, desc, limit=MAX_PAYLOAD_SIZE)
        out.append(layer.signature(payload))
    return out


async def _referrer_signatures(
    client: SignatureClient, repo: str, digest: Digest
) -> list[Signature | SignatureRejected]:
    """Signatures attached through the OCI 1.1 referrers API, where the registry has it."""
    what = f"{client.host}/{repo}: referrers of {digest}"
    try:
        resp = await client.request(
            "GET",
            f"/v2/{repo}/referrers/{digest}",
            scopes=[f"repository:{repo}:pull"],
            what=what,
            headers={"Accept": OCI_INDEX},
        )
    except (NotFound, RegistryError):
        return []  # no referrers API (docker-registry 2.8), or none there
    try:
        index = json.loads(resp.content)
        manifests = index.get("manifests") or []
    except (ValueError, AttributeError):
        return [SignatureRejected(f"{what}: referrers answer is not an index", Why.MALFORMED)]
    out: list[Signature | SignatureRejected] = []
    for entry in manifests:
        if not isinstance(entry, dict) or entry.get("artifactType") != COSIGN_SIGNATURE_ARTIFACT:
            continue
        ref_digest = entry.get("digest")
        if not isinstance(ref_digest, str):
            continue
        origin = f"{client.host}/{repo}@{ref_digest}"
        try:
            raw = await client.get_manifest(repo, ref_digest, accept=OCI_MANIFEST_MEDIA_TYPE)
        except DistributionError as exc:
            out.append(SignatureRejected(f"{origin}: {exc}", Why.MALFORMED))
            continue
        out += await _attachment_signatures(client, repo, raw.raw, origin)
    return out


@dataclass
class PolicyTrustCheck:
    """The pull path's trust hook: evaluate the policy before any blob is fetched."""

    policy: Policy

    async def check(
        self,
        ref: ImageRef,
        manifest: bytes,
        manifest_digest: Digest,
        client: SignatureClient,
        *,
        source_repo: str | None = None,
    ) -> Verdict:
        """Raise ``ImageRejected`` unless ``policy`` accepts ``ref`` with ``manifest``.

        Signatures are read from ``source_repo`` (default: ``ref``'s repository) only if
        the scope that applies asks for them.
        """
        sigs: SignatureList = []
        probe = docker_image(ref, manifest, list)
        _, reqs = scope_for(self.policy, probe)
        if needs_signatures(reqs):
            repo = source_repo or ref.repository
            sigs = await registry_signatures(client, repo, manifest_digest)
        prefetched = sigs
        return enforce(self.policy, docker_image(ref, manifest, lambda: prefetched))

    async def check_local(
        self, name: TransportName, manifest: bytes, manifest_digest: Digest
    ) -> Verdict:
        """Raise ``ImageRejected`` unless ``policy`` accepts a local source's image.

        Scopes as containers/image forms them: ``oci`` and ``dir`` by the resolved
        directory and its parents; the store (``containers-storage``) as
        ``[ROOT]REFERENCE``, then ``[ROOT]REPOSITORY`` and its parents, then ``[ROOT]``.
        """
        return enforce(self.policy, local_image(name, manifest))


def local_image(name: TransportName, manifest: bytes) -> UnverifiedImage:
    """A local copy source as the policy sees it (``docker://`` has ``docker_image``)."""
    if isinstance(name, DirName):
        path = name.path
        return path_image("dir", path, manifest, lambda: read_dir_signatures(path))
    if isinstance(name, OciName):
        # An OCI layout keeps no signatures; the image name inside the layout is not part
        # of the identity (containers/image: "$dir:$name" and "$dir:" may be one image).
        return path_image("oci", name.path, manifest, list)
    if isinstance(name, StoreName):
        return store_image(name.root, ImageRef.parse(name.text), manifest)
    raise TransportError(f"{name}: not a local transport")


def store_image(root: Path | None, ref: ImageRef, manifest: bytes) -> UnverifiedImage:
    """An image in the local store, scoped like containers/image's ``containers-storage``.

    The store keeps no signatures, so a ``sigstoreSigned`` scope refuses its images
    (nothing to verify); copies out of the store are judged by where they came from
    when they were pulled.
    """
    spec = f"[{root.resolve()}]" if root is not None else ""
    namespaces = [f"{spec}{n}" for n in docker_namespaces(ref) if not n.startswith("*.")]
    if spec:
        namespaces.append(spec)
    return UnverifiedImage(
        "containers-storage",
        (f"{spec}{ref}",),
        tuple(namespaces),
        ref,
        manifest,
        list,
        f"containers-storage:{spec}{ref}",
    )
