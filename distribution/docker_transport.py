"""The ``docker://`` transport: images in a registry, as copy source and destination.

``ConnectOptions`` gathers what decides how we reach a registry (TLS, CA bundle,
credentials, auth file, retries); ``open_client`` applies registries.conf (insecure
registries) and the auth files to build a ``RegistryClient`` for one reference.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pycontainers.distribution import authfile
from pycontainers.distribution.authfile import Credentials
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import DigestMismatch, TransportError
from pycontainers.distribution.manifest import Descriptor
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.registries_conf import RegistriesConf
from pycontainers.distribution.registry import (
    ClientOptions,
    RawManifest,
    RegistryClient,
    RetryPolicy,
)
from pycontainers.distribution.signing import attach_signatures
from pycontainers.distribution.sigstore import Signature
from pycontainers.distribution.store import BlobWriter
from pycontainers.distribution.transports import DockerName, ImageSource, ProgressFn


@dataclass
class ConnectOptions:
    """How to reach registries: TLS, credentials, retries (CLI flags end up here)."""

    tls_verify: bool | None = None  # None: registries.conf decides; loopback is insecure
    ca_bundle: str | None = None
    credentials: Credentials | None = None
    authfile: Path | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    chunk_size: int | None = None
    registries: RegistriesConf = field(default_factory=RegistriesConf)
    transport: httpx.AsyncBaseTransport | None = None
    event_hooks: dict[str, list[Callable[..., Any]]] | None = None


def open_client(ref: ImageRef, opts: ConnectOptions) -> RegistryClient:
    creds = opts.credentials
    if creds is None:
        creds = authfile.lookup(
            ref.domain, ref.repository, [opts.authfile] if opts.authfile else None
        )
    insecure: bool | None = None  # the client's default: loopback only
    if opts.tls_verify is not None:
        insecure = not opts.tls_verify
    elif opts.registries.is_insecure(ref.domain):
        insecure = True
    return RegistryClient(
        ref.api_host,
        credentials=creds,
        options=ClientOptions(
            insecure=insecure,
            ca_bundle=opts.ca_bundle,
            retry=opts.retry,
            chunk_size=opts.chunk_size,
            transport=opts.transport,
            event_hooks=opts.event_hooks,
        ),
    )


class DockerSource:
    def __init__(self, name: DockerName, client: RegistryClient) -> None:
        self.name = name
        self._client = client

    @property
    def ref(self) -> ImageRef:
        return self.name.ref

    @property
    def client(self) -> RegistryClient:
        return self._client

    async def get_manifest(self, digest: Digest | None = None) -> RawManifest:
        reference = str(digest) if digest is not None else self.ref.reference
        what = str(self.ref) if digest is None else f"{self.ref.name}@{digest}"
        return await self._client.get_manifest(self.ref.repository, reference, what=what)

    def local_blob(self, desc: Descriptor) -> Path | None:
        return None

    async def fetch_blob(
        self, desc: Descriptor, writer: BlobWriter, progress: ProgressFn | None
    ) -> None:
        await self._client.fetch_blob(
            self.ref.repository,
            desc,
            writer,
            progress=progress,
            what=f"{self.ref}: blob {desc.digest}",
        )

    async def get_signatures(self, manifest_digest: Digest) -> list[Signature]:
        """The ``.sig`` attachment's (and referrers') signatures; malformed ones are dropped."""
        from pycontainers.distribution.trust import registry_signatures

        found = await registry_signatures(self._client, self.ref.repository, manifest_digest)
        return [s for s in found if isinstance(s, Signature)]

    async def aclose(self) -> None:
        await self._client.aclose()


class DockerDestination:
    def __init__(self, name: DockerName, client: RegistryClient) -> None:
        self.name = name
        self.client = client

    @property
    def ref(self) -> ImageRef:
        return self.name.ref

    @contextlib.asynccontextmanager
    async def claim(self, desc: Descriptor) -> AsyncIterator[None]:
        yield

    async def has_blob(self, desc: Descriptor) -> bool:
        return await self.client.blob_exists(self.ref.repository, desc.digest)

    def blob_writer(self, desc: Descriptor, what: str) -> BlobWriter | None:
        return None

    async def push_blob(
        self, desc: Descriptor, path: Path, source: ImageSource, progress: ProgressFn | None
    ) -> str:
        return await self.client.push_blob(self.ref.repository, desc, path, progress=progress)

    async def try_mount(self, desc: Descriptor, source: ImageSource) -> bool:
        """Cross-repository mount when the source is another repo on this registry."""
        if not (isinstance(source, DockerSource) and source.client.host == self.client.host):
            return False
        if source.ref.repository == self.ref.repository:
            return False
        return await self.client.mount_blob(self.ref.repository, desc.digest, source.ref.repository)

    async def put_manifest(
        self, manifest: RawManifest, *, top_level: bool, source_digest: Digest | None = None
    ) -> None:
        if top_level and self.ref.digest is not None and manifest.digest != self.ref.digest:
            raise DigestMismatch(
                f"{self.ref}: the manifest to push is {manifest.digest}, "
                f"not the digest named in the destination"
            )
        tagged = top_level and self.ref.tag is not None
        reference = self.ref.tag if tagged and self.ref.tag else str(manifest.digest)
        if not manifest.media_type:
            raise TransportError(f"{self.ref}: manifest {manifest.digest} has no media type")
        await self.client.put_manifest(
            self.ref.repository, reference, manifest.raw, manifest.media_type
        )

    async def put_signatures(self, manifest_digest: Digest, sigs: Sequence[Signature]) -> None:
        """Push ``sigs`` as layers of the ``sha256-<hex>.sig`` attachment (merged)."""
        await attach_signatures(self.client, self.ref.repository, manifest_digest, sigs)

    async def aclose(self) -> None:
        await self.client.aclose()
