"""The content store: an OCI image layout at the storage root, shared with skopeo and umoci.

Layout (image-spec ``image-layout.md``)::

    ROOT/oci-layout          {"imageLayoutVersion": "1.0.0"}
    ROOT/index.json          one descriptor per name, ``org.opencontainers.image.ref.name``
                             = the full normalised reference (docker.io/library/busybox:latest)
    ROOT/blobs/sha256/HEX    content, named by digest, stored once however many images use it
    ROOT/.ingest/            temp files of blobs being written (never read as blobs)
    ROOT/.lock-index         flock: serialises read-modify-write of index.json
    ROOT/.lock-gc            flock: shared while anything writes or tags, exclusive for prune

So ``skopeo inspect oci:ROOT:docker.io/library/busybox:latest`` and
``umoci unpack --image ROOT:docker.io/library/busybox:latest`` read what we write.

Invariants: a file under ``blobs/`` has been verified against its name (temp file, hash
while writing, fsync, rename, fsync of the directory); index.json is replaced atomically
under the index lock, so concurrent pulls never lose each other's names; prune takes the
gc lock exclusively, so it never removes a blob a running pull has written but not yet
tagged.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import queue
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from pycontainers.distribution.digest import Digest, DigestVerifier
from pycontainers.distribution.errors import (
    BlobNotFound,
    DigestError,
    DistributionError,
    ImageNotKnown,
    ManifestError,
    StoreError,
)
from pycontainers.distribution.manifest import (
    ANNOTATION_REF_NAME,
    ANNOTATION_SOURCE_DIGEST,
    MANIFEST_TYPES,
    OCI_INDEX,
    Descriptor,
    ImageIndex,
    Manifest,
    parse_manifest,
)

LAYOUT_VERSION = "1.0.0"
INGEST_DIR = ".ingest"
_CHUNK = 1 << 20
_QUEUE_CHUNKS = 32  # reads are at most 1 MiB (registry.py): <= 32 MiB in flight per blob

# The ref.name grammar of the image spec (annotations.md), as containers/image and umoci
# check it: components of alphanumerics joined by -._:@+ or --, separated by '/'.
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")


def valid_ref_name(name: str) -> bool:
    return bool(_REF_NAME_RE.match(name))


class FileLock:
    """An flock(2) on a file, shared or exclusive; a context manager.

    flock locks belong to the open file description, so two FileLocks on the same
    path conflict even inside one process (and across threads), as they must.
    """

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; never blocks."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    async def acquire_async(self) -> None:
        """Wait for the lock without blocking the event loop or a worker thread.

        Polling, not a blocking flock in a thread: many tasks waiting on held locks
        would otherwise fill the default executor, and the holders need it to finish.
        """
        delay = 0.005
        while not self.try_acquire():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class BlobTap(Protocol):
    """A consumer that sees a blob's bytes as they are written (an unpack during a pull).

    ``feed`` runs on the writer's thread in order; ``finish(None)`` is called once the
    blob's digest and size have verified and must raise if the consumer failed (the blob
    is then not committed); ``finish(error)`` tells it the blob is bad or abandoned. A
    ``failure`` ends the download at the next chunk: a refused layer is not fetched to
    its end.
    """

    def feed(self, chunk: bytes) -> None: ...

    def finish(self, error: BaseException | None) -> None: ...

    @property
    def failure(self) -> BaseException | None:
        """Set once the consumer has failed: the writer stops the download with it."""
        ...


class BlobWriter:
    """Writes one blob to a temp file, hashing as it goes; ``commit`` verifies then renames.

    Used as a context manager: leaving the block without ``commit`` (an error, a
    cancelled download) removes the temp file, so nothing unverified stays behind.
    ``truncate`` restarts from zero (a registry ignored our Range request);
    ``offset`` tells a resuming download where to continue.

    With ``background=True`` a thread hashes and writes while the caller (the event
    loop) keeps receiving: sha256 and write(2) release the GIL, so a download uses a
    second core the way skopeo's goroutines do. Sizes are still checked in the
    caller's thread as each chunk arrives, so an oversized blob is cut off at once.

    A ``tap`` (see ``BlobTap``) gets every chunk after it is hashed and written, and
    is told the verdict before the blob is renamed into place: the blob appears only if
    both the digest and the tap accept it.
    """

    def __init__(
        self, tmp_dir: Path, final: Path, desc: Descriptor, *, what: str, background: bool = False
    ) -> None:
        self.final = final
        self.descriptor = desc
        self.what = what
        self.verifier = DigestVerifier(desc.digest, desc.size, what=what)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_dir / f"{desc.digest.hex}-{secrets.token_hex(6)}"
        self._file: IO[bytes] | None = open(self.tmp, "xb")  # noqa: SIM115 - closed in commit/abort
        self.committed = False
        self.tap: BlobTap | None = None
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._worker_error: BaseException | None = None
        if background:
            self._queue = queue.Queue(maxsize=_QUEUE_CHUNKS)
            self._thread = threading.Thread(target=self._work, name=f"blob-{desc.digest.short()}")
            self._thread.daemon = True
            self._thread.start()

    @property
    def offset(self) -> int:
        return self.verifier.received

    def _work(self) -> None:
        assert self._queue is not None and self._file is not None
        file, q = self._file, self._queue
        while True:
            item = q.get()
            try:
                if item is None:
                    return
                if self._worker_error is None:
                    self.verifier.hash_only(item)
                    file.write(item)
                    if self.tap is not None:
                        self.tap.feed(item)
            except BaseException as exc:  # reported to the caller on its next call
                self._worker_error = exc
            finally:
                q.task_done()

    def _drain(self) -> None:
        if self._queue is not None:
            self._queue.join()
        if self._worker_error is not None:
            raise StoreError(f"{self.what}: cannot write {self.tmp}: {self._worker_error}")

    def _stop(self) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "write after commit/abort"
        if self.tap is not None and (failure := self.tap.failure) is not None:
            raise failure
        self.verifier.account(len(chunk))
        if self._queue is not None:
            if self._worker_error is not None:
                self._drain()
            self._queue.put(chunk)
        else:
            self.verifier.hash_only(chunk)
            self._file.write(chunk)
            if self.tap is not None:
                self.tap.feed(chunk)

    def _release_tap(self, error: BaseException) -> None:
        tap, self.tap = self.tap, None
        if tap is not None:
            with contextlib.suppress(BaseException):
                tap.finish(error)

    def truncate(self) -> None:
        assert self._file is not None
        self._drain()
        # A consumer cannot rewind: it is dropped and the caller reads the stored blob.
        self._release_tap(StoreError(f"{self.what}: the download restarted from zero"))
        self._file.seek(0)
        self._file.truncate()
        self.verifier.reset()

    def commit(self) -> Path:
        """Verify digest and size, make durable, and move into place."""
        assert self._file is not None, "commit twice"
        try:
            self._drain()
            self._stop()
            self.verifier.verify()
            tap, self.tap = self.tap, None
            if tap is not None:
                tap.finish(None)
            self._file.flush()
            os.fsync(self._file.fileno())
        except BaseException as exc:
            self._release_tap(exc)
            self.abort()
            raise
        self._file.close()
        self._file = None
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.tmp, self.final)
        _fsync_dir(self.final.parent)
        self.committed = True
        return self.final

    def abort(self) -> None:
        self._stop()
        self._release_tap(StoreError(f"{self.what}: the download was abandoned"))
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            self.abort()


@dataclass(frozen=True)
class StoredImage:
    """One name in the store and the descriptor it points at."""

    name: str
    descriptor: Descriptor


@dataclass
class FsckReport:
    """What ``fsck`` found: blobs checked, corrupt ones, and references to missing blobs."""

    checked: int = 0
    corrupt: list[tuple[Digest, str]] = field(default_factory=list)
    removed: list[Digest] = field(default_factory=list)
    missing: list[tuple[str, Digest]] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing)


@dataclass
class PruneReport:
    removed: list[Digest] = field(default_factory=list)
    freed_bytes: int = 0
    temp_files: int = 0


class ContentStore:
    """An OCI image layout used as the local image store (or an ``oci:`` directory)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ---- layout ----------------------------------------------------------------------

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    @property
    def ingest_dir(self) -> Path:
        return self.root / INGEST_DIR

    def exists(self) -> bool:
        return (self.root / "oci-layout").is_file() and self.index_path.is_file()

    def init(self) -> ContentStore:
        """Create the layout if missing (idempotent); return self."""
        try:
            (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            layout = self.root / "oci-layout"
            if not layout.exists():
                write_file_atomic(
                    layout, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode()
                )
            if not self.index_path.exists():
                with self.index_lock():
                    if not self.index_path.exists():
                        self._write_index([])
        except OSError as exc:
            raise StoreError(f"cannot create the image store at {self.root}: {exc}") from exc
        return self

    def check_layout(self) -> None:
        """Raise unless ``root`` holds an OCI layout we can read."""
        layout = self.root / "oci-layout"
        try:
            doc = json.loads(layout.read_bytes())
        except FileNotFoundError as exc:
            raise StoreError(f"{self.root}: not an OCI image layout (no oci-layout file)") from exc
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.root}/oci-layout: unreadable ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("imageLayoutVersion") != LAYOUT_VERSION:
            raise StoreError(f"{self.root}/oci-layout: unsupported imageLayoutVersion")

    # ---- locks -----------------------------------------------------------------------

    def index_lock(self) -> FileLock:
        return FileLock(self.root / ".lock-index")

    def gc_lock(self, *, exclusive: bool = False) -> FileLock:
        """Shared while writing blobs and tagging; exclusive for prune and fsck --repair."""
        return FileLock(self.root / ".lock-gc", shared=not exclusive)

    # ---- blobs -----------------------------------------------------------------------

    def blob_path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    def has_blob(self, desc: Descriptor | Digest) -> bool:
        """True if the blob is present (and, for a descriptor, has the right size)."""
        digest = desc.digest if isinstance(desc, Descriptor) else desc
        try:
            st = self.blob_path(digest).stat()
        except FileNotFoundError:
            return False
        return not isinstance(desc, Descriptor) or st.st_size == desc.size

    def open_blob(self, digest: Digest) -> IO[bytes]:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(f"blob {digest} is not in the store at {self.root}") from exc

    def read_blob(self, digest: Digest) -> bytes:
        with self.open_blob(digest) as f:
            return f.read()

    def blob_writer(
        self, desc: Descriptor, *, what: str = "", background: bool = False
    ) -> BlobWriter:
        return BlobWriter(
            self.ingest_dir,
            self.blob_path(desc.digest),
            desc,
            what=what or f"blob {desc.digest}",
            background=background,
        )

    def put_bytes(self, data: bytes, media_type: str) -> Descriptor:
        """Store a small blob (manifest, config) from memory; return its descriptor."""
        desc = Descriptor(media_type, Digest.of_bytes(data), len(data))
        if not self.has_blob(desc):
            with self.blob_writer(desc) as w:
                w.write(data)
                w.commit()
        return desc

    def ingest_file(self, desc: Descriptor, src: Path, *, what: str = "") -> None:
        """Copy a local file in, verifying it on the way (an oci:/dir: source)."""
        if self.has_blob(desc):
            return
        with self.blob_writer(desc, what=what) as w, open(src, "rb") as f:
            while chunk := f.read(_CHUNK):
                w.write(chunk)
            w.commit()

    # ---- index.json ------------------------------------------------------------------

    def _read_index(self) -> list[Descriptor]:
        try:
            raw = self.index_path.read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"{self.root}: not an OCI image layout (no index.json)") from exc
        try:
            doc = json.loads(raw)
            entries = doc["manifests"]
            if not isinstance(entries, list):
                raise TypeError("manifests is not a list")
            return [Descriptor.from_json(e, what=str(self.index_path)) for e in entries]
        except (ValueError, KeyError, TypeError, ManifestError) as exc:
            raise StoreError(f"{self.index_path}: invalid index ({exc})") from exc

    def _write_index(self, entries: list[Descriptor]) -> None:
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [d.to_json() for d in entries],
        }
        write_file_atomic(self.index_path, json.dumps(doc, separators=(",", ":")).encode())

    def entries(self) -> list[Descriptor]:
        """Every descriptor in index.json, named or not."""
        return self._read_index()

    def images(self) -> list[StoredImage]:
        """Named images, in index order (untagged entries are skipped)."""
        out = []
        for desc in self._read_index():
            name = desc.annotations.get(ANNOTATION_REF_NAME)
            if name:
                out.append(StoredImage(name, desc))
        return out

    def resolve(self, name: str) -> Descriptor:
        """The descriptor ``name`` points at; ``ImageNotKnown`` if none."""
        for image in self.images():
            if image.name == name:
                return image.descriptor
        raise ImageNotKnown(f"image {name!r} is not in the store at {self.root}")

    def tag(
        self, name: str, desc: Descriptor, *, annotations: Mapping[str, str] | None = None
    ) -> None:
        """Point ``name`` at ``desc`` (replacing what it pointed at); the blob must exist."""
        if not valid_ref_name(name):
            raise StoreError(f"invalid image name {name!r} for an OCI layout")
        if not self.has_blob(desc):
            raise BlobNotFound(f"cannot tag {name}: manifest {desc.digest} is not in the store")
        entry = desc.with_annotations(
            {**desc.annotations, **(annotations or {}), ANNOTATION_REF_NAME: name}
        )
        with self.index_lock():
            entries = [
                e for e in self._read_index() if e.annotations.get(ANNOTATION_REF_NAME) != name
            ]
            entries.append(entry)
            self._write_index(entries)

    def source_digest(self, name: str) -> Digest:
        """What ``name`` pointed at in its registry when pulled: the index digest for an
        image picked from an index, else the manifest digest (compare with a tag HEAD)."""
        desc = self.resolve(name)
        recorded = desc.annotations.get(ANNOTATION_SOURCE_DIGEST)
        if recorded:
            try:
                return Digest.parse(recorded)
            except DigestError:
                pass
        return desc.digest

    def untag(self, name: str) -> Descriptor:
        """Remove ``name``; its blobs stay until ``prune``. Returns what it pointed at."""
        with self.index_lock():
            entries = self._read_index()
            kept = [e for e in entries if e.annotations.get(ANNOTATION_REF_NAME) != name]
            if len(kept) == len(entries):
                raise ImageNotKnown(f"image {name!r} is not in the store at {self.root}")
            removed = next(e for e in entries if e not in kept)
            self._write_index(kept)
        return removed

    # ---- manifests -------------------------------------------------------------------

    def read_manifest(self, desc: Descriptor, *, what: str = "") -> Manifest:
        """Read and verify a manifest or index blob, then parse it."""
        label = what or f"manifest {desc.digest}"
        data = self.read_blob(desc.digest)
        desc.digest.verify_bytes(data, what=label)
        return parse_manifest(data, desc.media_type, what=label)

    def reachable(self, top: Descriptor) -> tuple[dict[Digest, int], list[Digest]]:
        """Blobs present under ``top`` (digest -> size) and digests of missing ones.

        An index may list platforms that were never fetched (a pull keeps one), so
        children of an index that are absent are not reported missing.
        """
        present: dict[Digest, int] = {}
        missing: list[Digest] = []
        stack: list[tuple[Descriptor, bool]] = [(top, True)]
        while stack:
            desc, required = stack.pop()
            if desc.digest in present or desc.digest in missing:
                continue
            if not self.has_blob(desc.digest):
                if required:
                    missing.append(desc.digest)
                continue
            present[desc.digest] = self.blob_path(desc.digest).stat().st_size
            if desc.media_type not in MANIFEST_TYPES and desc is not top:
                continue
            try:
                doc = self.read_manifest(desc)
            except (DistributionError, OSError):
                continue  # fsck reports the corrupt blob itself
            if isinstance(doc, ImageIndex):
                stack.extend((m, False) for m in doc.manifests)
            else:
                stack.extend((d, True) for d in doc.blobs() if not d.urls)
        return present, missing

    def referenced(self) -> tuple[set[Digest], list[tuple[str, Digest]]]:
        """Every blob reachable from index.json, and (name, digest) of missing ones."""
        seen: set[Digest] = set()
        missing: list[tuple[str, Digest]] = []
        for top in self._read_index():
            name = top.annotations.get(ANNOTATION_REF_NAME, str(top.digest))
            present, absent = self.reachable(top)
            seen.update(present)
            missing.extend((name, d) for d in absent if (name, d) not in missing)
        return seen, missing

    def all_blobs(self) -> Iterator[tuple[Digest | None, Path]]:
        """Every file under blobs/, with its digest (None if the name is not one)."""
        blobs = self.root / "blobs"
        if not blobs.is_dir():
            return
        for algo_dir in sorted(blobs.iterdir()):
            if not algo_dir.is_dir():
                yield None, algo_dir
                continue
            for path in sorted(algo_dir.iterdir()):
                try:
                    yield Digest.parse(f"{algo_dir.name}:{path.name}"), path
                except DigestError:
                    yield None, path

    # ---- maintenance -----------------------------------------------------------------

    def prune(self) -> PruneReport:
        """Remove blobs no name reaches, and leftover temp files of dead writers."""
        report = PruneReport()
        with self.gc_lock(exclusive=True):
            keep, _ = self.referenced()
            for digest, path in self.all_blobs():
                if digest is None or digest in keep:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    report.freed_bytes += path.stat().st_size
                    path.unlink()
                    report.removed.append(digest)
            if self.ingest_dir.is_dir():
                for tmp in self.ingest_dir.iterdir():
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
                        report.temp_files += 1
        return report

    def fsck(self, *, repair: bool = False) -> FsckReport:
        """Re-hash every blob; report (and with ``repair`` remove) corrupt ones."""
        report = FsckReport()
        lock = self.gc_lock(exclusive=repair)
        with lock:
            for digest, path in self.all_blobs():
                if digest is None:
                    report.stray.append(str(path.relative_to(self.root)))
                    continue
                report.checked += 1
                try:
                    got = Digest.of_file(path, digest.algorithm)
                except OSError as exc:
                    report.corrupt.append((digest, f"unreadable: {exc.strerror}"))
                else:
                    if got != digest:
                        report.corrupt.append((digest, f"content hashes to {got}"))
            if repair:
                for digest, _ in report.corrupt:
                    with contextlib.suppress(FileNotFoundError):
                        self.blob_path(digest).unlink()
                        report.removed.append(digest)
            _, report.missing = self.referenced()
        return report
