"""Put a container's processes in cgroups and apply ``linux.resources``, on any host layout.

The layout (which hierarchies, where the caller sits) comes from ``cgroup_layout``; the
translation of limits into file writes from ``cgroup_limits``; device rules from
``cgroup_devices``. The last two are loaded only when a config needs them.

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
    cg.pids(); cg.kill_all(15); cg.oom_kill_count(); cg.destroy()
"""

from __future__ import annotations

import errno
import os
import time

from pycontainers.runtime.cgroup_layout import (
    SYSTEMD_NAMED,
    UNIFIED,
    V1_CONTROLLERS,
    CgroupError,
    CgroupLimitError,
    Hierarchy,
    Layout,
    detect_layout,
    parse_proc_cgroup,
    read_words,
    systemd_style_path,
    warn_once,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import Any, Final

    from pycontainers.runtime.cgroup_limits import Write

MEMSW_FILE: Final = "memory.memsw.limit_in_bytes"
LEAF_NAME: Final = "supervisor"
"""Leaf a delegated caller moves into before controllers are enabled in its own cgroup."""
# Controllers enabled for a new cgroup on a pure v2 host even without limits, so that
# memory.events (OOM kills) and pids.current are there, as runc and systemd do.
DEFAULT_V2_CONTROLLERS: Final = ("cpu", "io", "memory", "pids")
V1_TO_V2: Final = {"blkio": "io"}
V2_TO_V1: Final = {"io": "blkio"}
DELEGATE_XATTRS: Final = ("trusted.delegate", "user.delegate")
SIGKILL: Final = 9


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

    def as_proc_cgroup(self, own: Mapping[str, str]) -> dict[str, str]:
        """``own`` (/proc/self/cgroup as {controllers: path}) as it reads once a process
        is in this container's cgroups: where it will be before it could read it itself."""
        out = dict(own)
        hierarchies = self._layout.hierarchies if self._layout is not None else ()
        for h in hierarchies:
            directory = self._dirs.get(h.key)
            if directory is None:
                continue
            rel = directory[len(h.mountpoint) :] or "/"
            path = os.path.normpath(h.root.rstrip("/") + "/" + rel.lstrip("/"))
            for names in own:
                if (
                    (names == "")
                    if h.key == UNIFIED
                    else set(names.split(",")) == set(h.key.split(","))
                ):
                    out[names] = path
        return out

    # --- helpers -----------------------------------------------------------------------
    def _controllers_of(self, key: str) -> frozenset[str]:
        if key == UNIFIED:
            return frozenset(read_words(os.path.join(self._dirs[key], "cgroup.controllers")))
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
        warn_once(message, key="skipped")

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
                    warn_once(f"cgroup controller {controller} left disabled: {exc}")

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
        rules = list(resources.get("devices") or [])
        if any(key != "devices" and value for key, value in resources.items()):
            self._apply_limits(resources)
        if rules:
            from pycontainers.runtime.cgroup_devices import DEFAULT_ALLOWED_DEVICES

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

    def _apply_limits(self, resources: Mapping[str, Any]) -> None:
        from pycontainers.runtime.cgroup_limits import resource_writes

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
                warn_once(
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

    def _why(self, controllers: set[str]) -> str:
        parts = []
        for key, reason in sorted(self._skipped.items()):
            if set(key.split(",")) & controllers:
                parts.append(f"{key}: {reason}")
        return "; ".join(parts) or "no hierarchy has them"

    def _apply_devices(self, devices: Iterable[Mapping[str, Any]]) -> None:
        from pycontainers.runtime import cgroup_devices

        rules = list(devices)
        where = self._dir_for("devices")
        if where is not None and where[1] == 1:
            self._write_all([(where[0], w) for w in cgroup_devices.device_rule_writes(rules)])
            return
        program = cgroup_devices.device_program(
            rules
        )  # validates the rules even where nothing enforces them
        if UNIFIED not in self._dirs:
            warn_once("linux.resources.devices is not enforced: no writable devices cgroup")
            return
        try:
            cgroup_devices.attach_device_program(self._dirs[UNIFIED], program)
        except cgroup_devices.DeviceFilterError as exc:
            if exc.errno not in (errno.EPERM, errno.EACCES, errno.ENOSYS):
                raise  # a program the verifier refuses is our bug: never run unprotected
            # unprivileged, or bpf() filtered (as inside some containers)
            warn_once(f"linux.resources.devices is not enforced: {exc}", key="devices")

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
                for word in read_words(os.path.join(sub, "cgroup.procs")):
                    found.add(int(word))
        return sorted(found)

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs.values())

    def kill_all(self, sig: int = SIGKILL) -> None:
        """Signal every process; frozen first where possible so that none forks past us."""
        if sig == SIGKILL and UNIFIED in self._dirs:
            kill_file = os.path.join(self._dirs[UNIFIED], "cgroup.kill")
            if os.path.exists(kill_file):
                _write_file(kill_file, "1")
        frozen = False
        try:
            frozen = self.freeze()
        except CgroupError:
            frozen = False
        try:
            for pid in self.pids():
                try:  # noqa: SIM105 (contextlib costs import time)
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
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
        self.kill_all(SIGKILL)
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
            self.kill_all(SIGKILL)
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
    available = read_words(os.path.join(directory, "cgroup.controllers"))
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
        procs = read_words(os.path.join(directory, "cgroup.procs"))
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
    "LEAF_NAME",
    "UNIFIED",
    "CgroupError",
    "CgroupLimitError",
    "CgroupManager",
    "detect_layout",
    "manager_for",
    "parse_proc_cgroup",
]
