"""config.json -> the runtime's validated internal config (runc's specconv step).

Everything below this module works on these plain classes and never on the raw
document, so every check of the OCI runtime-spec input happens once, here, and a bad
field is reported with its path (``process.user.uid``). Plain ``__slots__`` classes,
not dataclasses or pydantic: this runs on every container start.
"""

from __future__ import annotations

import os

from pycontainers.runtime import jsonfast as json
from pycontainers.runtime.errors import ConfigError

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
HOOK_KINDS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)


class Mount:
    __slots__ = ("destination", "options", "source", "type")

    def __init__(self, destination: str, type: str, source: str, options: list[str]) -> None:
        self.destination = destination
        self.type = type
        self.source = source
        self.options = options


class Namespace:
    __slots__ = ("path", "type")

    def __init__(self, type: str, path: str) -> None:
        self.type = type
        self.path = path


class Hook:
    __slots__ = ("args", "env", "path", "timeout")

    def __init__(self, path: str, args: list[str], env: list[str], timeout: int | None) -> None:
        self.path = path
        self.args = args
        self.env = env
        self.timeout = timeout


class User:
    __slots__ = ("additional_gids", "gid", "uid", "umask")

    def __init__(self, uid: int, gid: int, umask: int | None, additional_gids: list[int]) -> None:
        self.uid = uid
        self.gid = gid
        self.umask = umask
        self.additional_gids = additional_gids


class Rlimit:
    __slots__ = ("hard", "soft", "type")

    def __init__(self, type: str, soft: int, hard: int) -> None:
        self.type = type
        self.soft = soft
        self.hard = hard


class Device:
    __slots__ = ("file_mode", "gid", "major", "minor", "path", "type", "uid")

    def __init__(
        self,
        path: str,
        type: str,
        major: int,
        minor: int,
        file_mode: int | None,
        uid: int | None,
        gid: int | None,
    ) -> None:
        self.path = path
        self.type = type
        self.major = major
        self.minor = minor
        self.file_mode = file_mode
        self.uid = uid
        self.gid = gid


class IdMapping:
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, container_id: int, host_id: int, size: int) -> None:
        self.container_id = container_id
        self.host_id = host_id
        self.size = size


class Process:
    __slots__ = (
        "args",
        "capabilities",
        "console_size",
        "cwd",
        "env",
        "no_new_privileges",
        "oom_score_adj",
        "rlimits",
        "terminal",
        "user",
    )

    def __init__(
        self,
        *,
        terminal: bool,
        args: list[str],
        env: list[str],
        cwd: str,
        user: User,
        capabilities: dict[str, list[str]] | None,
        rlimits: list[Rlimit],
        no_new_privileges: bool,
        oom_score_adj: int | None,
        console_size: tuple[int, int] | None,
    ) -> None:
        self.terminal = terminal
        self.args = args
        self.env = env
        self.cwd = cwd
        self.user = user
        self.capabilities = capabilities
        self.rlimits = rlimits
        self.no_new_privileges = no_new_privileges
        self.oom_score_adj = oom_score_adj
        self.console_size = console_size


class Config:
    """The validated container config; ``raw`` keeps the document for the cgroup/seccomp parts."""

    __slots__ = (
        "annotations",
        "bundle",
        "cgroups_path",
        "devices",
        "domainname",
        "gid_mappings",
        "hooks",
        "hostname",
        "masked_paths",
        "mounts",
        "namespaces",
        "oci_version",
        "process",
        "raw",
        "readonly_paths",
        "resources",
        "root_path",
        "root_readonly",
        "rootfs_propagation",
        "seccomp",
        "sysctl",
        "uid_mappings",
    )

    def __init__(self, **fields: object) -> None:
        for name, value in fields.items():
            setattr(self, name, value)

    oci_version: str
    bundle: str
    root_path: str
    root_readonly: bool
    hostname: str | None
    domainname: str | None
    mounts: list[Mount]
    process: Process | None
    hooks: dict[str, list[Hook]]
    annotations: dict[str, str]
    namespaces: list[Namespace]
    uid_mappings: list[IdMapping]
    gid_mappings: list[IdMapping]
    devices: list[Device]
    sysctl: dict[str, str]
    masked_paths: list[str]
    readonly_paths: list[str]
    rootfs_propagation: str | None
    cgroups_path: str | None
    resources: dict[str, object]
    seccomp: dict[str, object] | None
    raw: dict[str, object]

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None


