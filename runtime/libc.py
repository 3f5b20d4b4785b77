"""Kernel calls Python 3.11's ``os`` module lacks, through ctypes on libc.

One place for flag constants and for turning a failed call into ``SyscallError``
(op + path + errno). Everything here is a thin wrapper: no policy.

It binds through ``_ctypes``, the C half of ``ctypes``, with the few C types it needs
defined here as ``ctypes`` defines them: importing ``ctypes`` itself (which builds
dozens of types and imports ``struct`` and ``types``) costs ~2 ms on every container
start, more than all the calls made here.
"""

from __future__ import annotations

import _ctypes
import os
from _ctypes import Structure, byref, get_errno, sizeof

from pycontainers.runtime.errors import MountError, SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    _SimpleCData = _ctypes._SimpleCData[object]
else:
    _SimpleCData = _ctypes._SimpleCData  # not subscriptable at run time


class c_int(_SimpleCData):
    _type_ = "i"


class c_uint(_SimpleCData):
    _type_ = "I"


class c_long(_SimpleCData):
    _type_ = "l"


class c_ulong(_SimpleCData):
    _type_ = "L"


class c_char_p(_SimpleCData):
    _type_ = "z"


class c_void_p(_SimpleCData):
    _type_ = "P"


# x86_64 and aarch64 Linux are LP64: int is 32 bits, long 64
c_uint32 = c_uint
c_uint64 = c_ulong


class _Function(_ctypes.CFuncPtr):
    """A libc function as ``ctypes.CDLL(None, use_errno=True)`` binds it."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _Process:
    _handle = _ctypes.dlopen(None, os.RTLD_LAZY)  # type: ignore[arg-type]  # NULL: this process


class _Libc:
    """The symbols below, bound on first use."""

    def __getattr__(self, name: str) -> _Function:
        # (name, anything with the library's _handle), as CDLL.__getattr__ passes it
        func = _Function((name, _Process))  # type: ignore[arg-type]
        setattr(self, name, func)
        return func


_libc = _Libc()

# clone(2) / unshare(2) / setns(2) namespace flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_machine = os.uname().machine
# syscall numbers glibc 2.36 has no wrapper for
if _machine == "aarch64":
    SYS_PIVOT_ROOT, SYS_CLOSE_RANGE, SYS_OPENAT2 = 41, 436, 437
else:
    SYS_PIVOT_ROOT, SYS_CLOSE_RANGE, SYS_OPENAT2 = 155, 436, 437

CLOSE_RANGE_CLOEXEC = 1 << 2

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

_libc.mount.argtypes = (c_char_p, c_char_p, c_char_p, c_ulong, c_char_p)
_libc.umount2.argtypes = (c_char_p, c_int)
_libc.syscall.restype = c_long
_libc.signal.restype = c_void_p


def _enc(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _errno() -> int:
    return int(get_errno())


def mount(
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None,
    shown_target: str | None = None,
) -> None:
    """mount(2); ``shown_target`` names the path for the error when target is a /proc fd."""
    if _libc.mount(_enc(source), _enc(target), _enc(fstype), flags, _enc(data)) != 0:
        err = _errno()
        detail = f"source {source}, type {fstype}" if source or fstype else ""
        raise MountError("mount", shown_target or target, err, detail)


def umount2(target: str, flags: int = 0) -> None:
    if _libc.umount2(_enc(target), flags) != 0:
        raise MountError("umount", target, _errno())


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        raise SyscallError("unshare", f"flags {flags:#x}", _errno())


def setns(fd: int, nstype: int, path: str = "") -> None:
    if _libc.setns(fd, nstype) != 0:
        raise SyscallError("setns", path, _errno())


def pivot_root(new_root: str, put_old: str) -> None:
    if _libc.syscall(SYS_PIVOT_ROOT, _enc(new_root), _enc(put_old)) != 0:
        raise SyscallError("pivot_root", new_root, _errno())


def sethostname(name: str) -> None:
    raw = name.encode()
    if _libc.sethostname(raw, len(raw)) != 0:
        raise SyscallError("sethostname", name, _errno())


def setdomainname(name: str) -> None:
    raw = name.encode()
    if _libc.setdomainname(raw, len(raw)) != 0:
        raise SyscallError("setdomainname", name, _errno())


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    result = int(
        _libc.prctl(
            option,
            c_ulong(arg2),
            c_ulong(arg3),
            c_ulong(arg4),
            c_ulong(arg5),
        )
    )
    if result < 0:
        raise SyscallError("prctl", f"option {option}", _errno())
    return result


class _CapHeader(Structure):
    _fields_ = (("version", c_uint32), ("pid", c_int))


class _CapData(Structure):
    _fields_ = (
        ("effective", c_uint32),
        ("permitted", c_uint32),
        ("inheritable", c_uint32),
    )


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i, shift in enumerate((0, 32)):
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    if _libc.capset(byref(header), data) != 0:
        raise SyscallError("capset", "", _errno())


def close_range_cloexec(first: int) -> None:
    """Mark every fd >= first close-on-exec, so no host fd reaches the container."""
    if _libc.syscall(SYS_CLOSE_RANGE, first, c_uint(0xFFFFFFFF), CLOSE_RANGE_CLOEXEC):
        raise SyscallError("close_range", "", _errno())


class _OpenHow(Structure):
    _fields_ = (("flags", c_uint64), ("mode", c_uint64), ("resolve", c_uint64))


def openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    fd = openat2_raw(dirfd, path, flags, resolve)
    if fd < 0:
        raise SyscallError("openat2", path, -fd)
    return fd


def openat2_raw(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """openat2(2): the fd, or -errno (no exception: callers that fall back on a failure
    would pay more for building one than for the call)."""
    how = _OpenHow(flags, 0, resolve)
    fd = int(_libc.syscall(SYS_OPENAT2, dirfd, _enc(path), byref(how), _OPEN_HOW_SIZE))
    return fd if fd >= 0 else -_errno()


_OPEN_HOW_SIZE = sizeof(_OpenHow)


_SIGPIPE, _SIGXFSZ = 13, 25


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across
    execve(2): give the container's program the default dispositions back."""
    for signum in (_SIGPIPE, _SIGXFSZ):
        _libc.signal(signum, c_void_p(0))
