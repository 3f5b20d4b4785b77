"""OCI mount options -> mount(2) flags, propagation changes and the data string (pure).

The table follows mount(8) and runc's ``parseMountOptions``: a known word sets or clears
a flag, a propagation word becomes a separate mount(2) call (the kernel ignores other
flags when propagation flags are given), and anything else is filesystem data
(``size=64k``, ``mode=755``, ``newinstance``).
"""

from __future__ import annotations

from pycontainers.runtime import libc

_FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (True, libc.MS_RDONLY),
    "rw": (False, libc.MS_RDONLY),
    "suid": (False, libc.MS_NOSUID),
    "nosuid": (True, libc.MS_NOSUID),
    "dev": (False, libc.MS_NODEV),
    "nodev": (True, libc.MS_NODEV),
    "exec": (False, libc.MS_NOEXEC),
    "noexec": (True, libc.MS_NOEXEC),
    "sync": (True, libc.MS_SYNCHRONOUS),
    "async": (False, libc.MS_SYNCHRONOUS),
    "dirsync": (True, libc.MS_DIRSYNC),
    "remount": (True, libc.MS_REMOUNT),
    "mand": (True, libc.MS_MANDLOCK),
    "nomand": (False, libc.MS_MANDLOCK),
    "atime": (False, libc.MS_NOATIME),
    "noatime": (True, libc.MS_NOATIME),
    "diratime": (False, libc.MS_NODIRATIME),
    "nodiratime": (True, libc.MS_NODIRATIME),
    "bind": (True, libc.MS_BIND),
    "rbind": (True, libc.MS_BIND | libc.MS_REC),
    "relatime": (True, libc.MS_RELATIME),
    "norelatime": (False, libc.MS_RELATIME),
    "strictatime": (True, libc.MS_STRICTATIME),
    "nostrictatime": (False, libc.MS_STRICTATIME),
    "lazytime": (True, libc.MS_LAZYTIME),
    "nolazytime": (False, libc.MS_LAZYTIME),
    "nosymfollow": (True, libc.MS_NOSYMFOLLOW),
    "symfollow": (False, libc.MS_NOSYMFOLLOW),
}

PROPAGATION: dict[str, int] = {
    "private": libc.MS_PRIVATE,
    "rprivate": libc.MS_PRIVATE | libc.MS_REC,
    "shared": libc.MS_SHARED,
    "rshared": libc.MS_SHARED | libc.MS_REC,
    "slave": libc.MS_SLAVE,
    "rslave": libc.MS_SLAVE | libc.MS_REC,
    "unbindable": libc.MS_UNBINDABLE,
    "runbindable": libc.MS_UNBINDABLE | libc.MS_REC,
}

# runc extensions that change nothing for us ("tmpcopyup" copies the image's files into a
# tmpfs; we do not implement it, and an empty tmpfs is what crun gives without it too).
_IGNORED = ("tmpcopyup", "notmpcopyup")


class MountOptions:
    __slots__ = ("data", "flags", "propagation")

    def __init__(self, flags: int, propagation: list[int], data: str) -> None:
        self.flags = flags
        self.propagation = propagation
        self.data = data

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & libc.MS_BIND)

    def __repr__(self) -> str:
        return (
            f"MountOptions(flags={self.flags:#x}, propagation={self.propagation}, "
            f"data={self.data!r})"
        )


def parse(options: list[str], mount_type: str = "") -> MountOptions:
    flags = libc.MS_BIND if mount_type == "bind" else 0
    propagation: list[int] = []
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            clear, bit = not _FLAGS[opt][0], _FLAGS[opt][1]
            flags = flags & ~bit if clear else flags | bit
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    return MountOptions(flags, propagation, ",".join(data))


# statvfs f_flag bits that share their value with MS_* flags, and ST_RELATIME which does not.
_ST_SAME = (
    libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC | libc.MS_SYNCHRONOUS
    | libc.MS_MANDLOCK | libc.MS_NOATIME | libc.MS_NODIRATIME
)  # fmt: skip
_ST_RELATIME = 4096


def flags_from_statvfs(f_flag: int) -> int:
    """Flags a bind remount must repeat (the kernel refuses to drop locked ones)."""
    flags = f_flag & _ST_SAME
    if f_flag & _ST_RELATIME:
        flags |= libc.MS_RELATIME
    return flags