class _Reader:
    """Typed access to the JSON document that names the field in every error."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, field: str, cause: str) -> ConfigError:
        return ConfigError(self.file, field, cause)

    def obj(self, doc: object, field: str, *, required: bool = False) -> dict[str, object]:
        if doc is None and not required:
            return {}
        if not isinstance(doc, dict):
            raise self.fail(field, "must be an object" if doc is not None else "is required")
        return doc

    def array(self, doc: object, field: str) -> list[object]:
        if doc is None:
            return []
        if not isinstance(doc, list):
            raise self.fail(field, "must be an array")
        return doc

    def string(self, doc: object, field: str, *, default: str | None = None) -> str:
        if doc is None and default is not None:
            return default
        if not isinstance(doc, str):
            raise self.fail(field, "must be a string" if doc is not None else "is required")
        return doc

    def opt_str(self, doc: object, field: str) -> str | None:
        return None if doc is None else self.string(doc, field)

    def strs(self, doc: object, field: str) -> list[str]:
        return [self.string(v, f"{field}[{i}]") for i, v in enumerate(self.array(doc, field))]

    def integer(self, doc: object, field: str, *, lo: int = -(2**63), hi: int = 2**64) -> int:
        if isinstance(doc, bool) or not isinstance(doc, int):
            raise self.fail(field, "must be an integer" if doc is not None else "is required")
        if not lo <= doc < hi:
            raise self.fail(field, f"{doc} is out of range")
        return doc

    def opt_int(self, doc: object, field: str, **kw: int) -> int | None:
        return None if doc is None else self.integer(doc, field, **kw)

    def boolean(self, doc: object, field: str) -> bool:
        if doc is None:
            return False
        if not isinstance(doc, bool):
            raise self.fail(field, "must be true or false")
        return doc


def load(bundle: str) -> Config:
    """Read and validate ``<bundle>/config.json``; raises ConfigError naming file and field."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError as exc:
        raise ConfigError(path, "", "file not found (is --bundle right?)") from exc
    except OSError as exc:
        raise ConfigError(path, "", exc.strerror or str(exc)) from exc
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(path, "", f"not valid JSON: {exc}") from exc
    return parse(doc, bundle, path)


def parse(doc: object, bundle: str, file: str = "config.json") -> Config:
    """Validate a parsed config.json document (pure: no file system access)."""
    r = _Reader(file)
    top = r.obj(doc, "", required=True)
    oci_version = r.string(top.get("ociVersion"), "ociVersion")
    root = r.obj(top.get("root"), "root", required=True)
    root_path = r.string(root.get("path"), "root.path")
    if not os.path.isabs(root_path):
        root_path = os.path.join(bundle, root_path)
    linux = r.obj(top.get("linux"), "linux")
    process_doc = top.get("process")
    process = None if process_doc is None else _process(r, process_doc)
    return Config(
        oci_version=oci_version,
        bundle=bundle,
        root_path=os.path.normpath(root_path),
        root_readonly=r.boolean(root.get("readonly"), "root.readonly"),
        hostname=r.opt_str(top.get("hostname"), "hostname"),
        domainname=r.opt_str(top.get("domainname"), "domainname"),
        mounts=_mounts(r, top.get("mounts")),
        process=process,
        hooks=_hooks(r, top.get("hooks")),
        annotations=_str_map(r, top.get("annotations"), "annotations"),
        namespaces=_namespaces(r, linux.get("namespaces")),
        uid_mappings=_id_mappings(r, linux.get("uidMappings"), "linux.uidMappings"),
        gid_mappings=_id_mappings(r, linux.get("gidMappings"), "linux.gidMappings"),
        devices=_devices(r, linux.get("devices")),
        sysctl=_str_map(r, linux.get("sysctl"), "linux.sysctl"),
        masked_paths=_abs_paths(r, linux.get("maskedPaths"), "linux.maskedPaths"),
        readonly_paths=_abs_paths(r, linux.get("readonlyPaths"), "linux.readonlyPaths"),
        rootfs_propagation=_propagation(r, linux.get("rootfsPropagation")),
        cgroups_path=r.opt_str(linux.get("cgroupsPath"), "linux.cgroupsPath"),
        resources=r.obj(linux.get("resources"), "linux.resources"),
        seccomp=r.obj(linux.get("seccomp"), "linux.seccomp") if linux.get("seccomp") else None,
        raw=top,
    )


