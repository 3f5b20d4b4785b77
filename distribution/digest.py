"""Content digests (``algorithm:hex``) and streaming verification.

Everything that enters the store is named by its digest and checked against it, so this
module is the only place that turns untrusted strings into a ``Digest``
(go-digest's rule: always parse, never split by hand). A ``DigestVerifier`` is fed bytes
as they stream and raises at the end, or as soon as more bytes arrive than the
descriptor allows, so an oversized blob is cut off instead of filling the disk.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pycontainers.distribution.errors import DigestError, DigestMismatch, SizeMismatch

if TYPE_CHECKING:
    from hashlib import _Hash

# Hex lengths per algorithm, as go-digest registers them.
_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest such as ``sha256:9f86...``; ``str()`` gives that form."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        if not isinstance(text, str) or not _DIGEST_RE.match(text):
            raise DigestError(f"invalid digest {text!r}: want algorithm:hex")
        algorithm, hexpart = text.split(":", 1)
        want = _ALGORITHMS.get(algorithm)
        if want is None:
            raise DigestError(f"invalid digest {text!r}: unsupported algorithm {algorithm!r}")
        if len(hexpart) != want or not all(c in "0123456789abcdef" for c in hexpart):
            raise DigestError(
                f"invalid digest {text!r}: {algorithm} wants {want} lower-case hex characters"
            )
        return cls(algorithm, hexpart)

    @classmethod
    def of_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    @classmethod
    def of_file(cls, path: Path, algorithm: str = "sha256") -> Digest:
        h = hashlib.new(algorithm)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return cls(algorithm, h.hexdigest())

    @property
    def encoded(self) -> str:
        """The hex part, as blob file names in OCI layouts and registries use it."""
        return self.hex

    def hasher(self) -> _Hash:
        return hashlib.new(self.algorithm)

    def verify_bytes(self, data: bytes, *, what: str = "content") -> None:
        got = Digest.of_bytes(data, self.algorithm)
        if got != self:
            raise DigestMismatch(f"{what}: digest mismatch (content hashes to {got})")

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def short(self) -> str:
        return self.hex[:12]


class DigestVerifier:
    """Hashes a stream and enforces the expected digest and size.

    ``update`` raises ``SizeMismatch`` as soon as the stream is longer than ``size``
    (the caller stops reading: a registry that sends more is cut off); ``verify`` raises
    if the stream ended short or hashed differently. ``what`` names the blob and image
    in messages.
    """

    def __init__(self, expected: Digest, size: int | None, *, what: str = "blob") -> None:
        self.expected = expected
        self.size = size
        self.what = what
        self.received = 0
        self._hash = expected.hasher()

    def update(self, chunk: bytes) -> None:
        self.account(len(chunk))
        self._hash.update(chunk)

    def account(self, nbytes: int) -> None:
        """Count bytes without hashing them (a writer thread hashes); enforce the size."""
        self.received += nbytes
        if self.size is not None and self.received > self.size:
            raise SizeMismatch(
                f"{self.what}: more data than the descriptor's size {self.size} "
                f"(got at least {self.received} bytes)"
            )

    def hash_only(self, chunk: bytes) -> None:
        """Hash bytes already counted by ``account``."""
        self._hash.update(chunk)

    def snapshot(self) -> tuple[int, _Hash]:
        """State to resume from after an interrupted stream (Range requests)."""
        return self.received, self._hash.copy()

    def restore(self, state: tuple[int, _Hash]) -> None:
        self.received, self._hash = state[0], state[1].copy()

    def reset(self) -> None:
        self.received = 0
        self._hash = self.expected.hasher()

    def digest(self) -> Digest:
        return Digest(self.expected.algorithm, self._hash.hexdigest())

    def verify(self) -> None:
        if self.size is not None and self.received != self.size:
            raise SizeMismatch(
                f"{self.what}: size mismatch: descriptor says {self.size} bytes, "
                f"got {self.received}"
            )
        got = self.digest()
        if got != self.expected:
            raise DigestMismatch(f"{self.what}: digest mismatch (content hashes to {got})")
