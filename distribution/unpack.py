"""Applying layer tar streams to a directory: overlayfs layer format or a flattened rootfs.

Two ways to apply a layer (OCI image-spec layer.md):

* ``Mode.OVERLAY``: the layer on its own, in the format overlayfs reads as a lower
  directory. ``.wh.NAME`` becomes a 0:0 character device ``NAME``; ``.wh..wh..opq``
  becomes the opaque xattr on its directory (``trusted.overlay.opaque``, or
  ``user.overlay.opaque`` for ``userxattr`` mounts in a user namespace).
* ``Mode.FLATTEN``: on top of the layers below, in one directory, applying whiteouts by
  deleting. A whiteout hides only what *lower* layers put there (image-spec: "files that
  are present in the same layer as a whiteout file can only be hidden by whiteout files
  in subsequent layers"), so paths this layer wrote are remembered and kept.

Every path is made relative (absolute paths and ``..`` are refused) and every parent is
resolved inside the root (``saferoot``); the last component is created with ``*at``
calls that do not follow it. Directory metadata is applied after the layer, because
writing children changes a directory's mtime and a read-only mode would block them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from enum import Enum

from pycontainers.distribution.layer_errors import LayerError, MalformedLayer, UnsafeEntry
from pycontainers.distribution.saferoot import InRoot
from pycontainers.distribution.tarstream import (
    BLOCKDEV,
    CHARDEV,
    DIRECTORY,
    FIFO,
    HARDLINK,
    REGULAR,
    SYMLINK,
    TarEntry,
    TarReader,
)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_AUFS_META_PREFIX = ".wh..wh."
# xattrs that would change how overlayfs reads the layer (redirects, metacopy, opaque):
# a layer may not set them itself; opaque comes only from the marker file.
_RESERVED_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Mode(Enum):
    OVERLAY = "overlay"
    FLATTEN = "flatten"


@dataclass(frozen=True)
class UnpackLimits:
    """Bounds that stop decompression bombs; ``None`` means unbounded."""

    max_bytes: int | None = 64 << 30
    max_entries: int | None = 2_000_000


DEFAULT_LIMITS = UnpackLimits()


@dataclass(frozen=True)
class ApplyOptions:
    mode: Mode = Mode.FLATTEN
    # Ownership needs CAP_CHOWN; rootless unpack keeps the caller's ids.
    preserve_owners: bool = field(default_factory=lambda: os.geteuid() == 0)
    opaque_xattr: str = "trusted.overlay.opaque"
    use_openat2: bool | None = None


@dataclass
class ApplyStats:
    entries: int = 0
    files: int = 0
    bytes: int = 0
    whiteouts: int = 0
    skipped_devices: int = 0
    skipped_xattrs: int = 0
    ignored: int = 0

    def __add__(self, other: ApplyStats) -> ApplyStats:
        return ApplyStats(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(ApplyStats))
        )


def safe_relpath(name: str, what: str) -> str:
    """The entry's path relative to the root (``""`` for the root), or ``UnsafeEntry``."""
    if name.startswith("/"):
        raise UnsafeEntry(f"{what}: entry {name!r}: absolute path")
    parts = [p for p in name.split("/") if p and p != "."]
    if ".." in parts:
        raise UnsafeEntry(f"{what}: entry {name!r}: path contains '..'")
    return "/".join(parts)


@dataclass
class _DirMeta:
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    xattrs: dict[str, bytes]