def _each(r: _Reader, doc: object, field: str) -> list[tuple[str, dict[str, object]]]:
    return [
        (f"{field}[{i}]", r.obj(item, f"{field}[{i}]", required=True))
        for i, item in enumerate(r.array(doc, field))
    ]


def _str_map(r: _Reader, doc: object, field: str) -> dict[str, str]:
    return {k: r.string(v, f"{field}.{k}") for k, v in r.obj(doc, field).items()}


def _abs_paths(r: _Reader, doc: object, field: str) -> list[str]:
    paths = r.strs(doc, field)
    for i, p in enumerate(paths):
        if not p.startswith("/"):
            raise r.fail(f"{field}[{i}]", f"{p!r} is not an absolute path")
    return paths


def _mounts(r: _Reader, doc: object) -> list[Mount]:
    out = []
    for field, m in _each(r, doc, "mounts"):
        dest = r.string(m.get("destination"), f"{field}.destination")
        if not dest.startswith("/"):
            raise r.fail(f"{field}.destination", f"{dest!r} is not an absolute path")
        out.append(
            Mount(
                dest,
                r.string(m.get("type"), f"{field}.type", default="none"),
                r.string(m.get("source"), f"{field}.source", default="none"),
                r.strs(m.get("options"), f"{field}.options"),
            )
        )
    return out


def _namespaces(r: _Reader, doc: object) -> list[Namespace]:
    seen: set[str] = set()
    out = []
    for field, ns in _each(r, doc, "linux.namespaces"):
        kind = r.string(ns.get("type"), f"{field}.type")
        if kind not in NAMESPACE_TYPES:
            raise r.fail(
                f"{field}.type",
                f"unknown namespace type {kind!r} (one of {', '.join(NAMESPACE_TYPES)})",
            )
        if kind in seen:
            raise r.fail(f"{field}.type", f"namespace {kind!r} is listed twice")
        seen.add(kind)
        out.append(Namespace(kind, r.string(ns.get("path"), f"{field}.path", default="")))
    return out


def _id_mappings(r: _Reader, doc: object, field: str) -> list[IdMapping]:
    return [
        IdMapping(
            r.integer(m.get("containerID"), f"{f}.containerID", lo=0, hi=2**32),
            r.integer(m.get("hostID"), f"{f}.hostID", lo=0, hi=2**32),
            r.integer(m.get("size"), f"{f}.size", lo=1, hi=2**32),
        )
        for f, m in _each(r, doc, field)
    ]


def _devices(r: _Reader, doc: object) -> list[Device]:
    out = []
    for field, d in _each(r, doc, "linux.devices"):
        kind = r.string(d.get("type"), f"{field}.type")
        if kind not in ("c", "b", "u", "p"):
            raise r.fail(f"{field}.type", f"unknown device type {kind!r} (c, b, u or p)")
        path = r.string(d.get("path"), f"{field}.path")
        if not path.startswith("/"):
            raise r.fail(f"{field}.path", f"{path!r} is not an absolute path")
        out.append(
            Device(
                path,
                kind,
                r.integer(d.get("major", 0), f"{field}.major", lo=0),
                r.integer(d.get("minor", 0), f"{field}.minor", lo=0),
                r.opt_int(d.get("fileMode"), f"{field}.fileMode", lo=0, hi=0o10000),
                r.opt_int(d.get("uid"), f"{field}.uid", lo=0, hi=2**32),
                r.opt_int(d.get("gid"), f"{field}.gid", lo=0, hi=2**32),
            )
        )
    return out


