"""The uncompressed bytes of a layer blob, produced in a background thread and hashed.

Decompression and the diff_id hash run beside the extraction (zlib and hashlib release
the GIL; ``zstd`` is a separate process), so one streaming pass decompresses, hashes and
extracts on two cores. The source can be any readable binary stream: a blob file in the
store, or a pipe fed while the blob downloads.

zstd goes through Debian's ``zstd`` binary over a pipe rather than the ``zstandard``
PyPI package: the binary is already a system dependency, it decompresses in its own
process (truly parallel to our extraction), and it costs no new Python dependency.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import queue
import shutil
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from enum import Enum
from typing import Any, Protocol

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import UnsupportedMediaType
from pycontainers.distribution.layer_errors import LayerError, LayerTooLarge, MalformedLayer

CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031
_CLOSE_WAIT = 2.0


class Compression(Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


# OCI image-spec media-types.md and the Docker schema 2 names for the same formats.
_LAYER_MEDIA_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": Compression.NONE,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": Compression.GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": Compression.GZIP,
}


def compression_of(media_type: str) -> Compression:
    """The compression a layer media type names; unknown types are refused."""
    try:
        return _LAYER_MEDIA_TYPES[media_type]
    except KeyError:
        raise UnsupportedMediaType(f"unsupported layer media type {media_type!r}") from None


class Readable(Protocol):
    """What a layer source needs: ``read(n)``; files, pipes and ``FeedStream`` have it."""

    def read(self, n: int = ..., /) -> bytes: ...


class FeedStream:
    """A readable stream fed chunk by chunk from another thread, such as a download loop.

    The unpack reads it while the blob is still arriving, so download, decompression,
    hashing and extraction overlap. The feeder calls ``feed()`` per chunk and
    ``finish()`` at the end (with the exception if the download failed); the reader
    calls ``close()`` when it stops, after which ``feed()`` raises ``BrokenPipeError``
    instead of blocking on a reader that is gone.
    """

    def __init__(self, depth: int = 16) -> None:
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
        self._buf = memoryview(b"")
        self._eof = False
        self._reader_gone = threading.Event()

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self._reader_gone.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise BrokenPipeError("the layer unpack stopped reading")

    def feed(self, data: bytes) -> None:
        if data:
            self._put(bytes(data))

    def finish(self, error: BaseException | None = None) -> None:
        self._put(error)

    def read(self, n: int = -1, /) -> bytes:
        while not self._buf:
            if self._eof or self._reader_gone.is_set():
                return b""
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                self._eof = True
                return b""
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            self._buf = memoryview(item)
        take = len(self._buf) if n < 0 else min(n, len(self._buf))
        out = self._buf[:take].tobytes()
        self._buf = self._buf[take:]
        return out

    def close(self) -> None:
        self._reader_gone.set()


class _Stop(Exception):
    """The consumer went away; the producer ends quietly."""


class LayerStream:
    """Iterates the uncompressed chunks of ``src``; ``diff_id()`` once they are exhausted.

    ``max_bytes`` bounds the uncompressed size (checked as bytes are produced, so a
    decompression bomb is cut off after at most one chunk past the limit). Use as a
    context manager: leaving it stops the thread and any ``zstd`` child.
    """

    def __init__(
        self,
        src: Readable,
        compression: Compression,
        *,
        what: str = "layer",
        max_bytes: int | None = None,
    ) -> None:
        self.src = src
        self.compression = compression
        self.what = what
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name=f"unpack {what}", daemon=True)
        self._done = False

    def __enter__(self) -> LayerStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if isinstance(self.src, FeedStream):
            self.src.close()  # this stream was its reader: the feeder must not wait on us
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        # The producer stops at its next hand-over; a source blocked in read() (a stalled
        # download) may hold it longer, so wait boundedly: it is a daemon thread and
        # leaves as soon as the read returns.
        deadline = time.monotonic() + _CLOSE_WAIT
        while self._thread.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        if self._proc is not None:
            self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()

    def chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                self._done = True
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def diff_id(self) -> Digest:
        """The sha256 of every uncompressed byte (tar padding included)."""
        if not self._done:
            raise RuntimeError("diff_id() before the stream was read to its end")
        return Digest("sha256", self._hash.hexdigest())

    # -- producer thread --------------------------------------------------------------

    def _put(self, item: bytes | BaseException | None) -> None:
        while True:
            if self._stop.is_set():
                raise _Stop
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise LayerTooLarge(
                f"{self.what}: uncompressed size exceeds the limit of {self.max_bytes} bytes"
            )
        self._hash.update(data)
        self._put(data)

    def _run(self) -> None:
        try:
            if self.compression is Compression.GZIP:
                self._gunzip()
            elif self.compression is Compression.ZSTD:
                self._unzstd()
            else:
                while chunk := self.src.read(CHUNK):
                    self._emit(chunk)
            self._put(None)
        except _Stop:
            return
        except LayerError as exc:
            self._fail(exc)
        except zlib.error as exc:
            self._fail(MalformedLayer(f"{self.what}: not a valid gzip stream: {exc}"))
        except OSError as exc:
            self._fail(LayerError(f"{self.what}: reading the layer failed: {exc}"))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        try:
            self._put(exc)
        except _Stop:
            return

    def _gunzip(self) -> None:
        # 16 + MAX_WBITS: a gzip header is required; multi-member files (pigz) are
        # handled by starting a new decompressor on the unused data.
        dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        seen_any = False
        while True:
            data = dec.unconsumed_tail or self.src.read(CHUNK)
            if not data:
                break
            seen_any = True
            self._emit(dec.decompress(data, 4 * CHUNK))
            while dec.eof and dec.unused_data:
                rest = dec.unused_data
                dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._emit(dec.decompress(rest, 4 * CHUNK))
        if not seen_any or not dec.eof:
            raise MalformedLayer(f"{self.what}: gzip stream is truncated")

    def _unzstd(self) -> None:
        exe = shutil.which("zstd")
        if exe is None:
            raise LayerError(f"{self.what}: zstd layers need the `zstd` program (Debian: zstd)")
        fileno: int | None = None
        src: Any = self.src
        try:
            if src.seekable():
                # zstd reads the descriptor itself: start it where the (buffered) file
                # object logically is, not where its read-ahead left the descriptor.
                fileno = src.fileno()
                os.lseek(fileno, src.tell(), os.SEEK_SET)
        except (OSError, AttributeError, ValueError):
            fileno = None
        feed = fileno is None
        self._proc = subprocess.Popen(
            [exe, "-dcq"],
            stdin=subprocess.PIPE if feed else fileno,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        # A 1 MiB pipe halves the wakeups; /proc/sys/fs/pipe-max-size may forbid it.
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._proc.stdout.fileno(), _F_SETPIPE_SZ, CHUNK)
        feeder = None
        if feed:
            feeder = threading.Thread(target=self._feed, daemon=True)
            feeder.start()
        out = self._proc.stdout
        while chunk := out.read(CHUNK):
            self._emit(chunk)
        if feeder is not None:
            feeder.join()
        err = self._proc.stderr.read() if self._proc.stderr else b""
        if self._proc.wait() != 0:
            msg = os.fsdecode(err).strip().splitlines()
            raise MalformedLayer(
                f"{self.what}: not a valid zstd stream: {msg[-1] if msg else 'zstd failed'}"
            )

    def _feed(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            while not self._stop.is_set() and (chunk := self.src.read(CHUNK)):
                proc.stdin.write(chunk)
        except (BrokenPipeError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