class LayerApplier:
    """Applies one tar stream to the directory open as ``root_fd``."""

    def __init__(self, root_fd: int, options: ApplyOptions, *, what: str = "layer") -> None:
        self.root = InRoot(root_fd, use_openat2=options.use_openat2)
        self.opt = options
        self.what = what
        self.stats = ApplyStats()
        self._dirs: dict[str, _DirMeta] = {}
        self._upper: set[str] = set()  # paths this layer wrote (FLATTEN whiteout rule)
        self._upper_dirs: set[str] = set()  # directories on the way to those paths
        # Without CAP_DAC_OVERRIDE, permission bits bind us too (rootless unpack).
        self._privileged = os.geteuid() == 0

    def close(self) -> None:
        self.root.close()

    # -- driving ---------------------------------------------------------------------

    def apply(self, reader: TarReader) -> ApplyStats:
        try:
            for entry in reader:
                self.stats.entries += 1
                self._entry(reader, entry)
            self._finish_dirs()
        finally:
            self.root.close()
        return self.stats

    def _entry(self, reader: TarReader, entry: TarEntry) -> None:
        path = safe_relpath(entry.name, self.what)
        if path.startswith(_AUFS_META_PREFIX):
            self.stats.ignored += 1  # aufs hard-link stash (.wh..wh.plnk/...) at the root
            return
        parent, _, base = path.rpartition("/")
        try:
            try:
                self._dispatch(reader, entry, path, parent, base)
            except PermissionError:
                # Unprivileged, a lower layer's read-only directory (0555) blocks us as
                # it would block any owner; open it up for this layer, restore it at
                # the end. A file whose data was already consumed cannot be retried.
                if self._privileged or reader.data_left != entry.size:
                    raise
                if not self._make_writable(parent):
                    raise
                self._dispatch(reader, entry, path, parent, base)
        except LayerError:
            raise
        except (ValueError, OverflowError) as exc:  # NUL in a name, ids or times out of range
            raise MalformedLayer(f"{self.what}: entry {entry.name!r}: {exc}") from exc
        except OSError as exc:
            raise LayerError(
                f"{self.what}: entry {entry.name!r}: {exc.strerror or exc} "
                f"({errno.errorcode.get(exc.errno or 0, exc.errno)})"
            ) from exc
        if not base.startswith(WHITEOUT_PREFIX):
            self._note_upper(path)

    def _dispatch(
        self, reader: TarReader, entry: TarEntry, path: str, parent: str, base: str
    ) -> None:
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, base, entry)
        elif entry.type == DIRECTORY or not path:
            if entry.type != DIRECTORY:
                raise UnsafeEntry(f"{self.what}: entry {entry.name!r}: not a directory")
            self._directory(path, parent, base, entry)
        elif entry.type == REGULAR:
            self._file(reader, parent, base, entry)
        elif entry.type == SYMLINK:
            pfd = self._parent(parent, entry)
            self._make(pfd, base, lambda: os.symlink(entry.linkname, base, dir_fd=pfd))
            self._meta_at(pfd, base, entry, symlink=True)
        elif entry.type == HARDLINK:
            self._hardlink(parent, base, entry)
        elif entry.type in (CHARDEV, BLOCKDEV, FIFO):
            self._special(parent, base, entry)

    def _make_writable(self, path: str) -> bool:
        """Give the owner rwx on directory ``path`` until the layer ends; False if it had."""
        fd = self.root.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o700 == 0o700:
                return False
            if path not in self._dirs:
                self._dirs[path] = _DirMeta(
                    stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, {}
                )
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)
        finally:
            os.close(fd)
        return True

    def _note_upper(self, path: str) -> None:
        if self.opt.mode is Mode.FLATTEN:
            self._upper.add(path)
            parent = path.rpartition("/")[0]
            while parent and parent not in self._upper_dirs:
                self._upper_dirs.add(parent)
                parent = parent.rpartition("/")[0]

    def _parent(self, parent: str, entry: TarEntry) -> int:
        try:
            return self.root.dir(parent)
        except NotADirectoryError:
            raise LayerError(
                f"{self.what}: entry {entry.name!r}: parent {parent!r} is not a directory"
            ) from None
        except FileNotFoundError:
            raise LayerError(
                f"{self.what}: entry {entry.name!r}: parent {parent!r} is a dangling symlink"
            ) from None

    # -- entries ---------------------------------------------------------------------

    def _make(self, pfd: int, base: str, create: Callable[[], object]) -> None:
        """Run ``create``, replacing whatever is at ``base`` if it exists."""
        try:
            create()
        except FileExistsError:
            self._remove(pfd, base)
            create()

    def _remove(self, pfd: int, base: str) -> bool:
        """Remove ``base`` in ``pfd`` (a tree if a directory); False if it was not there."""
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if not self._privileged:
                _open_up_tree(pfd, base)
            shutil.rmtree(base, dir_fd=pfd)
            self.root.forget()
        else:
            os.unlink(base, dir_fd=pfd)
            if stat.S_ISLNK(st.st_mode):
                self.root.forget()
        return True

    def _file(self, reader: TarReader, parent: str, base: str, entry: TarEntry) -> None:
        pfd = self._parent(parent, entry)
        try:
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            if entry.size:
                write = os.write

                def sink(view: memoryview) -> None:
                    while view:
                        view = view[write(fd, view) :]

                reader.read_data(sink)
            if self.opt.preserve_owners:
                os.fchown(fd, entry.uid, entry.gid)
            os.fchmod(fd, entry.mode & 0o7777)
            if entry.xattrs:
                self._xattrs(fd, entry.xattrs)
            os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
        finally:
            os.close(fd)
        self.stats.files += 1
        self.stats.bytes += entry.size

    def _hardlink(self, parent: str, base: str, entry: TarEntry) -> None:
        target = safe_relpath(entry.linkname, self.what)
        if not target:
            raise UnsafeEntry(f"{self.what}: entry {entry.name!r}: hard link to the root")
        tparent, _, tbase = target.rpartition("/")
        try:
            tfd = self.root.dir(tparent, create=False)
            os.lstat(tbase, dir_fd=tfd)
        except (FileNotFoundError, NotADirectoryError):
            raise LayerError(
                f"{self.what}: entry {entry.name!r}: hard link target {entry.linkname!r} "
                "does not exist in the layer"
            ) from None
        pfd = self._parent(parent, entry)
        if tfd == pfd and tbase == base:
            return
        self._make(
            pfd,
            base,
            lambda: os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False),
        )

    def _special(self, parent: str, base: str, entry: TarEntry) -> None:
        pfd = self._parent(parent, entry)
        kind = {CHARDEV: stat.S_IFCHR, BLOCKDEV: stat.S_IFBLK, FIFO: stat.S_IFIFO}[entry.type]
        dev = os.makedev(entry.devmajor, entry.devminor) if entry.type != FIFO else 0
        try:
            self._make(pfd, base, lambda: os.mknod(base, kind | 0o600, dev, dir_fd=pfd))
        except PermissionError:
            if entry.type == FIFO:
                raise
            self.stats.skipped_devices += 1  # no CAP_MKNOD here (rootless): as umoci does
            return
        self._meta_at(pfd, base, entry, symlink=False)

    def _meta_at(self, pfd: int, base: str, entry: TarEntry, *, symlink: bool) -> None:
        if self.opt.preserve_owners:
            os.chown(base, entry.uid, entry.gid, dir_fd=pfd, follow_symlinks=False)
        if not symlink:
            # ``base`` was just created by us as a non-symlink in a directory we hold.
            os.chmod(base, entry.mode & 0o7777, dir_fd=pfd)
            if entry.xattrs:
                # Special files cannot be opened for I/O; /proc/self/fd of an O_PATH
                # handle names the inode itself (not followed: it is not a symlink).
                fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
                try:
                    self._xattrs(f"/proc/self/fd/{fd}", entry.xattrs)
                finally:
                    os.close(fd)
        os.utime(
            base,
            ns=(entry.mtime_ns, entry.mtime_ns),
            dir_fd=pfd,
            follow_symlinks=not symlink,
        )

    def _xattrs(self, target: int | str, xattrs: dict[str, bytes]) -> None:
        """Set a layer's xattrs, minus overlay's own; a file system without them is fine.

        Labels a file system cannot hold (ENOTSUP) or an unprivileged caller may not set
        (EPERM: trusted.*, security.*) are skipped, as containerd and umoci skip them,
        so such a layer still unpacks.
        """
        for name, value in xattrs.items():
            if name.startswith(_RESERVED_XATTR_PREFIXES):
                continue
            try:
                os.setxattr(target, name, value)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                    raise
                self.stats.skipped_xattrs += 1

    def _directory(self, path: str, parent: str, base: str, entry: TarEntry) -> None:
        if path:
            pfd = self._parent(parent, entry)
            try:
                os.mkdir(base, 0o700, dir_fd=pfd)
            except FileExistsError:
                st = os.lstat(base, dir_fd=pfd)
                if not stat.S_ISDIR(st.st_mode):
                    was_whiteout = _is_whiteout(st)
                    self._remove(pfd, base)
                    os.mkdir(base, 0o700, dir_fd=pfd)
                    if was_whiteout and self.opt.mode is Mode.OVERLAY:
                        # A directory re-created over this layer's own whiteout: the
                        # lower directory must stay hidden, which is what opaque means.
                        self._set_opaque(path)
        self._dirs[path] = _DirMeta(
            entry.mode & 0o7777, entry.uid, entry.gid, entry.mtime_ns, entry.xattrs
        )

    # -- whiteouts -------------------------------------------------------------------

    def _whiteout(self, parent: str, base: str, entry: TarEntry) -> None:
        self.stats.whiteouts += 1
        if base == OPAQUE_MARKER:
            if self.opt.mode is Mode.OVERLAY:
                self._parent(parent, entry)
                self._set_opaque(parent)
            else:
                self._prune_lower(parent)
            return
        if base.startswith(_AUFS_META_PREFIX):
            # aufs bookkeeping (.wh..wh.plnk, .wh..wh.orph) in old Docker layers: not
            # content, and Docker's own extractor drops it too.
            self.stats.whiteouts -= 1
            self.stats.ignored += 1
            return
        name = base[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", ".."):
            raise UnsafeEntry(f"{self.what}: entry {entry.name!r}: invalid whiteout name")
        target = f"{parent}/{name}" if parent else name
        if self.opt.mode is Mode.OVERLAY:
            pfd = self._parent(parent, entry)
            try:
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
            except FileExistsError:
                # Written earlier by this layer: it already hides the lower entry, but a
                # directory would merge with the lower one unless it is opaque.
                if stat.S_ISDIR(os.lstat(name, dir_fd=pfd).st_mode):
                    self._set_opaque(target)
                return
            if self.opt.preserve_owners:
                # overlayfs does not care who owns a whiteout; 0:0 is the convention.
                os.chown(name, 0, 0, dir_fd=pfd, follow_symlinks=False)
            return
        if target in self._upper:
            if target in self._dirs:
                self._prune_lower(target)
            return
        try:
            pfd = self.root.dir(parent, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing below to hide
        self._remove(pfd, name)

    def _set_opaque(self, path: str) -> None:
        fd = self.root.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.setxattr(fd, self.opt.opaque_xattr, b"y")
        finally:
            os.close(fd)

    def _prune_lower(self, path: str) -> None:
        """Remove what lower layers left under directory ``path`` (FLATTEN opaque)."""
        try:
            dfd = self.root.dir(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        names = [e.name for e in _scan(dfd)]
        for name in names:
            child = f"{path}/{name}" if path else name
            if child in self._upper_dirs or (child in self._upper and child in self._dirs):
                self._prune_lower(child)
                dfd = self.root.dir(path)
            elif child not in self._upper:
                self._remove(dfd, name)
                dfd = self.root.dir(path)

    # -- directories, last -----------------------------------------------------------

    def _finish_dirs(self) -> None:
        for path, meta in self._dirs.items():
            try:
                self._finish_dir(path, meta)
            except OSError as exc:
                raise LayerError(
                    f"{self.what}: directory {path or '.'!r}: {exc.strerror or exc}"
                ) from exc

    def _finish_dir(self, path: str, meta: _DirMeta) -> None:
        try:
            fd = self.root.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return  # replaced or removed later in the layer
            raise
        try:
            if self.opt.preserve_owners:
                os.fchown(fd, meta.uid, meta.gid)
            os.fchmod(fd, meta.mode)
            if meta.xattrs:
                self._xattrs(fd, meta.xattrs)
            os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))
        finally:
            os.close(fd)


def _open_up_tree(pfd: int, base: str) -> None:
    """Owner rwx on every directory of the tree ``base``, so an owner can delete it.

    Each directory is reached by ``O_NOFOLLOW`` opens from ``pfd`` down and changed
    through its ``O_PATH`` handle, so a symlink in the tree is never followed.
    """
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        top = os.open(base, flags, dir_fd=pfd)
    except OSError:
        return
    stack = [top]
    while stack:
        fd = stack.pop()
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & 0o700 != 0o700:
                os.chmod(f"/proc/self/fd/{fd}", mode | 0o700)
            names = [e.name for e in _scan(fd) if e.is_dir(follow_symlinks=False)]
            for name in names:
                with contextlib.suppress(OSError):
                    stack.append(os.open(name, flags, dir_fd=fd))
        except OSError:
            pass  # rmtree reports what still cannot be removed
        finally:
            os.close(fd)


def _scan(dir_fd: int) -> list[os.DirEntry[str]]:
    """The entries of a directory held as an ``O_PATH`` handle."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        with os.scandir(fd) as it:  # scandir duplicates fd; ours is closed below
            return list(it)
    finally:
        os.close(fd)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def apply_layer(
    root_fd: int,
    chunks: Iterable[bytes],
    options: ApplyOptions,
    *,
    limits: UnpackLimits = DEFAULT_LIMITS,
    what: str = "layer",
) -> ApplyStats:
    """Apply one uncompressed tar stream to the directory ``root_fd``; reads it to the end."""
    reader = TarReader(chunks, what=what, max_entries=limits.max_entries)
    applier = LayerApplier(root_fd, options, what=what)
    stats = applier.apply(reader)
    reader.finish()
    return stats