def _propagation(r: _Reader, doc: object) -> str | None:
    value = r.opt_str(doc, "linux.rootfsPropagation")
    allowed = (
        "private",
        "rprivate",
        "slave",
        "rslave",
        "shared",
        "rshared",
        "unbindable",
        "runbindable",
    )
    if value is not None and value not in allowed:
        raise r.fail("linux.rootfsPropagation", f"unknown propagation {value!r}")
    return value


def _hooks(r: _Reader, doc: object) -> dict[str, list[Hook]]:
    hooks = r.obj(doc, "hooks")
    out: dict[str, list[Hook]] = {}
    for kind, items in hooks.items():
        if kind not in HOOK_KINDS:
            raise r.fail(f"hooks.{kind}", f"unknown hook kind (one of {', '.join(HOOK_KINDS)})")
        out[kind] = [
            Hook(
                r.string(h.get("path"), f"{f}.path"),
                r.strs(h.get("args"), f"{f}.args"),
                r.strs(h.get("env"), f"{f}.env"),
                r.opt_int(h.get("timeout"), f"{f}.timeout", lo=1),
            )
            for f, h in _each(r, items, f"hooks.{kind}")
        ]
    return out


def _process(r: _Reader, doc: object) -> Process:
    p = r.obj(doc, "process", required=True)
    user_doc = r.obj(p.get("user"), "process.user")
    user = User(
        r.integer(user_doc.get("uid", 0), "process.user.uid", lo=0, hi=2**32),
        r.integer(user_doc.get("gid", 0), "process.user.gid", lo=0, hi=2**32),
        r.opt_int(user_doc.get("umask"), "process.user.umask", lo=0, hi=0o1000),
        [
            r.integer(g, f"process.user.additionalGids[{i}]", lo=0, hi=2**32)
            for i, g in enumerate(
                r.array(user_doc.get("additionalGids"), "process.user.additionalGids")
            )
        ],
    )
    args = r.strs(p.get("args"), "process.args")
    if not args:
        raise r.fail("process.args", "must name the program to run")
    cwd = r.string(p.get("cwd"), "process.cwd", default="/")
    if not cwd.startswith("/"):
        raise r.fail("process.cwd", f"{cwd!r} is not an absolute path")
    caps_doc = p.get("capabilities")
    caps = None
    if caps_doc is not None:
        caps = {
            k: r.strs(v, f"process.capabilities.{k}")
            for k, v in r.obj(caps_doc, "process.capabilities").items()
        }
    rlimits = []
    for f, rl in _each(r, p.get("rlimits"), "process.rlimits"):
        rlimits.append(
            Rlimit(
                r.string(rl.get("type"), f"{f}.type"),
                r.integer(rl.get("soft"), f"{f}.soft", lo=0),
                r.integer(rl.get("hard"), f"{f}.hard", lo=0),
            )
        )
    size = p.get("consoleSize")
    console_size = None
    if size is not None:
        s = r.obj(size, "process.consoleSize")
        console_size = (
            r.integer(s.get("height"), "process.consoleSize.height", lo=0, hi=65536),
            r.integer(s.get("width"), "process.consoleSize.width", lo=0, hi=65536),
        )
    return Process(
        terminal=r.boolean(p.get("terminal"), "process.terminal"),
        args=args,
        env=r.strs(p.get("env"), "process.env"),
        cwd=cwd,
        user=user,
        capabilities=caps,
        rlimits=rlimits,
        no_new_privileges=r.boolean(p.get("noNewPrivileges"), "process.noNewPrivileges"),
        oom_score_adj=r.opt_int(p.get("oomScoreAdj"), "process.oomScoreAdj", lo=-1000, hi=1001),
        console_size=console_size,
    )


def parse_process(doc: object, file: str) -> Process:
    """Validate a process.json (``exec --process``)."""
    return _process(_Reader(file), doc)
