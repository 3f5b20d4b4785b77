"""Read a spec directory as one consistent ``Snapshot``.

Every ``*.yaml``/``*.yml`` file below the directory (hidden files and directories, editor
swap and backup files excluded) is read; directory symlinks are followed once, so a
symlink loop is reported instead of recursed into. Consistency: the tree is listed and
stat'ed before and after reading, and the whole read is retried while anything changed
underneath (an editor's save, a ``cp`` in progress); files still moving after the last try
are reported as errors, which holds their containers.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from pycontainers.reconciler.errors import SourceError
from pycontainers.reconciler.snapshot import Snapshot

MAX_FILE_BYTES = 1024 * 1024
"""A spec file larger than this is refused (a stray log or image, not a spec)."""
SPEC_SUFFIXES = (".yaml", ".yml")


def is_spec_name(name: str) -> bool:
    """Spec files are ``*.yaml``/``*.yml``; hidden files (``.web.yaml.swp``, ``.#web.yaml``)
    and backups (``web.yaml~``, ``#web.yaml#``, ``web.yaml.bak``) never match."""
    return name.endswith(SPEC_SUFFIXES) and not name.startswith((".", "#"))


@dataclass(frozen=True)
class _Seen:
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


class DirectorySource:
    """The directory source. ``after_listing`` is a test seam run between listing and
    reading, where a real file can be removed or rewritten to exercise the races."""

    def __init__(
        self,
        root: Path,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        attempts: int = 5,
        after_listing: Callable[[], None] | None = None,
    ) -> None:
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.attempts = attempts
        self.after_listing = after_listing

    def describe(self) -> str:
        return f"directory {self.root}"

    async def snapshot(self) -> Snapshot:
        import asyncio

        return await asyncio.to_thread(self.read_snapshot)

    def read_snapshot(self) -> Snapshot:
        try:
            info = os.stat(self.root)
        except OSError as exc:
            raise SourceError(f"cannot read spec directory {self.root}: {exc.strerror}") from exc
        if not stat.S_ISDIR(info.st_mode):
            raise SourceError(f"spec directory {self.root} is not a directory")
        files: dict[str, bytes] = {}
        errors: dict[str, str] = {}
        unstable: set[str] = set()
        for _attempt in range(self.attempts):
            before, list_errors = self._list()
            seen_before = {rel: self._stat(path) for rel, path in before.items()}
            if self.after_listing is not None:
                self.after_listing()
            files, errors = {}, dict(list_errors)
            for rel, path in sorted(before.items()):
                content, problem = self.read_file(path)
                if content is not None:
                    files[rel] = content
                elif problem is not None:
                    errors[rel] = problem
            after, _ = self._list()
            seen_after = {rel: self._stat(path) for rel, path in after.items()}
            unstable = {
                rel
                for rel in set(seen_before) | set(seen_after)
                if seen_before.get(rel) != seen_after.get(rel)
            }
            if not unstable:
                break
        for rel in unstable:
            files.pop(rel, None)
            errors[rel] = "kept changing while being read"
        return Snapshot(
            revision=Snapshot.content_revision(files, errors),
            files=MappingProxyType(files),
            file_errors=MappingProxyType(errors),
            source=str(self.root),
        )

    def _list(self) -> tuple[dict[str, Path], dict[str, str]]:
        found: dict[str, Path] = {}
        errors: dict[str, str] = {}
        visited: set[tuple[int, int]] = set()

        def walk(directory: Path, rel: str) -> None:
            try:
                info = os.stat(directory)
            except OSError as exc:
                errors[rel or "."] = f"cannot read directory: {exc.strerror}"
                return
            key = (info.st_dev, info.st_ino)
            if key in visited:
                errors[rel] = "directory symlink loop: not followed"
                return
            visited.add(key)
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                errors[rel or "."] = f"cannot list directory: {exc.strerror}"
                return
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                child = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=True)
                except OSError:
                    is_dir = False
                if is_dir:
                    walk(Path(entry.path), child)
                elif is_spec_name(entry.name):
                    found[child] = Path(entry.path)

        walk(self.root, "")
        return found, errors

    def read_file(self, path: Path) -> tuple[bytes | None, str | None]:
        """Content, or why not; (None, None) when the file vanished (validly absent)."""
        try:
            # O_NONBLOCK: a FIFO named *.yaml must not hang the daemon on open.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None, "symlink loop"
            return None, f"cannot open: {exc.strerror}"
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None, "not a regular file"
            if info.st_size > self.max_file_bytes:
                return None, f"file too large ({info.st_size} bytes, limit {self.max_file_bytes})"
            chunks: list[bytes] = []
            total = 0
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
                total += len(chunk)
                if total > self.max_file_bytes:
                    return None, f"file too large (over {self.max_file_bytes} bytes)"
            return b"".join(chunks), None
        except OSError as exc:
            return None, f"cannot read: {exc.strerror}"
        finally:
            os.close(fd)

    @staticmethod
    def _stat(path: Path) -> _Seen | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        return _Seen(info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
