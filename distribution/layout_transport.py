"""OCI image layouts as copy source and destination: ``oci:DIR[:NAME]`` and the local store.

Both are a ``ContentStore``; the store is just the layout at the storage root whose
names are full references. A destination holds the store's gc lock (shared) from open
to close, so ``prune`` never removes blobs written but not yet tagged, and takes a
per-blob lock while writing a blob, so concurrent pulls of overlapping images fetch
each shared blob once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import (
    BlobNotFound,
    ImageNotKnown,
    StoreError,
    TransportError,
)
from pycontainers.distribution.manifest import (
    ANNOTATION_SOURCE_DIGEST,
    Descriptor,
    detect_media_type,
)
from pycontainers.distribution.registry import RawManifest, RegistryClient
from pycontainers.distribution.store import BlobWriter, ContentStore, FileLock
from pycontainers.distribution.transports import (
    ImageSource,
    OciName,
    ProgressFn,
    StoreName,
)


class LayoutSource:
    """Reads one named image (or the only image) from an OCI layout."""

    def __init__(self, name: OciName | StoreName, store: ContentStore, image: str | None) -> None:
        self.name = name
        self.store = store
        self.image = image

    @property
    def client(self) -> RegistryClient | None:
        return None

    def _top(self) -> Descriptor:
        if self.image is not None:
            return self.store.resolve(self.image)
        entries = self.store.images()
        all_entries = self.store.entries()
        if len(all_entries) == 1:
            return all_entries[0]
        names = ", ".join(i.name for i in entries) or "none"
        raise ImageNotKnown(
            f"{self.name}: the layout holds {len(all_entries)} images; name one (has: {names})"
        )

    async def get_manifest(self, digest: Digest | None = None) -> RawManifest:
        what = str(self.name) if digest is None else f"{self.name}@{digest}"
        if digest is None:
            desc = self._top()
            digest, declared = desc.digest, desc.media_type
        else:
            declared = None
        try:
            raw = self.store.read_blob(digest)
        except BlobNotFound as exc:
            raise ImageNotKnown(f"{what}: manifest {digest} missing from the layout") from exc
        digest.verify_bytes(raw, what=f"{what}: manifest")
        return RawManifest(raw, detect_media_type(raw, declared, what=what), digest)

    def local_blob(self, desc: Descriptor) -> Path | None:
        return self.store.blob_path(desc.digest) if self.store.has_blob(desc) else None

    async def fetch_blob(
        self, desc: Descriptor, writer: BlobWriter, progress: ProgressFn | None
    ) -> None:
        raise BlobNotFound(f"{self.name}: blob {desc.digest} is missing from the layout")

    async def aclose(self) -> None:
        return None


class LayoutDestination:
    """Writes an image into an OCI layout under one name."""

    def __init__(self, name: OciName | StoreName, store: ContentStore, image: str) -> None:
        self.name = name
        self.store = store
        self.image = image
        self._gc: FileLock | None = None

    async def open(self) -> LayoutDestination:
        await asyncio.to_thread(self.store.init)
        gc = self.store.gc_lock()
        await gc.acquire_async()
        self._gc = gc
        return self

    @contextlib.asynccontextmanager
    async def claim(self, desc: Descriptor) -> AsyncIterator[None]:
        """Hold the blob's lock: a second writer waits, then finds the blob present."""
        lock = FileLock(self.store.ingest_dir / f"{desc.digest.hex}.lock")
        self.store.ingest_dir.mkdir(parents=True, exist_ok=True)
        await lock.acquire_async()
        try:
            yield
        finally:
            lock.release()

    async def try_mount(self, desc: Descriptor, source: ImageSource) -> bool:
        return False

    async def has_blob(self, desc: Descriptor) -> bool:
        return self.store.has_blob(desc)

    def blob_writer(self, desc: Descriptor, what: str) -> BlobWriter | None:
        return self.store.blob_writer(desc, what=what, background=True)

    async def push_blob(
        self, desc: Descriptor, path: Path, source: ImageSource, progress: ProgressFn | None
    ) -> str:
        raise TransportError(f"{self.name}: a layout is written through blob_writer")

    async def put_manifest(
        self, manifest: RawManifest, *, top_level: bool, source_digest: Digest | None = None
    ) -> None:
        desc = self.store.put_bytes(manifest.raw, manifest.media_type)
        if top_level:
            extra = {ANNOTATION_SOURCE_DIGEST: str(source_digest)} if source_digest else {}
            self.store.tag(self.image, desc, annotations=extra)

    async def aclose(self) -> None:
        if self._gc is not None:
            self._gc.release()
            self._gc = None


def oci_source(name: OciName) -> LayoutSource:
    store = ContentStore(name.path)
    store.check_layout()
    return LayoutSource(name, store, name.name)


async def oci_destination(name: OciName) -> LayoutDestination:
    if not name.name:
        raise TransportError(f"{name}: an oci: destination needs a name (oci:DIR:NAME)")
    try:
        return await LayoutDestination(name, ContentStore(name.path), name.name).open()
    except OSError as exc:
        raise StoreError(f"{name}: cannot create the layout ({exc.strerror})") from exc
