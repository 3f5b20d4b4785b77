"""Which cgroup hierarchies this host has and where the caller sits in them (pure + a reader).

Three layouts exist (see cgroups(7)): *unified* (one cgroup2 hierarchy at /sys/fs/cgroup,
modern hosts), *hybrid* (cgroup v1 controller hierarchies plus a cgroup2 mount, usually at
/sys/fs/cgroup/unified, Debian 11/12 with systemd's default) and *legacy* (v1 only). The
layout is read from /proc/self/mountinfo and /proc/self/cgroup, never guessed from paths.

Also the cgroup part's exception family and its one-time warnings. Every container start
imports this module: it imports nothing beyond ``os`` (no ``typing``: its import alone
costs several milliseconds; records are tuple subclasses instead of NamedTuples).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Final

UNIFIED: Final = "unified"
"""Key of the cgroup2 hierarchy in ``paths()``."""
SYSTEMD_NAMED: Final = "name=systemd"
CGROUP_ROOT: Final = "/sys/fs/cgroup"
V1_CONTROLLERS: Final = frozenset(
    {
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
        "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc",
    }
)  # fmt: skip

_warned: set[str] = set()


class CgroupError(Exception):
    """A cgroup cannot be created, joined, limited, signalled or removed."""


class CgroupLimitError(CgroupError):
    """The config demands a limit that this host (or this user) cannot apply."""


def warn_once(message: str, key: str | None = None) -> None:
    """Log a warning the first time ``key`` (default: the message) comes up in this process."""
    key = key or message
    if key not in _warned:
        _warned.add(key)
        import logging  # only when there is something to say: this runs in every start

        logging.getLogger("pycontainers.runtime.cgroups").warning("%s", message)


class Hierarchy(tuple[str, str, str, str, frozenset[str], bool]):
    """One mounted cgroup hierarchy and where the caller sits in it."""

    __slots__ = ()

    def __new__(
        cls,
        key: str,
        mountpoint: str,
        root: str,
        own: str,
        controllers: frozenset[str],
        readonly: bool,
    ) -> Hierarchy:
        return super().__new__(cls, (key, mountpoint, root, own, controllers, readonly))

    @property
    def key(self) -> str:
        return self[0]

    @property
    def mountpoint(self) -> str:
        return self[1]

    @property
    def root(self) -> str:
        return self[2]

    @property
    def own(self) -> str:
        return self[3]

    @property
    def controllers(self) -> frozenset[str]:
        return self[4]

    @property
    def readonly(self) -> bool:
        return self[5]

    @property
    def version(self) -> int:
        return 2 if self.key == UNIFIED else 1

    def dir_of(self, cgroup: str) -> str:
        """Directory of a cgroup path (as /proc/self/cgroup writes it) under this mount."""
        rel = cgroup
        if self.root != "/" and (cgroup == self.root or cgroup.startswith(self.root + "/")):
            rel = cgroup[len(self.root) :]
        return os.path.normpath(self.mountpoint + "/" + rel.lstrip("/"))


class Layout(tuple[tuple[Hierarchy, ...]]):
    __slots__ = ()

    def __new__(cls, hierarchies: tuple[Hierarchy, ...]) -> Layout:
        return super().__new__(cls, (hierarchies,))

    @property
    def hierarchies(self) -> tuple[Hierarchy, ...]:
        return self[0]

    @property
    def mode(self) -> str:
        versions = {h.version for h in self.hierarchies if h.key != SYSTEMD_NAMED}
        if versions == {2}:
            return "unified"
        if 2 in versions or any(h.key == UNIFIED for h in self.hierarchies):
            return "hybrid"
        return "legacy"

    def holder(self, controller: str) -> Hierarchy | None:
        """The hierarchy the controller is bound to (a controller lives in one only)."""
        for h in self.hierarchies:
            if controller in h.controllers:
                return h
        return None


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/PID/cgroup -> {hierarchy key: cgroup path}; the v2 line (``0::``) is ``unified``."""
    own: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hid, controllers, path = parts
        own[_key_of(controllers.split(",")) if controllers else UNIFIED] = path
    return own


def _key_of(options: Iterable[str]) -> str:
    names = sorted(o for o in options if o in V1_CONTROLLERS)
    named = [o for o in options if o.startswith("name=")]
    return ",".join(names + named)


def parse_mountinfo(text: str, own: Mapping[str, str]) -> list[Hierarchy]:
    """Visible cgroup hierarchies in a /proc/PID/mountinfo text.

    A mount hidden by a later one on the same place or above it is skipped (a read-only bind
    over a hierarchy, as systemd-nspawn makes, or a fresh tmpfs over /sys/fs/cgroup); a
    hierarchy mounted at two places is used at its first one.
    """
    mounts: list[tuple[str, Hierarchy | None, str]] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 3:
            continue
        device, root, mountpoint = fields[2], _unescape(fields[3]), _unescape(fields[4])
        hierarchy = None
        if tail[0] in ("cgroup", "cgroup2"):
            super_opts = tail[2].split(",")
            readonly = "ro" in fields[5].split(",") or "ro" in super_opts
            if tail[0] == "cgroup2":
                key, controllers = UNIFIED, frozenset[str]()
            else:
                key = _key_of(super_opts)
                controllers = frozenset(o for o in super_opts if o in V1_CONTROLLERS)
            if key:
                hierarchy = Hierarchy(
                    key, mountpoint, root, own.get(key, "/"), controllers, readonly
                )
        mounts.append((mountpoint, hierarchy, device))
    found: list[Hierarchy] = []
    devices: set[str] = set()
    for i, (mountpoint, hierarchy, device) in enumerate(mounts):
        if hierarchy is None or device in devices:
            continue
        hidden = any(
            mountpoint == later or mountpoint.startswith(later.rstrip("/") + "/")
            for later, _h, _d in mounts[i + 1 :]
        )
        if not hidden:
            devices.add(device)
            found.append(hierarchy)
    return found


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (proc(5))
    return (
        path.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def detect_layout(pid: int | str = "self") -> Layout:
    """Read a process's cgroup layout; cgroup2 controllers from the root cgroup.controllers."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            own = parse_proc_cgroup(f.read())
        with open(f"/proc/{pid}/mountinfo") as f:
            hierarchies = parse_mountinfo(f.read(), own)
    except OSError as exc:
        raise CgroupError(f"cannot read the cgroup layout of process {pid}: {exc}") from exc
    result = []
    for h in hierarchies:
        if h.version == 2:
            bound = set().union(*(o.controllers for o in hierarchies if o.version == 1))
            available = read_words(os.path.join(h.mountpoint, "cgroup.controllers"))
            h = Hierarchy(
                h.key, h.mountpoint, h.root, h.own, frozenset(available) - bound, h.readonly
            )
        result.append(h)
    return Layout(tuple(result))


def read_words(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return []


def systemd_style_path(cgroups_path: str) -> str:
    """runc's ``slice:prefix:name`` form -> the cgroup path systemd would use for it."""
    slice_name, prefix, name = cgroups_path.split(":")
    slice_name = slice_name or "system.slice"
    parts = []
    stem = slice_name.removesuffix(".slice")
    if stem != "-":
        words = stem.split("-")
        parts = ["-".join(words[: i + 1]) + ".slice" for i in range(len(words))]
    unit = name if name.endswith((".scope", ".slice")) else f"{prefix}-{name}.scope"
    return "/" + "/".join([*parts, unit])
