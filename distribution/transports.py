"""Image names with a transport, as skopeo spells them, and the source/destination seams.

``docker://REF``   an image in a registry
``oci:DIR[:NAME]`` an OCI image layout directory; NAME is the ``ref.name`` annotation
                   (may contain ``:`` and ``/``; the directory may not contain ``:``)
``dir:PATH``       skopeo's directory form: ``manifest.json``, blobs named by hex,
                   ``version``, ``signature-N``
``REF``            (no transport) the local content store, by normalised reference

``ImageSource`` and ``ImageDestination`` are what ``imagecopy.copy_image`` moves bytes
between; each transport module implements them.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pycontainers.distribution.errors import ReferenceError
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.store import valid_ref_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pycontainers.distribution.digest import Digest
    from pycontainers.distribution.manifest import Descriptor
    from pycontainers.distribution.registry import RawManifest, RegistryClient
    from pycontainers.distribution.sigstore import Signature
    from pycontainers.distribution.store import BlobWriter


@dataclass(frozen=True)
class DockerName:
    ref: ImageRef
    transport: str = "docker"

    def __str__(self) -> str:
        return f"docker://{self.ref}"


@dataclass(frozen=True)
class OciName:
    path: Path
    name: str | None = None
    transport: str = "oci"

    def __str__(self) -> str:
        return f"oci:{self.path}" + (f":{self.name}" if self.name else "")


@dataclass(frozen=True)
class DirName:
    path: Path
    transport: str = "dir"

    def __str__(self) -> str:
        return f"dir:{self.path}"


@dataclass(frozen=True)
class StoreName:
    """An image in the local store; ``text`` as the user wrote it (may be a short name).

    ``root`` is the store's directory once the name is resolved against a store (the
    trust policy scopes store images by it).
    """

    text: str
    transport: str = "store"
    root: Path | None = None

    def __str__(self) -> str:
        return self.text


TransportName = DockerName | OciName | DirName | StoreName


def parse_transport_name(text: str) -> TransportName:
    """Parse ``docker://``, ``oci:``, ``dir:`` or a bare reference (the store)."""
    if text.startswith("docker://"):
        return DockerName(ImageRef.parse(text[len("docker://") :]))
    if text.startswith("docker:"):
        raise ReferenceError(f"invalid image name {text!r}: the docker transport is docker://REF")
    if text.startswith("oci:"):
        rest = text[len("oci:") :]
        path, sep, name = rest.partition(":")
        if not path:
            raise ReferenceError(f"invalid image name {text!r}: oci: needs a directory")
        if sep and name and not valid_ref_name(name):
            raise ReferenceError(f"invalid image name {text!r}: bad oci: image name {name!r}")
        return OciName(Path(path), name or None)
    if text.startswith("dir:"):
        path = text[len("dir:") :]
        if not path:
            raise ReferenceError(f"invalid image name {text!r}: dir: needs a path")
        return DirName(Path(path))
    for other in ("containers-storage:", "docker-archive:", "oci-archive:", "docker-daemon:"):
        if text.startswith(other):
            raise ReferenceError(
                f"invalid image name {text!r}: transport {other[:-1]!r} is not supported"
            )
    ImageRef.parse(text)  # validate now; short names resolve later
    return StoreName(text)


class ImageSource(Protocol):
    """Where ``copy_image`` reads an image from."""

    @property
    def name(self) -> TransportName: ...

    @property
    def client(self) -> RegistryClient | None:
        """The registry client, for trust checks that fetch signatures (None if local)."""
        ...

    async def get_manifest(self, digest: Digest | None = None) -> RawManifest:
        """The top-level manifest (``None``) or an instance of an index by digest."""
        ...

    def local_blob(self, desc: Descriptor) -> Path | None:
        """A verified local file holding the blob, if this source is on disk."""
        ...

    async def fetch_blob(
        self, desc: Descriptor, writer: BlobWriter, progress: ProgressFn | None
    ) -> None:
        """Stream the blob into ``writer`` and commit it (verifying)."""
        ...

    async def aclose(self) -> None: ...


class ImageDestination(Protocol):
    """Where ``copy_image`` writes an image to."""

    @property
    def name(self) -> TransportName: ...

    def claim(self, desc: Descriptor) -> AbstractAsyncContextManager[None]:
        """Exclusive right to write this blob (local stores lock; others need not)."""
        ...

    async def try_mount(self, desc: Descriptor, source: ImageSource) -> bool:
        """Get the blob without sending it (cross-repository mount); False if not."""
        ...

    async def has_blob(self, desc: Descriptor) -> bool: ...

    def blob_writer(self, desc: Descriptor, what: str) -> BlobWriter | None:
        """A writer for local destinations; None for a registry (use ``push_blob``)."""
        ...

    async def push_blob(
        self, desc: Descriptor, path: Path, source: ImageSource, progress: ProgressFn | None
    ) -> str:
        """Send a blob from a local file (registry destinations); may mount instead."""
        ...

    async def put_manifest(
        self, manifest: RawManifest, *, top_level: bool, source_digest: Digest | None = None
    ) -> None:
        """Store a manifest; ``top_level`` ones also get the destination's name.

        ``source_digest`` is the index the manifest was picked from, when it was.
        """
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SignatureSource(Protocol):
    """A source that keeps signatures beside its images (``docker://``, ``dir:``)."""

    async def get_signatures(self, manifest_digest: Digest) -> list[Signature]:
        """The sigstore signatures stored for ``manifest_digest`` (unverified)."""
        ...


@runtime_checkable
class SignatureDestination(Protocol):
    """A destination that can keep signatures: a copy carries them over, as skopeo's does."""

    async def put_signatures(self, manifest_digest: Digest, sigs: Sequence[Signature]) -> None: ...


class ProgressFn(Protocol):
    def __call__(self, nbytes: int) -> None: ...
