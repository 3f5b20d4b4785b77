"""A streaming reader of tar archives (ustar, GNU long names, pax) over byte chunks.

``tarfile`` needs a seekable file or re-buffers every member; this reader walks the
headers of a chunk stream once and hands each regular file's data to the caller as
memoryview slices, so 300 MB of layer data is never copied in Python. It decodes only
what layers use: regular files, hard and symbolic links, directories, devices, fifos,
pax records (path, linkpath, size, uid, gid, mtime, ``SCHILY.xattr.*``) and GNU
``L``/``K`` long names. Sparse files and other GNU extensions are refused.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from pycontainers.distribution.layer_errors import LayerTooLarge, MalformedLayer

BLOCK = 512

REGULAR = "0"
HARDLINK = "1"
SYMLINK = "2"
CHARDEV = "3"
BLOCKDEV = "4"
DIRECTORY = "5"
FIFO = "6"
_KNOWN_TYPES = {REGULAR, HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO}
_ZERO_BLOCK = bytes(BLOCK)
# Metadata members (pax records, GNU long names) are read into memory: bound them.
_MAX_META = 1 << 20
_MAX_ID = 0xFFFFFFFF  # (uid_t)-1 means "no change" to chown(2)
_MAX_TIME_NS = 1 << 62


@dataclass(slots=True)
class TarEntry:
    """One archive member; ``name`` and ``linkname`` are as stored (not yet made safe)."""

    name: str
    type: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str
    devmajor: int
    devminor: int
    xattrs: dict[str, bytes] = field(default_factory=dict)


def _octal(field_: bytes, what: str) -> int:
    if field_[0] & 0x80:
        # GNU base-256 for values that do not fit the octal field (large sizes, uids).
        value = int.from_bytes(field_[1:], "big")
        if field_[0] & 0x40:
            raise MalformedLayer(f"negative {what} in tar header")
        return value
    text = field_.split(b"\0", 1)[0]
    try:
        return int(text, 8)
    except ValueError:
        if not text.strip(b" "):
            return 0
        raise MalformedLayer(f"invalid {what} field {text!r} in tar header") from None


def _string(field_: bytes) -> str:
    return os.fsdecode(field_.split(b"\0", 1)[0])


def parse_pax(data: bytes) -> dict[str, bytes]:
    """Pax extended-header records (``"%d %s=%s\\n"``), values left as bytes."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise MalformedLayer("invalid pax header: record without a length")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise MalformedLayer("invalid pax header: bad record length") from None
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1 : end] != b"\n":
            raise MalformedLayer("invalid pax header: record length out of range")
        record = data[space + 1 : end - 1]
        key, sep, value = record.partition(b"=")
        if not sep:
            raise MalformedLayer("invalid pax header: record without '='")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos = end
    return records


class ChunkReader:
    """Reads exact byte counts from an iterator of chunks without joining big data."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = memoryview(b"")
        self._pos = 0

    def _fill(self) -> bool:
        for chunk in self._it:
            if chunk:
                self._buf = memoryview(chunk)
                self._pos = 0
                return True
        return False

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer only at the end of the stream."""
        avail = len(self._buf) - self._pos
        if avail >= n:
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            return out.tobytes()
        parts = [self._buf[self._pos :].tobytes()]
        got = avail
        self._pos = len(self._buf)
        while got < n and self._fill():
            take = min(n - got, len(self._buf))
            parts.append(self._buf[:take].tobytes())
            self._pos = take
            got += take
        return b"".join(parts)

    def copy(self, n: int, write: Callable[[memoryview], object]) -> int:
        """Pass the next ``n`` bytes to ``write`` as slices; returns how many there were."""
        left = n
        while left:
            if self._pos >= len(self._buf) and not self._fill():
                break
            take = min(left, len(self._buf) - self._pos)
            write(self._buf[self._pos : self._pos + take])
            self._pos += take
            left -= take
        return n - left

    def drain(self) -> None:
        """Consume everything left (the producer hashes what it hands out)."""
        self._buf = memoryview(b"")
        self._pos = 0
        for _ in self._it:
            pass


