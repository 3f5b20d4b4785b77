"""skopeo's ``dir:PATH`` transport: one image as plain files in a directory.

Format (containers/image ``directory`` transport, version 1.1): ``version`` holds
``Directory Transport Version: 1.1``; ``manifest.json`` is the top-level manifest;
blobs are files named by their digest's hex; instances of a copied index are
``HEX.manifest.json``; signatures are ``signature-1``, ``signature-2``, ... (the
trust part reads those). Blobs land through a ``BlobWriter``, so only verified files
appear under their final names.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import BlobNotFound, ImageNotKnown, TransportError
from pycontainers.distribution.manifest import Descriptor, detect_media_type
from pycontainers.distribution.registry import RawManifest, RegistryClient
from pycontainers.distribution.sigstore import Signature, read_dir_signatures, to_dir_blob
from pycontainers.distribution.store import BlobWriter, write_file_atomic
from pycontainers.distribution.transports import DirName, ImageSource, ProgressFn

VERSION = b"Directory Transport Version: 1.1\n"


def _manifest_path(root: Path, digest: Digest | None) -> Path:
    return root / ("manifest.json" if digest is None else f"{digest.hex}.manifest.json")


class DirSource:
    def __init__(self, name: DirName) -> None:
        self.name = name
        self.root = name.path
        if not (self.root / "manifest.json").is_file():
            raise ImageNotKnown(f"{name}: no manifest.json (not a dir: image)")

    @property
    def client(self) -> RegistryClient | None:
        return None

    async def get_manifest(self, digest: Digest | None = None) -> RawManifest:
        path = _manifest_path(self.root, digest)
        what = str(self.name) if digest is None else f"{self.name}@{digest}"
        try:
            raw = path.read_bytes()
        except FileNotFoundError as exc:
            raise ImageNotKnown(f"{what}: {path.name} missing") from exc
        got = Digest.of_bytes(raw)
        if digest is not None:
            digest.verify_bytes(raw, what=f"{what}: manifest")
        return RawManifest(raw, detect_media_type(raw, None, what=what), digest or got)

    def local_blob(self, desc: Descriptor) -> Path | None:
        path = self.root / desc.digest.hex
        return path if path.is_file() else None

    async def fetch_blob(
        self, desc: Descriptor, writer: BlobWriter, progress: ProgressFn | None
    ) -> None:
        raise BlobNotFound(f"{self.name}: blob {desc.digest} missing")

    async def get_signatures(self, manifest_digest: Digest) -> list[Signature]:
        """The ``signature-N`` files; ones that do not parse are not carried over."""
        if Digest.of_bytes((self.root / "manifest.json").read_bytes()) != manifest_digest:
            return []
        return [s for s in read_dir_signatures(self.root) if isinstance(s, Signature)]

    async def aclose(self) -> None:
        return None


class DirDestination:
    def __init__(self, name: DirName) -> None:
        self.name = name
        self.root = name.path
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_file_atomic(self.root / "version", VERSION)
        except OSError as exc:
            raise TransportError(f"{name}: cannot create the directory ({exc.strerror})") from exc

    @contextlib.asynccontextmanager
    async def claim(self, desc: Descriptor) -> AsyncIterator[None]:
        yield

    async def try_mount(self, desc: Descriptor, source: ImageSource) -> bool:
        return False

    async def has_blob(self, desc: Descriptor) -> bool:
        path = self.root / desc.digest.hex
        return path.is_file() and path.stat().st_size == desc.size

    def blob_writer(self, desc: Descriptor, what: str) -> BlobWriter | None:
        return BlobWriter(self.root, self.root / desc.digest.hex, desc, what=what, background=True)

    async def push_blob(
        self, desc: Descriptor, path: Path, source: ImageSource, progress: ProgressFn | None
    ) -> str:
        raise TransportError(f"{self.name}: a dir: image is written through blob_writer")

    async def put_manifest(
        self, manifest: RawManifest, *, top_level: bool, source_digest: Digest | None = None
    ) -> None:
        path = _manifest_path(self.root, None if top_level else manifest.digest)
        write_file_atomic(path, manifest.raw)

    async def put_signatures(self, manifest_digest: Digest, sigs: Sequence[Signature]) -> None:
        """``signature-1`` .. ``signature-N`` in containers/image's on-disk sigstore form.

        Numbering must have no gaps (readers stop at the first missing number), and
        files left from an earlier copy past N are removed so they are not taken as
        signatures of this manifest.
        """
        for n, sig in enumerate(sigs, start=1):
            write_file_atomic(self.root / f"signature-{n}", to_dir_blob(sig))
        n = len(sigs) + 1
        while (stale := self.root / f"signature-{n}").exists():
            stale.unlink()
            n += 1

    async def aclose(self) -> None:
        return None
