"""``Snapshot``: the bytes of every spec file of one source revision, read consistently.

A plain value handed from the sources (I/O) to ``load_desired`` (pure). Files that could
not be read (binary, huge, vanished, a symlink loop) are listed in ``file_errors`` so the
planner holds what they used to define instead of pruning it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol


@dataclass(frozen=True)
class Snapshot:
    revision: str
    """A directory's content hash ("dir:<sha256>") or a git commit ("git:<sha1>")."""
    files: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    """Display path (relative to the source root) -> content."""
    file_errors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Display path -> why it could not be read."""
    source: str = ""
    """Where it came from, for messages (a directory path or a git URL and ref)."""

    @staticmethod
    def content_revision(files: Mapping[str, bytes], file_errors: Mapping[str, str]) -> str:
        digest = hashlib.sha256()
        for path in sorted(files):
            digest.update(b"f\0" + path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
        for path in sorted(file_errors):
            digest.update(b"e\0" + path.encode() + b"\0" + file_errors[path].encode())
        return "dir:" + digest.hexdigest()[:16]


class Source(Protocol):
    """What the daemon reads desired state from (``DirectorySource``, ``GitSource``).

    ``snapshot()`` never touches the network: a git source is fetched separately
    (``GitSource.sync()``), so a slow remote never blocks reading the last good revision.
    """

    def describe(self) -> str: ...

    async def snapshot(self) -> Snapshot: ...
