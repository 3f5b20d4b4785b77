"""Directory handles resolved *inside* a root, the way runc and umoci resolve rootfs paths.

Every path a layer names is looked up relative to the root's file descriptor with
``openat2(RESOLVE_IN_ROOT)`` (Linux 5.6, syscall 437): symlinks are followed but ``/``
and ``..`` never leave the root, so a symlink planted by an earlier entry or an earlier
layer redirects a write to somewhere *inside* the root, never outside. Where openat2 is
unavailable (old kernel, seccomp) the same semantics are emulated one component at a
time with ``O_PATH | O_NOFOLLOW`` and ``readlinkat``. The final component of every
operation is handled by the caller with ``*at`` calls that never follow it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections import OrderedDict

_SYS_OPENAT2 = 437  # x86_64, aarch64 and every arch since 5.6 share this number
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_MAX_SYMLINKS = 40  # the kernel's MAXSYMLINKS
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def _openat2(dirfd: int, path: str, flags: int) -> int:
    how = _OpenHow(flags, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    fd = _syscall(
        _SYS_OPENAT2,
        ctypes.c_int(dirfd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def openat2_works() -> bool:
    """Whether this kernel (and seccomp profile) lets us call openat2."""
    try:
        fd = _openat2(os.open("/", _DIR_FLAGS), ".", _DIR_FLAGS)
    except OSError:
        return False
    os.close(fd)
    return True


def open_in_root_emulated(root_fd: int, path: str, flags: int) -> int:
    """``RESOLVE_IN_ROOT`` by hand: walk components, re-rooting absolute symlinks.

    ``..`` pops the stack of directories walked so far and stops at the root, exactly as
    the kernel treats ``..`` at a process root.
    """
    todo = [c for c in path.split("/") if c not in ("", ".")]
    todo.reverse()
    stack: list[int] = []
    cur = os.dup(root_fd)
    hops = 0
    try:
        while todo:
            comp = todo.pop()
            if comp == "..":
                if stack:
                    os.close(cur)
                    cur = stack.pop()
                continue
            last = not todo
            try:
                fd = os.open(comp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, path) from None
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                os.close(fd)
                if last and flags & os.O_NOFOLLOW:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(comp, dir_fd=cur)
                if target.startswith("/"):
                    for held in stack:
                        os.close(held)
                    stack.clear()
                    os.close(cur)
                    cur = os.dup(root_fd)
                parts = [c for c in target.split("/") if c not in ("", ".")]
                todo.extend(reversed(parts))
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(cur)
            cur = fd
        if flags & os.O_DIRECTORY and not stat.S_ISDIR(os.fstat(cur).st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        if flags & os.O_PATH:
            return cur
        # Reopen the resolved object with the wanted access; "." is never a symlink.
        fd = os.open(".", (flags & ~os.O_NOFOLLOW) | os.O_CLOEXEC, dir_fd=cur)
        os.close(cur)
        return fd
    except BaseException:
        os.close(cur)
        raise
    finally:
        for held in stack:
            os.close(held)


class InRoot:
    """Opens directories below ``root_fd`` without ever leaving it; caches the handles.

    The cache maps a layer path (``"usr/lib"``) to an ``O_PATH`` descriptor of the
    directory it resolved to. Call ``forget()`` whenever a directory or symlink is
    removed or replaced, since a cached path may have resolved through it.
    """

    CACHE_SIZE = 512

    def __init__(self, root_fd: int, *, use_openat2: bool | None = None) -> None:
        self.root_fd = root_fd
        self.use_openat2 = openat2_works() if use_openat2 is None else use_openat2
        self._cache: OrderedDict[str, int] = OrderedDict()

    def open(self, path: str, flags: int) -> int:
        """Open ``path`` (relative to the root) with in-root resolution of every part."""
        if not path:
            return os.open(".", (flags & ~os.O_NOFOLLOW) | os.O_CLOEXEC, dir_fd=self.root_fd)
        if self.use_openat2:
            return _openat2(self.root_fd, path, flags | os.O_CLOEXEC)
        return open_in_root_emulated(self.root_fd, path, flags)

    def dir(self, path: str, *, create: bool = True) -> int:
        """An ``O_PATH`` handle of directory ``path``, creating missing parts (0755, root).

        Raises ``NotADirectoryError`` if a component exists and is not a directory (or
        a symlink to one inside the root).
        """
        if not path:
            return self.root_fd
        fd = self._cache.get(path)
        if fd is not None:
            self._cache.move_to_end(path)
            return fd
        try:
            fd = self.open(path, _DIR_FLAGS)
        except FileNotFoundError:
            if not create:
                raise
            parent, _, name = path.rpartition("/")
            pfd = self.dir(parent)
            # EEXIST here means a dangling symlink: the open below reports it.
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=pfd)
            fd = self.open(path, _DIR_FLAGS)
        self._cache[path] = fd
        if len(self._cache) > self.CACHE_SIZE:
            _, old = self._cache.popitem(last=False)
            os.close(old)
        return fd

    def forget(self) -> None:
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def close(self) -> None:
        self.forget()
