"""Media types, descriptors, manifests, indexes and image configs, parsed from raw bytes.

Each parsed document keeps the exact bytes it came from (``raw``) and their digest:
digests are always of the bytes received, never of a re-serialisation. Parsing is
strict where a mistake could mislead us (digests, sizes, media types) and lenient about
fields we do not use, as the OCI image spec asks of consumers.

Docker schema 1 manifests are refused with a clear message: they carry no content
digests for the config and are signed with a scheme nobody verifies any more.
"""

from __future__ import annotations

import json
import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import (
    DigestError,
    ManifestError,
    NoMatchingPlatform,
    UnsupportedMediaType,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
# On a store entry picked from an index: the index's digest, i.e. what the tag pointed at
# in the registry (a HEAD on the tag answers with it). Our own key; other tools ignore it.
ANNOTATION_SOURCE_DIGEST = "io.pycontainers.source.digest"

IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES = frozenset(
    {
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        OCI_LAYER_NONDIST,
        OCI_LAYER_NONDIST_GZIP,
        OCI_LAYER_NONDIST_ZSTD,
        DOCKER_LAYER_GZIP,
        DOCKER_FOREIGN_LAYER,
    }
)

# What we send in Accept when fetching a manifest: every type we can parse, so a
# registry never down-converts to schema 1 for us.
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])

_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


@dataclass(frozen=True)
class Platform:
    """os/architecture/variant as the image spec and Go's GOOS/GOARCH name them."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os/arch[/variant]``, as ``--platform`` takes it."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ManifestError(f"invalid platform {text!r}: want os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, obj: Any, *, what: str) -> Platform:
        if not isinstance(obj, dict):
            raise ManifestError(f"{what}: platform is not an object")
        os_, arch = obj.get("os"), obj.get("architecture")
        if not isinstance(os_, str) or not isinstance(arch, str):
            raise ManifestError(f"{what}: platform needs string os and architecture")
        variant = obj.get("variant")
        os_version = obj.get("os.version")
        return cls(
            os_,
            arch,
            variant if isinstance(variant, str) and variant else None,
            os_version if isinstance(os_version, str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    arch = _GOARCH.get(machine, machine)
    variant = None
    if arch == "arm64":
        variant = "v8"
    elif machine.startswith("armv"):
        variant = machine[3:5]
    return Platform("linux", arch, variant)


@dataclass(frozen=True)
class Descriptor:
    """A reference to content: media type, digest and size (plus optional extras)."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, obj: Any, *, what: str) -> Descriptor:
        if not isinstance(obj, dict):
            raise ManifestError(f"{what}: descriptor is not an object")
        media_type = obj.get("mediaType")
        if not isinstance(media_type, str) or not media_type:
            raise ManifestError(f"{what}: descriptor has no mediaType")
        raw_digest = obj.get("digest")
        if not isinstance(raw_digest, str):
            raise ManifestError(f"{what}: descriptor has no digest")
        try:
            digest = Digest.parse(raw_digest)
        except DigestError as exc:
            raise ManifestError(f"{what}: {exc}") from exc
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{what}: descriptor {digest} has no valid size")
        urls = obj.get("urls") or []
        annotations = obj.get("annotations") or {}
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ManifestError(f"{what}: descriptor {digest} has invalid urls")
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise ManifestError(f"{what}: descriptor {digest} has invalid annotations")
        plat = obj.get("platform")
        artifact_type = obj.get("artifactType")
        return cls(
            media_type,
            digest,
            size,
            tuple(urls),
            dict(annotations),
            Platform.from_json(plat, what=what) if plat is not None else None,
            artifact_type if isinstance(artifact_type, str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            self.urls,
            dict(annotations),
            self.platform,
            self.artifact_type,
        )


@dataclass(frozen=True)
class ImageManifest:
    """An OCI image manifest or Docker schema 2 manifest, with the bytes it came from."""

    raw: bytes
    digest: Digest
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None

    def blobs(self) -> tuple[Descriptor, ...]:
        """The config first, then the layers: everything a pull must fetch."""
        return (self.config, *self.layers)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))


@dataclass(frozen=True)
class ImageIndex:
    """An OCI image index or Docker manifest list, with the bytes it came from."""

    raw: bytes
    digest: Digest
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))

    def select(self, wanted: Platform | None = None, *, what: str = "image") -> Descriptor:
        """The manifest for ``wanted`` (default: the host), as containerd matches it.

        os and architecture must be equal; a variant only has to match when both sides
        name one, and an exact variant wins over an unspecified one. Entries that are
        not image manifests (attestations, nested indexes) are skipped.
        """
        want = wanted or host_platform()
        best: Descriptor | None = None
        for desc in self.manifests:
            plat = desc.platform
            if plat is None or desc.media_type not in IMAGE_MANIFEST_TYPES:
                continue
            if plat.os != want.os or plat.architecture != want.architecture:
                continue
            if want.variant and plat.variant and want.variant != plat.variant:
                continue
            if plat.variant == want.variant:
                return desc
            if best is None:
                best = desc
        if best is not None:
            return best
        have = sorted({str(d.platform) for d in self.manifests if d.platform is not None})
        raise NoMatchingPlatform(
            f"{what}: no manifest for platform {want} in the index "
            f"(it has: {', '.join(have) or 'none'})"
        )


