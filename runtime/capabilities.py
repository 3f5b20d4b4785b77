"""process.capabilities -> bitmasks, and the credential switch before execve.

The order matters (capabilities(7)): the bounding set is dropped while we are still
fully privileged (needs CAP_SETPCAP); PR_SET_KEEPCAPS keeps the permitted set across
setuid() to a non-zero uid; capset() then sets effective/permitted/inheritable; ambient
capabilities are raised last because each must already be permitted and inheritable.
"""

from __future__ import annotations

import os

from pycontainers.runtime import libc
from pycontainers.runtime.config import User
from pycontainers.runtime.errors import ConfigError, SyscallError

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def to_masks(caps: dict[str, list[str]], file: str = "config.json") -> dict[str, int]:
    """Name lists -> bitmasks per set; unknown names or sets are config errors."""
    masks = dict.fromkeys(SETS, 0)
    for kind, names in caps.items():
        if kind not in masks:
            raise ConfigError(file, f"process.capabilities.{kind}", "unknown capability set")
        for name in names:
            try:
                bit = NAMES.index(name)
            except ValueError:
                raise ConfigError(
                    file, f"process.capabilities.{kind}", f"unknown capability {name!r}"
                ) from None
            masks[kind] |= 1 << bit
    return masks


def _setgroups_allowed() -> bool:
    """False in a user namespace whose setgroups(2) was denied (an unprivileged user's
    own-id mapping): there the supplementary groups stay as they are, as with runc."""
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


def switch_credentials(user: User, masks: dict[str, int] | None) -> None:
    """Become ``user`` holding exactly the configured capabilities (None: leave them)."""
    top = last_cap()
    if masks is not None:
        for cap in range(top + 1):
            if not masks["bounding"] >> cap & 1:
                libc.prctl(libc.PR_CAPBSET_DROP, cap)
        libc.prctl(libc.PR_SET_KEEPCAPS, 1)
    try:
        if user.additional_gids or _setgroups_allowed():
            os.setgroups(user.additional_gids)
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
    except OSError as exc:
        detail = "process.user"
        if exc.errno == 22:  # EINVAL: the id has no mapping in our user namespace
            detail = "process.user: the uid or gid is not mapped in linux.uidMappings/gidMappings"
        raise SyscallError("setuid", f"{user.uid}:{user.gid}", exc.errno or 0, detail) from exc
    if masks is None:
        return
    libc.prctl(libc.PR_SET_KEEPCAPS, 0)
    valid = (1 << (top + 1)) - 1
    libc.capset(
        masks["effective"] & valid, masks["permitted"] & valid, masks["inheritable"] & valid
    )
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    # Only a capability both permitted and inheritable can be ambient; runc skips the
    # others (runc spec's default lists ambient capabilities but no inheritable set).
    ambient = masks["ambient"] & masks["permitted"] & masks["inheritable"]
    for cap in range(top + 1):
        if ambient >> cap & 1:
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, cap)