class TarReader:
    """Iterates ``TarEntry`` values; the caller consumes each file's data before the next.

    Use ``read_data(write)`` for a regular file's content; data left unread is skipped.
    ``max_entries`` bounds the member count (a tar of millions of empty files is a bomb
    too).
    """

    def __init__(
        self, chunks: Iterable[bytes], *, what: str = "layer", max_entries: int | None = None
    ) -> None:
        self._r = ChunkReader(chunks)
        self.what = what
        self.max_entries = max_entries
        self.count = 0
        self._left = 0  # data bytes of the current member not yet consumed
        self._pad = 0
        self._global: dict[str, bytes] = {}

    def _block(self) -> bytes:
        block = self._r.read(BLOCK)
        if len(block) != BLOCK:
            raise MalformedLayer(f"{self.what}: tar stream is truncated (no end-of-archive)")
        return block

    def _meta(self, size: int) -> bytes:
        if size > _MAX_META:
            raise MalformedLayer(f"{self.what}: tar metadata member of {size} bytes is too big")
        data = self._r.read(size)
        if len(data) != size:
            raise MalformedLayer(f"{self.what}: tar stream is truncated inside a header")
        self._r.read(-size % BLOCK)
        return data

    def _skip_rest(self) -> None:
        if self._left or self._pad:
            n = self._left + self._pad
            if self._r.copy(n, _discard) != n:
                raise MalformedLayer(f"{self.what}: tar stream is truncated inside a file")
            self._left = self._pad = 0

    @property
    def data_left(self) -> int:
        """Bytes of the current member's data not consumed yet."""
        return self._left

    def read_data(self, write: Callable[[memoryview], object]) -> None:
        """Hand the current member's data to ``write`` in slices."""
        n = self._left
        if self._r.copy(n, write) != n:
            raise MalformedLayer(f"{self.what}: tar stream is truncated inside a file")
        self._left = 0

    def finish(self) -> None:
        """Read past the end-of-archive blocks to the end, so the whole stream is hashed."""
        self._r.drain()

    def __iter__(self) -> Iterator[TarEntry]:
        pax: dict[str, bytes] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            self._skip_rest()
            block = self._block()
            if block == _ZERO_BLOCK:
                return
            stored = _octal(block[148:156], "checksum")
            if sum(block) - sum(block[148:156]) + 8 * 32 != stored:
                raise MalformedLayer(f"{self.what}: tar header checksum mismatch")
            typeflag = chr(block[156]) if block[156] else REGULAR
            size = _octal(block[124:136], "size")
            if typeflag == "x":
                pax = parse_pax(self._meta(size))
                continue
            if typeflag == "g":
                self._global.update(parse_pax(self._meta(size)))
                continue
            if typeflag == "L":
                long_name = os.fsdecode(self._meta(size).rstrip(b"\0"))
                continue
            if typeflag == "K":
                long_link = os.fsdecode(self._meta(size).rstrip(b"\0"))
                continue
            self.count += 1
            if self.max_entries is not None and self.count > self.max_entries:
                raise LayerTooLarge(
                    f"{self.what}: more than the limit of {self.max_entries} entries"
                )
            if typeflag == "7":
                typeflag = REGULAR  # contiguous file: a regular file everywhere we care
            if typeflag not in _KNOWN_TYPES:
                raise MalformedLayer(
                    f"{self.what}: unsupported tar entry type {typeflag!r} "
                    f"(entry {_string(block[0:100])!r})"
                )
            name = _string(block[0:100])
            if block[257:263] == b"ustar\0" and block[345] != 0:
                name = _string(block[345:500]) + "/" + name
            entry = TarEntry(
                name=long_name if long_name is not None else name,
                type=typeflag,
                mode=_octal(block[100:108], "mode"),
                uid=_octal(block[108:116], "uid"),
                gid=_octal(block[116:124], "gid"),
                size=size,
                mtime_ns=_octal(block[136:148], "mtime") * 1_000_000_000,
                linkname=long_link if long_link is not None else _string(block[157:257]),
                devmajor=0,
                devminor=0,
            )
            if typeflag in (CHARDEV, BLOCKDEV):
                entry.devmajor = _octal(block[329:337], "devmajor")
                entry.devminor = _octal(block[337:345], "devminor")
            if pax or self._global:
                _apply_pax(entry, {**self._global, **pax}, self.what)
            _check_ranges(entry, self.what)
            pax = {}
            long_name = long_link = None
            if entry.type in (HARDLINK, SYMLINK, DIRECTORY, CHARDEV, BLOCKDEV, FIFO):
                # These carry no data in the archive even if a size is recorded
                # (tarfile and GNU tar read them the same way).
                data = 0
                entry.size = 0
            else:
                data = entry.size
            self._left = data
            self._pad = -data % BLOCK
            yield entry


def _discard(_: memoryview) -> None:
    return None


def _apply_pax(entry: TarEntry, records: dict[str, bytes], what: str) -> None:
    for key, value in records.items():
        try:
            if key == "path":
                entry.name = value.decode("utf-8", "surrogateescape")
            elif key == "linkpath":
                entry.linkname = value.decode("utf-8", "surrogateescape")
            elif key == "size":
                entry.size = int(value)
            elif key == "uid":
                entry.uid = int(value)
            elif key == "gid":
                entry.gid = int(value)
            elif key == "mtime":
                entry.mtime_ns = _pax_time_ns(value)
            elif key.startswith("SCHILY.xattr."):
                entry.xattrs[key[len("SCHILY.xattr.") :]] = value
            elif key.startswith("LIBARCHIVE.xattr."):
                name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr.") :])
                entry.xattrs.setdefault(name, base64.b64decode(value + b"=="))
            elif key.startswith("GNU.sparse."):
                raise MalformedLayer(f"{what}: sparse files are not supported ({entry.name!r})")
        except ValueError:
            raise MalformedLayer(f"{what}: invalid pax record {key!r} for {entry.name!r}") from None


def _check_ranges(entry: TarEntry, what: str) -> None:
    if entry.size < 0 or not 0 <= entry.uid < _MAX_ID or not 0 <= entry.gid < _MAX_ID:
        raise MalformedLayer(f"{what}: size, uid or gid out of range for {entry.name!r}")
    if not -_MAX_TIME_NS < entry.mtime_ns < _MAX_TIME_NS:
        raise MalformedLayer(f"{what}: mtime out of range for {entry.name!r}")


def _pax_time_ns(value: bytes) -> int:
    text = value.decode("ascii")
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9] or "0")
    return sign * ns