Manifest = ImageManifest | ImageIndex


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config (OCI or Docker) this project uses, plus the raw bytes."""

    raw: bytes
    digest: Digest
    platform: Platform
    diff_ids: tuple[Digest, ...]
    config: Mapping[str, Any]
    created: str | None
    history: tuple[Mapping[str, Any], ...]

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.raw)  # type: ignore[no-any-return]


def _load_json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{what}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ManifestError(f"{what}: not a JSON object")
    return doc


def _annotations(doc: dict[str, Any], what: str) -> dict[str, str]:
    ann = doc.get("annotations") or {}
    if not isinstance(ann, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in ann.items()
    ):
        raise ManifestError(f"{what}: invalid annotations")
    return ann


def detect_media_type(raw: bytes, declared: str | None = None, *, what: str = "manifest") -> str:
    """The manifest's media type from its ``mediaType`` field, else ``declared``, else shape.

    Registries send ``Content-Type``; an OCI manifest may omit ``mediaType``, and an
    oci: layout gives only the descriptor's type. Schema 1 is refused here.
    """
    doc = _load_json(raw, what)
    inner = doc.get("mediaType")
    if inner is not None and not isinstance(inner, str):
        raise ManifestError(f"{what}: mediaType is not a string")
    declared = (declared or "").split(";")[0].strip() or None
    if doc.get("schemaVersion") == 1 or inner in SCHEMA1_TYPES or declared in SCHEMA1_TYPES:
        raise UnsupportedMediaType(
            f"{what}: docker schema 1 manifests are not supported "
            "(push the image again with a current docker or skopeo to get schema 2)"
        )
    if isinstance(inner, str) and inner:
        return inner
    if declared and declared in MANIFEST_TYPES:
        return declared
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    if declared:
        return declared
    raise ManifestError(f"{what}: cannot tell what kind of manifest this is (no mediaType)")


def parse_manifest(raw: bytes, declared: str | None = None, *, what: str = "manifest") -> Manifest:
    """Parse an image manifest or index from the exact bytes received."""
    media_type = detect_media_type(raw, declared, what=what)
    doc = _load_json(raw, what)
    digest = Digest.of_bytes(raw)
    if media_type not in MANIFEST_TYPES:
        raise UnsupportedMediaType(f"{what}: unsupported manifest media type {media_type!r}")
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"{what}: schemaVersion must be 2, got {doc.get('schemaVersion')!r}")
    annotations = _annotations(doc, what)
    if media_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError(f"{what}: index has no manifests list")
        return ImageIndex(
            raw,
            digest,
            media_type,
            tuple(Descriptor.from_json(e, what=what) for e in entries),
            annotations,
        )
    config = doc.get("config")
    layers = doc.get("layers")
    if config is None:
        raise ManifestError(f"{what}: manifest has no config descriptor")
    if not isinstance(layers, list):
        raise ManifestError(f"{what}: manifest has no layers list")
    subject = doc.get("subject")
    return ImageManifest(
        raw,
        digest,
        media_type,
        Descriptor.from_json(config, what=what),
        tuple(Descriptor.from_json(layer, what=what) for layer in layers),
        annotations,
        Descriptor.from_json(subject, what=what) if subject is not None else None,
    )


def parse_config(raw: bytes, *, what: str = "image config") -> ImageConfig:
    doc = _load_json(raw, what)
    os_, arch = doc.get("os"), doc.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str):
        raise ManifestError(f"{what}: needs string os and architecture")
    variant = doc.get("variant")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise ManifestError(f"{what}: rootfs.diff_ids missing")
    try:
        diff_ids = tuple(Digest.parse(d) for d in rootfs["diff_ids"])
    except DigestError as exc:
        raise ManifestError(f"{what}: rootfs.diff_ids: {exc}") from exc
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise ManifestError(f"{what}: config is not an object")
    history = doc.get("history") or []
    created = doc.get("created")
    return ImageConfig(
        raw,
        Digest.of_bytes(raw),
        Platform(os_, arch, variant if isinstance(variant, str) and variant else None),
        diff_ids,
        config,
        created if isinstance(created, str) else None,
        tuple(h for h in history if isinstance(h, dict)) if isinstance(history, list) else (),
    )
