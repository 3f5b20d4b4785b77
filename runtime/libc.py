"""Kernel calls Python 3.11's ``os`` module lacks, through ctypes on libc.

One place for flag constants and for turning a failed call into ``SyscallError``
(op + path + errno). Everything here is a thin wrapper: no policy.
"""

from __future__ import annotations

import ctypes
import os

from pycontainers.runtime.errors import MountError, SyscallError

_libc = ctypes.CDLL(None, use_errno=True)

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

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
_libc.mount.argtypes.append(ctypes.c_char_p)
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long
_libc.signal.restype = ctypes.c_void_p


def _enc(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _errno() -> int:
    return ctypes.get_errno()


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
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(arg3),
            ctypes.c_ulong(arg4),
            ctypes.c_ulong(arg5),
        )
    )
    if result < 0:
        raise SyscallError("prctl", f"option {option}", _errno())
    return result


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i, shift in enumerate((0, 32)):
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise SyscallError("capset", "", _errno())


def close_range_cloexec(first: int) -> None:
    """Mark every fd >= first close-on-exec, so no host fd reaches the container."""
    if _libc.syscall(SYS_CLOSE_RANGE, first, ctypes.c_uint(0xFFFFFFFF), CLOSE_RANGE_CLOEXEC):
        raise SyscallError("close_range", "", _errno())


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    how = _OpenHow(flags, 0, resolve)
    fd = int(_libc.syscall(SYS_OPENAT2, dirfd, _enc(path), ctypes.byref(how), ctypes.sizeof(how)))
    if fd < 0:
        raise SyscallError("openat2", path, _errno())
    return fd


_SIGPIPE, _SIGXFSZ = 13, 25


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across
    execve(2): give the container's program the default dispositions back."""
    for signum in (_SIGPIPE, _SIGXFSZ):
        _libc.signal(signum, ctypes.c_void_p(0))
