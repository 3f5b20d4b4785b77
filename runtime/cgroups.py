"""Put a container's processes in cgroups and apply ``linux.resources``, on any host layout.

Three layouts exist (see cgroups(7)): *unified* (one cgroup2 hierarchy at /sys/fs/cgroup,
modern hosts), *hybrid* (cgroup v1 controller hierarchies plus a cgroup2 mount, usually at
/sys/fs/cgroup/unified, Debian 11/12 with systemd's default) and *legacy* (v1 only). The
layout is read from /proc/self/mountinfo and /proc/self/cgroup, never guessed from paths.

A container gets one directory per usable hierarchy, all with the same cgroup path. The
manager remembers them as ``paths()`` ({hierarchy key: directory}; the key is the v1
controller list as in /proc/self/cgroup, ``name=systemd``, or ``unified`` for cgroup2) so a
later process rebuilds it with ``CgroupManager.from_paths``.

Placement follows runc: a relative (or absent) ``cgroupsPath`` is relative to the caller's
own cgroup, an absolute one to the hierarchy root. When the caller runs in a cgroup that
systemd delegated to it (``Delegate=yes``: systemd marks it with the ``trusted.delegate`` or
``user.delegate`` xattr), absolute paths are taken inside that delegated subtree instead, so
the container never escapes the unit that supervises it.

Hierarchies that cannot be written (v1 controllers of a rootless user, or v1 mounted read-only
as in systemd-nspawn) are skipped with one warning; a limit that needs such a controller is
an error as root and a warning when rootless (what Podman does on v1).

Device rules (``linux.resources.devices``, plus runc's always-allowed nodes) go to the v1
devices controller where it is writable, else to an eBPF device filter attached to the
cgroup2 directory, which replays the rules with the v1 controller's semantics.

How the runtime uses it::

    cg = manager_for(linux.get("cgroupsPath"), container_id, rootless=rootless)
    cg.create()
    cg.apply(linux.get("resources") or {}, devices=linux.get("devices") or ())
    cg.add_pid(init_pid)              # while the init still waits on its sync pipe
    state["cgroup_paths"] = cg.paths()
    # state / ps / kill --all / delete, in a later process:
    cg = CgroupManager.from_paths(state["cgroup_paths"], rootless=rootless)
    cg.pids(); cg.kill_all(signal.SIGTERM); cg.oom_kill_count(); cg.destroy()
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, NamedTuple

UNIFIED: Final = "unified"
"""Key of the cgroup2 hierarchy in ``paths()``."""
SYSTEMD_NAMED: Final = "name=systemd"
MEMSW_FILE: Final = "memory.memsw.limit_in_bytes"
LEAF_NAME: Final = "supervisor"
"""Leaf a delegated caller moves into before controllers are enabled in its own cgroup."""

CGROUP_ROOT: Final = "/sys/fs/cgroup"
V1_CONTROLLERS: Final = frozenset(
    {
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
        "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc",
    }
)  # fmt: skip
# Controllers enabled for a new cgroup on a pure v2 host even without limits, so that
# memory.events (OOM kills) and pids.current are there, as runc and systemd do.
DEFAULT_V2_CONTROLLERS: Final = ("cpu", "io", "memory", "pids")
V1_TO_V2: Final = {"blkio": "io"}
V2_TO_V1: Final = {"io": "blkio"}
DELEGATE_XATTRS: Final = ("trusted.delegate", "user.delegate")

_warned: set[str] = set()


class CgroupError(Exception):
    """A cgroup cannot be created, joined, limited, signalled or removed."""


class CgroupLimitError(CgroupError):
    """The config demands a limit that this host (or this user) cannot apply."""


class DeviceFilterError(CgroupError):
    """The cgroup2 device filter (eBPF) was refused; ``errno`` says whether it is allowed."""

    def __init__(self, errno_value: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno_value


def _warn_once(message: str, key: str | None = None) -> None:
    """Log a warning the first time ``key`` (default: the message) comes up in this process."""
    key = key or message
    if key not in _warned:
        _warned.add(key)
        import logging  # only when there is something to say: this runs in every start

        logging.getLogger(__name__).warning("%s", message)


# ---------------------------------------------------------------------------------------
# Layout detection (pure parsers + one reader)


class Hierarchy(NamedTuple):
    """One mounted cgroup hierarchy and where the caller sits in it."""

    key: str
    mountpoint: str
    root: str
    own: str
    controllers: frozenset[str]
    readonly: bool

    @property
    def version(self) -> int:
        return 2 if self.key == UNIFIED else 1

    def dir_of(self, cgroup: str) -> str:
        """Directory of a cgroup path (as /proc/self/cgroup writes it) under this mount."""
        rel = cgroup
        if self.root != "/" and (cgroup == self.root or cgroup.startswith(self.root + "/")):
            rel = cgroup[len(self.root) :]
        return os.path.normpath(self.mountpoint + "/" + rel.lstrip("/"))


class Layout(NamedTuple):
    hierarchies: tuple[Hierarchy, ...]

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
            available = _read_words(os.path.join(h.mountpoint, "cgroup.controllers"))
            h = Hierarchy(
                h.key, h.mountpoint, h.root, h.own, frozenset(available) - bound, h.readonly
            )
        result.append(h)
    return Layout(tuple(result))


def _read_words(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return []


# ---------------------------------------------------------------------------------------
# linux.resources -> cgroup file writes (pure)


class Write(NamedTuple):
    """One value for one cgroup file, owned by one controller."""

    controller: str
    file: str
    value: str
    from_unified: bool = False


def cpu_shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], runc's linear mapping (runtime-spec)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000], as runc converts it."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int, memory: int) -> int | None:
    """OCI swap is memory+swap (v1 memsw); v2 memory.swap.max is swap alone. None = unset."""
    if memory == -1 and swap == 0:
        return -1
    if swap in (0, -1):
        return None if swap == 0 else -1
    if memory in (0, -1):
        raise CgroupError("linux.resources.memory.swap: a swap limit needs a memory limit")
    if swap < memory:
        raise CgroupError(
            f"linux.resources.memory.swap: {swap} is below the memory limit {memory} "
            "(swap counts memory plus swap)"
        )
    return swap - memory


def _int(section: Mapping[str, Any], name: str, where: str) -> int:
    value = section.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"linux.resources.{where}.{name}: expected an integer, got {value!r}")
    return value


def _v2_max(value: int) -> str:
    return "max" if value < 0 else str(value)


def _devnum(entry: Mapping[str, Any], where: str) -> str:
    try:
        return f"{int(entry['major'])}:{int(entry['minor'])}"
    except (KeyError, TypeError, ValueError) as exc:
        raise CgroupError(f"linux.resources.{where}: a device needs major and minor") from exc


def resource_writes(resources: Mapping[str, Any], version: int) -> list[Write]:
    """Translate OCI ``linux.resources`` into file writes for a v1 or v2 hierarchy, in order."""
    v2 = version == 2
    out: list[Write] = []
    memory = resources.get("memory") or {}
    if memory:
        limit = _int(memory, "limit", "memory")
        reservation = _int(memory, "reservation", "memory")
        swap = _int(memory, "swap", "memory")
        if v2:
            if limit:
                out.append(Write("memory", "memory.max", _v2_max(limit)))
            if reservation:
                out.append(Write("memory", "memory.low", _v2_max(reservation)))
            swap_v2 = swap_to_v2(swap, limit)
            if swap_v2 is not None:
                out.append(Write("memory", "memory.swap.max", _v2_max(swap_v2)))
        else:
            if limit:
                out.append(Write("memory", "memory.limit_in_bytes", str(limit)))
            if swap or limit == -1:
                out.append(Write("memory", "memory.memsw.limit_in_bytes", str(swap or -1)))
            if reservation:
                out.append(Write("memory", "memory.soft_limit_in_bytes", str(reservation)))
            if memory.get("swappiness") is not None:
                out.append(Write("memory", "memory.swappiness", str(memory["swappiness"])))
            if memory.get("disableOOMKiller"):
                out.append(Write("memory", "memory.oom_control", "1"))
    cpu = resources.get("cpu") or {}
    if cpu:
        shares = _int(cpu, "shares", "cpu")
        quota = _int(cpu, "quota", "cpu")
        period = _int(cpu, "period", "cpu")
        if v2:
            if shares:
                out.append(Write("cpu", "cpu.weight", str(cpu_shares_to_weight(shares))))
            if quota or period:
                text = str(quota) if quota > 0 else "max"
                if period:
                    text += f" {period}"
                out.append(Write("cpu", "cpu.max", text))
            if cpu.get("burst") is not None:
                out.append(Write("cpu", "cpu.max.burst", str(_int(cpu, "burst", "cpu"))))
        else:
            if shares:
                out.append(Write("cpu", "cpu.shares", str(shares)))
            if period:
                out.append(Write("cpu", "cpu.cfs_period_us", str(period)))
            if quota:
                out.append(Write("cpu", "cpu.cfs_quota_us", str(quota)))
            if cpu.get("burst") is not None:
                out.append(Write("cpu", "cpu.cfs_burst_us", str(_int(cpu, "burst", "cpu"))))
            if _int(cpu, "realtimePeriod", "cpu"):
                out.append(Write("cpu", "cpu.rt_period_us", str(cpu["realtimePeriod"])))
            if _int(cpu, "realtimeRuntime", "cpu"):
                out.append(Write("cpu", "cpu.rt_runtime_us", str(cpu["realtimeRuntime"])))
        if cpu.get("idle") is not None:
            out.append(Write("cpu", "cpu.idle", str(_int(cpu, "idle", "cpu"))))
        if cpu.get("cpus"):
            out.append(Write("cpuset", "cpuset.cpus", str(cpu["cpus"])))
        if cpu.get("mems"):
            out.append(Write("cpuset", "cpuset.mems", str(cpu["mems"])))
    pids = resources.get("pids") or {}
    if pids and _int(pids, "limit", "pids"):
        limit = _int(pids, "limit", "pids")
        out.append(Write("pids", "pids.max", str(limit) if limit > 0 else "max"))
    out += _block_io_writes(resources.get("blockIO") or {}, v2)
    for entry in resources.get("hugepageLimits") or []:
        size, limit = entry.get("pageSize"), entry.get("limit")
        if not size or limit is None:
            raise CgroupError("linux.resources.hugepageLimits: each entry needs pageSize and limit")
        name = f"hugetlb.{size}.max" if v2 else f"hugetlb.{size}.limit_in_bytes"
        out.append(Write("hugetlb", name, str(limit)))
    for name, value in (resources.get("unified") or {}).items() if v2 else ():
        if "/" in name or name.startswith("."):
            raise CgroupError(f"linux.resources.unified: {name!r} is not a cgroup file name")
        controller = name.split(".", 1)[0]
        controller = "" if controller == "cgroup" else controller
        out.append(Write(controller, name, str(value), from_unified=True))
    return out


def _block_io_writes(blkio: Mapping[str, Any], v2: bool) -> list[Write]:
    out: list[Write] = []
    weight = _int(blkio, "weight", "blockIO")
    if weight:
        if v2:
            out.append(Write("io", "io.weight", f"default {blkio_weight_to_io_weight(weight)}"))
        else:
            out.append(Write("blkio", "blkio.weight", str(weight)))
    if _int(blkio, "leafWeight", "blockIO") and not v2:
        out.append(Write("blkio", "blkio.leaf_weight", str(blkio["leafWeight"])))
    for entry in blkio.get("weightDevice") or []:
        dev = _devnum(entry, "blockIO.weightDevice")
        if entry.get("weight"):
            if v2:
                value = blkio_weight_to_io_weight(int(entry["weight"]))
                out.append(Write("io", "io.weight", f"{dev} {value}"))
            else:
                out.append(Write("blkio", "blkio.weight_device", f"{dev} {entry['weight']}"))
        if entry.get("leafWeight") and not v2:
            out.append(Write("blkio", "blkio.leaf_weight_device", f"{dev} {entry['leafWeight']}"))
    throttles = (
        ("throttleReadBpsDevice", "read_bps_device", "rbps"),
        ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
        ("throttleReadIOPSDevice", "read_iops_device", "riops"),
        ("throttleWriteIOPSDevice", "write_iops_device", "wiops"),
    )
    for field, v1_file, v2_key in throttles:
        for entry in blkio.get(field) or []:
            dev = _devnum(entry, f"blockIO.{field}")
            rate = int(entry.get("rate", 0))
            if v2:
                out.append(Write("io", "io.max", f"{dev} {v2_key}={rate or 'max'}"))
            else:
                out.append(Write("blkio", f"blkio.throttle.{v1_file}", f"{dev} {rate}"))
    return out


# What runc allows on top of the config's rules (libcontainer/specconv AllowedDevices): mknod
# of anything, and the nodes every container gets.
DEFAULT_ALLOWED_DEVICES: Final = (
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # random
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # full
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # tty
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # zero
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # urandom
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},  # console
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # pts
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # ptmx
)


def device_rule_writes(devices: Iterable[Mapping[str, Any]]) -> list[Write]:
    """OCI ``linux.resources.devices`` -> v1 devices.allow/deny lines (v2 needs eBPF)."""
    out: list[Write] = []
    for rule in devices:
        kind = rule.get("type") or "a"
        major = rule.get("major")
        minor = rule.get("minor")
        access = rule.get("access") or "rwm"
        spec = (
            f"{kind} {'*' if major is None or major < 0 else major}:"
            f"{'*' if minor is None or minor < 0 else minor} {access}"
        )
        if kind == "a":
            spec = "a"  # v1 takes any "a" rule as a reset of the whole list
        out.append(Write("devices", "devices.allow" if rule.get("allow") else "devices.deny", spec))
    return out


# cgroup v2 has no devices controller: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
# cgroup answers each device access (include/uapi/linux/bpf.h, struct bpf_cgroup_dev_ctx:
# access_type = access << 16 | type, then major, minor; return 1 to allow).
_DEV_TYPE: Final = {"b": 1, "c": 2}
_DEV_ACCESS: Final = {"m": 1, "r": 2, "w": 4}


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return (
        bytes([code, (src << 4) | dst])
        + off.to_bytes(2, "little", signed=True)
        + imm.to_bytes(4, "little", signed=True)
    )


def _ldx_w(dst: int, off: int) -> bytes:
    return _insn(0x61, dst, 1, off)  # BPF_LDX | BPF_MEM | BPF_W, from the context in r1


def _jne(reg: int, imm: int, skip: int) -> bytes:
    return _insn(0x55, reg, 0, skip, imm)  # BPF_JMP | BPF_JNE | BPF_K


def _ret(value: int) -> bytes:
    return _insn(0xB7, 0, 0, 0, value) + _insn(0x95)  # r0 = value; exit


def device_exceptions(
    rules: Iterable[Mapping[str, Any]],
) -> tuple[bool, list[tuple[str, int | None, int | None, int]]]:
    """Replay OCI device rules as the v1 devices controller does (devices_cgroup.c).

    Returns the default (allow everything or nothing) and the exceptions to it as
    (type, major or None, minor or None, access mask). An "a" rule resets the list; a rule
    agreeing with the default removes its access from an identical exception.
    """
    default_allow = True  # a new cgroup starts from its parent's: the root allows all
    found: list[list[Any]] = []
    for rule in rules:
        kind = rule.get("type") or "a"
        if kind not in ("a", "b", "c"):
            raise CgroupError(f"linux.resources.devices: unknown device type {kind!r}")
        access = rule.get("access") or "rwm"
        if not access or set(access) - set(_DEV_ACCESS):
            raise CgroupError(f"linux.resources.devices: unknown access {access!r}")
        allow = bool(rule.get("allow"))
        if kind == "a":
            default_allow, found = allow, []
            continue
        mask = sum(_DEV_ACCESS[a] for a in set(access))
        major = rule.get("major")
        minor = rule.get("minor")
        key = [
            kind,
            None if major is None or major < 0 else int(major),
            None if minor is None or minor < 0 else int(minor),
        ]
        same = next((e for e in found if e[:3] == key), None)
        if allow == default_allow:
            if same is not None:
                same[3] &= ~mask
                found = [e for e in found if e[3]]
        elif same is not None:
            same[3] |= mask
        else:
            found.append([*key, mask])
    return default_allow, [(e[0], e[1], e[2], e[3]) for e in found]


def device_program(rules: Iterable[Mapping[str, Any]]) -> bytes:
    """OCI device rules -> eBPF for BPF_PROG_TYPE_CGROUP_DEVICE, with v1's semantics.

    Default deny: an access is allowed when one exception covers all of it. Default allow:
    it is denied when an exception covers any of it (the kernel's match_exception and
    match_exception_partial).
    """
    default_allow, exceptions = device_exceptions(rules)
    program = [
        _ldx_w(2, 0),
        _insn(0x54, 2, 0, 0, 0xFFFF),  # w2 &= 0xffff: the device type
        _ldx_w(3, 0),
        _insn(0x74, 3, 0, 0, 16),  # w3 >>= 16: the access asked for
        _ldx_w(4, 4),  # major
        _ldx_w(5, 8),  # minor
    ]
    for kind, major, minor, mask in exceptions:
        checks: list[tuple[int, int]] = [(2, _DEV_TYPE[kind])]
        if major is not None:
            checks.append((4, major))
        if minor is not None:
            checks.append((5, minor))
        # block: the checks, r1 = r3, w1 &= bits, the access test, then r0 = ...; exit
        size = len(checks) + 5
        block = [_jne(reg, value, size - i - 1) for i, (reg, value) in enumerate(checks)]
        block.append(_insn(0xBF, 1, 3))
        if default_allow:  # denied if any of the access asked for is in the exception
            block += [_insn(0x54, 1, 0, 0, mask), _insn(0x15, 1, 0, 2, 0)]  # JEQ w1, 0: next
        else:  # allowed if all of it is: (access & ~mask) == 0
            block += [_insn(0x54, 1, 0, 0, ~mask & 0x7), _jne(1, 0, 2)]
        program += [*block, _ret(0 if default_allow else 1)]
    program.append(_ret(1 if default_allow else 0))
    return b"".join(program)


_SYS_BPF: Final = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_BPF_PROG_LOAD: Final = 5
_BPF_PROG_ATTACH: Final = 8
_BPF_PROG_TYPE_CGROUP_DEVICE: Final = 15
_BPF_CGROUP_DEVICE: Final = 6
_BPF_F_ALLOW_MULTI: Final = 2


def attach_device_program(directory: str, program: bytes) -> None:
    """Load ``program`` and attach it to the cgroup2 directory (BPF_F_ALLOW_MULTI, as systemd)."""
    import ctypes

    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise CgroupError(f"no bpf syscall number known for {os.uname().machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    insns = ctypes.create_string_buffer(program, len(program))
    license_text = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(65536)
    fields = bytearray(128)
    for offset, value, size in (
        (0, _BPF_PROG_TYPE_CGROUP_DEVICE, 4),
        (4, len(program) // 8, 4),
        (8, ctypes.addressof(insns), 8),
        (16, ctypes.addressof(license_text), 8),
        (24, 1, 4),  # log_level
        (28, len(log), 4),
        (32, ctypes.addressof(log), 8),
    ):
        fields[offset : offset + size] = value.to_bytes(size, "little")
    attr = ctypes.create_string_buffer(bytes(fields), len(fields))
    prog_fd = int(libc.syscall(number, _BPF_PROG_LOAD, attr, len(attr)))
    if prog_fd < 0:
        err = ctypes.get_errno()
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise DeviceFilterError(
            err, f"cannot load the device filter: {os.strerror(err)} {detail[0]}".strip()
        )
    try:
        cgroup_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fields = bytearray(32)
            for offset, value in (
                (0, cgroup_fd),
                (4, prog_fd),
                (8, _BPF_CGROUP_DEVICE),
                (12, _BPF_F_ALLOW_MULTI),
            ):
                fields[offset : offset + 4] = value.to_bytes(4, "little")
            attach = ctypes.create_string_buffer(bytes(fields), len(fields))
            if libc.syscall(number, _BPF_PROG_ATTACH, attach, len(attach)) != 0:
                err = ctypes.get_errno()
                raise DeviceFilterError(
                    err, f"cannot attach the device filter to {directory}: {os.strerror(err)}"
                )
        finally:
            os.close(cgroup_fd)
    finally:
        os.close(prog_fd)


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


# ---------------------------------------------------------------------------------------
# The manager (I/O)


def _has_delegate_xattr(directory: str) -> bool:
    for attr in DELEGATE_XATTRS:
        try:
            if os.getxattr(directory, attr) in (b"1", b"1\n"):
                return True
        except OSError:
            continue
    return False


def delegated_root(h: Hierarchy) -> str | None:
    """The nearest ancestor-or-self of the caller's cgroup that systemd delegated, if any."""
    path = h.own
    while path and path != "/":
        if _has_delegate_xattr(h.dir_of(path)):
            return path
        path = os.path.dirname(path)
    return None


def _base(own: str) -> str:
    # A caller that already moved into its leaf places containers beside the leaf.
    return os.path.dirname(own) if os.path.basename(own) == LEAF_NAME else own


def _existing_ancestor(directory: str) -> str:
    while not os.path.isdir(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory


def manager_for(cgroups_path: str | None, container_id: str, *, rootless: bool) -> CgroupManager:
    """The container's cgroup manager; no directory is created until ``create()``."""
    if not container_id or "/" in container_id or container_id in (".", ".."):
        raise CgroupError(f"container id {container_id!r} cannot name a cgroup")
    path = cgroups_path or ""
    if ":" in path and "/" not in path:
        try:
            path = systemd_style_path(path)
        except ValueError as exc:
            raise CgroupError(
                f"linux.cgroupsPath {cgroups_path!r}: expected a path or slice:prefix:name"
            ) from exc
    if ".." in path.split("/"):
        raise CgroupError(f"linux.cgroupsPath {cgroups_path!r}: '..' is not allowed")
    layout = detect_layout()
    # systemd marks a delegated unit on the hierarchy it manages: unified on v2 and hybrid
    # hosts (systemd 252 sets nothing on name=systemd), name=systemd on legacy ones
    delegated = next(
        (
            root
            for key in (UNIFIED, SYSTEMD_NAMED)
            for h in layout.hierarchies
            if h.key == key and (root := delegated_root(h)) is not None
        ),
        None,
    )
    dirs: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for h in layout.hierarchies:
        if not path:
            cgroup = os.path.join(_base(h.own), container_id)
        elif not path.startswith("/"):
            cgroup = os.path.join(_base(h.own), path)
        elif delegated is not None:
            base = delegated if h.own == delegated or h.own.startswith(delegated + "/") else h.own
            cgroup = os.path.join(_base(base), path.lstrip("/"))
        else:
            cgroup = path
        directory = h.dir_of(os.path.normpath(cgroup))
        if h.readonly:
            skipped[h.key] = "read-only file system"
        elif not os.access(_existing_ancestor(directory), os.W_OK):
            skipped[h.key] = "permission denied" if rootless else "not writable"
        else:
            dirs[h.key] = directory
    if not dirs and not rootless:
        raise CgroupError(
            "no writable cgroup hierarchy: "
            + ", ".join(f"{key} ({why})" for key, why in sorted(skipped.items()))
        )
    manager = CgroupManager(dirs, rootless=rootless, skipped=skipped, layout=layout)
    manager.warn_skipped()
    return manager


class CgroupManager:
    """One container's cgroup directories, across hierarchies, and what can be done with them."""

    def __init__(
        self,
        dirs: Mapping[str, str],
        *,
        rootless: bool = False,
        skipped: Mapping[str, str] | None = None,
        layout: Layout | None = None,
    ) -> None:
        self._dirs = dict(dirs)
        self.rootless = rootless
        self._skipped = dict(skipped or {})
        self._layout = layout

    def __repr__(self) -> str:
        return f"<CgroupManager {self._dirs!r}>"

    # --- persistence -------------------------------------------------------------------
    def paths(self) -> dict[str, str]:
        """{hierarchy key: directory}: JSON-safe, for the runtime's state file."""
        return dict(self._dirs)

    @classmethod
    def from_paths(cls, paths: Mapping[str, str], *, rootless: bool = False) -> CgroupManager:
        return cls(paths, rootless=rootless)

    # --- helpers -----------------------------------------------------------------------
    def _controllers_of(self, key: str) -> frozenset[str]:
        if key == UNIFIED:
            return frozenset(_read_words(os.path.join(self._dirs[key], "cgroup.controllers")))
        return frozenset(k for k in key.split(",") if k in V1_CONTROLLERS)

    def _dir_for(self, controller: str) -> tuple[str, int] | None:
        """(directory, cgroup version) that carries ``controller`` for this container."""
        for key, directory in self._dirs.items():
            if key != UNIFIED and controller in key.split(","):
                return directory, 1
        if UNIFIED not in self._dirs:
            return None
        if not controller:
            return self._dirs[UNIFIED], 2
        if self._layout is not None:
            holder = self._layout.holder(controller)
            if holder is not None and holder.key == UNIFIED:
                return self._dirs[UNIFIED], 2
            return None
        if controller in self._controllers_of(UNIFIED):
            return self._dirs[UNIFIED], 2
        return None

    def warn_skipped(self) -> None:
        if not self._skipped:
            return
        names = ", ".join(sorted(self._skipped))
        reasons = ", ".join(sorted(set(self._skipped.values())))
        if self.rootless and not self._dirs:
            message = (
                f"no cgroup hierarchy is available to this user ({reasons}): the container "
                "runs without a cgroup of its own, and resource limits are ignored"
            )
        elif self.rootless:
            message = (
                f"cgroup hierarchies {names} are not available to this user ({reasons}): "
                "resource limits on them are ignored"
            )
        else:
            message = (
                f"cgroup hierarchies {names} cannot be written ({reasons}): the container is "
                "grouped in the writable hierarchies only"
            )
        _warn_once(message, key="skipped")

    # --- lifecycle ---------------------------------------------------------------------
    def create(self) -> None:
        """Make the directories (and v1 cpuset parents usable); idempotent."""
        for key, directory in self._dirs.items():
            made = _makedirs(directory)
            if key != UNIFIED and "cpuset" in key.split(","):
                for level in made:
                    _inherit_cpuset(level)
        if UNIFIED in self._dirs and self._layout is not None and self._layout.mode == "unified":
            for controller in DEFAULT_V2_CONTROLLERS:
                try:
                    self._enable_v2(controller)
                except CgroupError as exc:
                    _warn_once(f"cgroup controller {controller} left disabled: {exc}")

    def _enable_v2(self, controller: str) -> bool:
        """Make ``controller`` available in the container's v2 cgroup, enabling it top-down."""
        directory = self._dirs[UNIFIED]
        mount = _mount_of(directory, self._layout)
        return _ensure_v2_controller(directory, controller, mount)

    def apply(
        self, resources: Mapping[str, Any], devices: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        """Write ``linux.resources``; a limit that cannot be applied raises (warns rootless).

        ``devices`` are the config's ``linux.devices`` nodes: like runc, the device cgroup
        lets the container use the nodes it was given, plus the default ones.
        """
        plans: list[tuple[str, Write]] = []
        unavailable: set[str] = set()
        by_version = {1: resource_writes(resources, 1), 2: resource_writes(resources, 2)}
        # one controller under two names: blkio on v1 is io on v2
        logical = {
            V2_TO_V1.get(w.controller, w.controller) for ws in by_version.values() for w in ws
        }
        for controller in sorted(logical):
            where = self._dir_for(controller)
            v2_name = V1_TO_V2.get(controller, controller)
            if where is None and v2_name != controller:
                where = self._dir_for(v2_name)
            if where is not None and where[1] == 2 and v2_name and not self._enable_v2(v2_name):
                where = None
            if where is None:
                unavailable.add(controller)
                continue
            directory, version = where
            name = controller if version == 1 else v2_name
            if version == 1 and any(w.from_unified for w in by_version[2] if w.controller == name):
                raise CgroupLimitError(
                    f"linux.resources.unified: the {controller or 'cgroup'} settings need cgroup "
                    "v2, and this host has that controller on cgroup v1"
                )
            plans += [(directory, w) for w in by_version[version] if w.controller == name]
        if unavailable:
            names = ", ".join(sorted(c or "cgroup" for c in unavailable))
            if self.rootless:
                _warn_once(
                    f"cgroup controllers {names} are not available to this user: "
                    "their limits in linux.resources are ignored",
                    key="rootless-limits",
                )
            else:
                raise CgroupLimitError(
                    f"linux.resources needs cgroup controllers {names}, which are not "
                    f"available or not writable here ({self._why(unavailable)})"
                )
        self._write_all(plans)
        rules = list(resources.get("devices") or [])
        if rules:
            rules += DEFAULT_ALLOWED_DEVICES
            for node in devices:
                rules.append(
                    {
                        "allow": True,
                        "type": node.get("type", "c").replace("u", "c"),
                        "major": node.get("major"),
                        "minor": node.get("minor"),
                        "access": "rwm",
                    }
                )
            self._apply_devices(rules)

    def _why(self, controllers: set[str]) -> str:
        parts = []
        for key, reason in sorted(self._skipped.items()):
            if set(key.split(",")) & controllers:
                parts.append(f"{key}: {reason}")
        return "; ".join(parts) or "no hierarchy has them"

    def _apply_devices(self, devices: Iterable[Mapping[str, Any]]) -> None:
        rules = list(devices)
        where = self._dir_for("devices")
        if where is not None and where[1] == 1:
            self._write_all([(where[0], w) for w in device_rule_writes(rules)])
            return
        program = device_program(rules)  # validates the rules even where nothing enforces them
        if UNIFIED not in self._dirs:
            _warn_once("linux.resources.devices is not enforced: no writable devices cgroup")
            return
        try:
            attach_device_program(self._dirs[UNIFIED], program)
        except DeviceFilterError as exc:
            if exc.errno not in (errno.EPERM, errno.EACCES, errno.ENOSYS):
                raise  # a program the verifier refuses is our bug: never run unprotected
            # unprivileged, or bpf() filtered (as inside some containers)
            _warn_once(f"linux.resources.devices is not enforced: {exc}", key="devices")

    def _write_all(self, plans: list[tuple[str, Write]]) -> None:
        memsw = next((p for p in plans if p[1].file == MEMSW_FILE), None)
        limit = next((p for p in plans if p[1].file == "memory.limit_in_bytes"), None)
        if memsw is not None and not os.path.exists(os.path.join(memsw[0], MEMSW_FILE)):
            plans = [p for p in plans if p is not memsw]
            if memsw[1].value not in ("-1", limit[1].value if limit else ""):
                raise CgroupLimitError(
                    "linux.resources.memory.swap: this kernel does not account swap "
                    f"({MEMSW_FILE} is missing; boot with swapaccount=1)"
                )
            memsw = None
        for directory, w in plans:
            if memsw is not None and w is memsw[1] and limit is not None:
                continue  # written with the limit
            if memsw is not None and w.file == "memory.limit_in_bytes":
                # memsw must stay >= the limit at every step: on EINVAL write it first
                try:
                    _write(directory, w)
                    _write(*memsw)
                except CgroupError as exc:
                    if _errno(exc) != errno.EINVAL:
                        raise
                    _write(*memsw)
                    _write(directory, w)
                continue
            _write(directory, w)

    def add_pid(self, pid: int) -> None:
        """Move a process (all its threads) into every hierarchy of the container."""
        for key, directory in self._dirs.items():
            try:
                with open(os.path.join(directory, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except OSError as exc:
                raise CgroupError(
                    f"cannot move process {pid} into {directory} ({key}): {exc.strerror}"
                ) from exc

    def pids(self) -> list[int]:
        """Every process in the container's cgroups and their descendants."""
        found: set[int] = set()
        for directory in self._dirs.values():
            for sub in _walk(directory):
                for word in _read_words(os.path.join(sub, "cgroup.procs")):
                    found.add(int(word))
        return sorted(found)

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs.values())

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Signal every process; frozen first where possible so that none forks past us."""
        if sig == signal.SIGKILL and UNIFIED in self._dirs:
            kill_file = os.path.join(self._dirs[UNIFIED], "cgroup.kill")
            if os.path.exists(kill_file):
                _write(self._dirs[UNIFIED], Write("", "cgroup.kill", "1"))
        frozen = False
        try:
            frozen = self.freeze()
        except CgroupError:
            frozen = False
        try:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        finally:
            if frozen:
                self.thaw()

    def _freezer(self) -> tuple[str, str, str, str] | None:
        """(file, freeze value, thaw value, how to read back) of the usable freezer."""
        unified = self._dirs.get(UNIFIED)
        if unified and os.path.exists(os.path.join(unified, "cgroup.freeze")):
            return os.path.join(unified, "cgroup.freeze"), "1", "0", "v2"
        where = self._dir_for("freezer")
        if where is not None and where[1] == 1:
            return os.path.join(where[0], "freezer.state"), "FROZEN", "THAWED", "v1"
        return None

    def freeze(self, timeout: float = 5.0) -> bool:
        """Freeze every process; False when no freezer is usable, error when it never settles."""
        freezer = self._freezer()
        if freezer is None or not self.exists():
            return False
        path, value, _thaw, kind = freezer
        _write_file(path, value)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if kind == "v2":
                events = _read_keyed(os.path.join(os.path.dirname(path), "cgroup.events"))
                if events.get("frozen") == 1:
                    return True
            else:
                with open(path) as f:
                    if f.read().strip() == "FROZEN":
                        return True
                _write_file(path, value)
            time.sleep(0.005)
        self.thaw()
        raise CgroupError(f"cgroup {os.path.dirname(path)} did not freeze within {timeout}s")

    def thaw(self) -> None:
        freezer = self._freezer()
        if freezer is not None and self.exists():
            _write_file(freezer[0], freezer[2])

    def oom_kill_count(self) -> int:
        """How many processes the kernel OOM-killed in this cgroup (0 if not accounted)."""
        where = self._dir_for("memory")
        if where is None:
            return 0
        name = "memory.events" if where[1] == 2 else "memory.oom_control"
        return _read_keyed(os.path.join(where[0], name)).get("oom_kill", 0)

    def destroy(self, timeout: float = 10.0) -> None:
        """Kill what is left and remove the directories (deepest first); idempotent."""
        if not self.exists():
            return
        deadline = time.monotonic() + timeout
        self.kill_all(signal.SIGKILL)
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
            self.kill_all(signal.SIGKILL)
        for directory in self._dirs.values():
            for sub in reversed(list(_walk(directory))):
                _rmdir(sub, deadline)


def _write_file(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}") from exc


def _errno(exc: CgroupError) -> int | None:
    cause = exc.__cause__
    return cause.errno if isinstance(cause, OSError) else None


# Kernels whose block devices use BFQ expose the weight under BFQ's name only (runc does the
# same fallback).
_V1_FALLBACK_FILES: Final = {
    "blkio.weight": "blkio.bfq.weight",
    "blkio.weight_device": "blkio.bfq.weight_device",
}


def _write(directory: str, w: Write) -> None:
    path = os.path.join(directory, w.file)
    if not os.path.exists(path):
        fallback = _V1_FALLBACK_FILES.get(w.file)
        if fallback and os.path.exists(os.path.join(directory, fallback)):
            path = os.path.join(directory, fallback)
        elif w.file != "cgroup.kill":
            raise CgroupLimitError(
                f"cannot set {w.file} to {w.value!r}: this kernel has no such file in {directory}"
            )
    _write_file(path, w.value)


def _read_keyed(path: str) -> dict[str, int]:
    """``key value`` lines (memory.events, memory.oom_control, cgroup.events) -> dict."""
    out: dict[str, int] = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if value.strip().lstrip("-").isdigit():
                    out[key] = int(value)
    except OSError:
        pass
    return out


def _walk(directory: str) -> Iterator[str]:
    """The directory and its sub-cgroups, parents before children."""
    if not os.path.isdir(directory):
        return
    for dirpath, _dirnames, _files in os.walk(directory):
        yield dirpath


def _makedirs(directory: str) -> list[str]:
    """Create missing levels; return the ones made, top first."""
    missing: list[str] = []
    level = directory
    while not os.path.isdir(level):
        missing.append(level)
        level = os.path.dirname(level)
    made = []
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o755)
        except FileExistsError:
            continue
        except OSError as exc:
            raise CgroupError(f"cannot create cgroup {level}: {exc.strerror}") from exc
        made.append(level)
    return made


def _inherit_cpuset(directory: str) -> None:
    # A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks until set.
    parent = os.path.dirname(directory)
    for name in ("cpuset.cpus", "cpuset.mems"):
        own = os.path.join(directory, name)
        with open(own) as f:
            if f.read().strip():
                continue
        with open(os.path.join(parent, name)) as f:
            value = f.read().strip()
        _write_file(own, value)


def _mount_of(directory: str, layout: Layout | None) -> str:
    if layout is not None:
        for h in layout.hierarchies:
            if h.key == UNIFIED:
                return h.mountpoint
    level = directory
    while os.path.dirname(level) != level:
        parent = os.path.dirname(level)
        if not os.path.exists(os.path.join(parent, "cgroup.controllers")):
            return level
        level = parent
    return level


def _ensure_v2_controller(directory: str, controller: str, mount: str) -> bool:
    """Enable ``controller`` in the subtree_control of every ancestor that lacks it."""
    available = _read_words(os.path.join(directory, "cgroup.controllers"))
    if controller in available:
        return True
    parent = os.path.dirname(directory)
    if directory == mount or not directory.startswith(mount + "/"):
        return False
    if not _ensure_v2_controller(parent, controller, mount):
        return False
    return _enable_in(parent, controller, mount)


def _enable_in(directory: str, controller: str, mount: str) -> bool:
    control = os.path.join(directory, "cgroup.subtree_control")
    try:
        _write_file(control, f"+{controller}")
        return True
    except CgroupError as exc:
        if _errno(exc) != errno.EBUSY or directory == mount:
            return False
    # cgroup v2's no-internal-processes rule: a cgroup that hands controllers to children
    # may hold no processes itself. Only our own cgroup may be emptied into a leaf.
    own = _own_v2_dir(mount)
    if own != directory:
        raise CgroupError(
            f"cannot enable the {controller} controller in {directory}: it holds processes, "
            "and cgroup v2 allows controllers only for cgroups without processes of their own"
        )
    move_into_leaf(directory)
    _write_file(control, f"+{controller}")
    return True


def _own_v2_dir(mount: str) -> str | None:
    with open("/proc/self/cgroup") as f:
        own = parse_proc_cgroup(f.read()).get(UNIFIED)
    if own is None:
        return None
    return os.path.normpath(mount + "/" + own.lstrip("/"))


def move_into_leaf(directory: str, leaf: str = LEAF_NAME) -> str:
    """Move every process of ``directory`` into ``directory/leaf`` (made if missing)."""
    target = os.path.join(directory, leaf)
    _makedirs(target)
    for _ in range(100):  # processes may fork while we move them
        procs = _read_words(os.path.join(directory, "cgroup.procs"))
        if not procs:
            return target
        for pid in procs:
            try:
                _write_file(os.path.join(target, "cgroup.procs"), pid)
            except CgroupError as exc:
                if _errno(exc) != errno.ESRCH:
                    raise
    raise CgroupError(f"cannot empty {directory}: processes keep appearing in it")


def _rmdir(directory: str, deadline: float) -> None:
    while True:
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise CgroupError(f"cannot remove cgroup {directory}: {exc.strerror}") from exc
            time.sleep(0.01)


__all__ = [
    "CGROUP_ROOT",
    "LEAF_NAME",
    "UNIFIED",
    "CgroupError",
    "CgroupLimitError",
    "CgroupManager",
    "Hierarchy",
    "Layout",
    "Write",
    "blkio_weight_to_io_weight",
    "cpu_shares_to_weight",
    "detect_layout",
    "manager_for",
    "parse_mountinfo",
    "parse_proc_cgroup",
    "resource_writes",
    "swap_to_v2",
]
