"""The unit model for one container: a typed ``UnitSpec`` in, systemd properties out (pure).

One container is one transient service ``pycontainers-<name>.service`` in
``pycontainers.slice``. Its ``ExecStart=`` runs ``pycontainers-runtime`` on the bundle; the
runtime starts the container's init, tells systemd ``MAINPID=<init>`` and ``READY=1`` and
exits, so systemd supervises the container's init itself (``Type=notify``,
``NotifyAccess=all``: the notification comes from a process that is not the main one).
``Delegate=yes`` hands the unit's cgroup subtree to the runtime.

What the reconciler must recognise after a restart (container name, spec hash, image digest)
rides in ``LogExtraFields=`` — systemd refuses ``X-`` properties on transient units, while
``LogExtraFields`` is shown by ``systemctl show``, read back over D-Bus and stamped on every
journal line of the unit (``journalctl PYCONTAINERS_NAME=web``). Being transient and
carrying these fields is what makes a unit ours.

``render_properties`` is pure (no clock, no I/O): test it with the case files in
tests/units/cases/.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import quote

from pycontainers.units.errors import UnitSpecError

UNIT_PREFIX = "pycontainers-"
UNIT_SUFFIX = ".service"
UNIT_PATTERN = f"{UNIT_PREFIX}*{UNIT_SUFFIX}"
SLICE = "pycontainers.slice"
RUNTIME_NAME = "pycontainers-runtime"

FIELD_NAME = "PYCONTAINERS_NAME"
FIELD_SPEC_HASH = "PYCONTAINERS_SPEC_HASH"
FIELD_IMAGE_DIGEST = "PYCONTAINERS_IMAGE_DIGEST"

# The reconciler's container names are DNS labels; every such label is also a valid
# unit-name component, so names are validated, never escaped.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DIGEST = re.compile(r"^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,256}$")

Restart = Literal["no", "on-success", "on-failure", "on-abnormal", "on-abort", "always"]

USEC = 1_000_000


class UnitProperty(NamedTuple):
    """One transient-unit property: its name, its D-Bus signature and a plain value."""

    name: str
    signature: str
    value: object


def check_container_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UnitSpecError(
            str(name),
            "name",
            "must be 1-63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
    return name


def unit_name(container: str) -> str:
    """``web`` -> ``pycontainers-web.service`` (raises UnitSpecError for a bad name)."""
    return f"{UNIT_PREFIX}{check_container_name(container)}{UNIT_SUFFIX}"


def container_of(unit: str) -> str | None:
    """``pycontainers-web.service`` -> ``web``; None for any other unit name."""
    if not (unit.startswith(UNIT_PREFIX) and unit.endswith(UNIT_SUFFIX)):
        return None
    name = unit[len(UNIT_PREFIX) : -len(UNIT_SUFFIX)]
    return name if _NAME.match(name) else None


def default_runtime_path() -> str:
    """``pycontainers-runtime`` beside the running interpreter (the venv's or /usr/bin).

    Not resolved through symlinks: a venv's ``bin/python`` links to the system
    interpreter, but the console script lives in the venv's ``bin/``.
    """
    return str(Path(sys.executable).parent / RUNTIME_NAME)


@dataclass(frozen=True)
class RuntimeCommand:
    """How systemd runs the OCI runtime: an absolute path and its global options."""

    path: str = field(default_factory=default_runtime_path)
    root: str | None = None
    """``--root``: the runtime's state directory (its default when None)."""

    def argv(self, *verb: str) -> list[str]:
        root = ["--root", self.root] if self.root else []
        return [self.path, *root, *verb]


@dataclass(frozen=True)
class RestartPolicy:
    restart: Restart = "on-failure"
    delay_sec: float = 1.0
    """``RestartSec=``: pause before each restart."""
    start_limit_burst: int = 5
    start_limit_interval_sec: float = 60.0
    """More than ``burst`` starts within the interval and systemd gives up (start-limit-hit)."""


@dataclass(frozen=True)
class Resources:
    memory_max: int | None = None
    """Bytes (``MemoryMax=``)."""
    cpu_weight: int | None = None
    """1..10000 (``CPUWeight=``; 100 is the default share)."""
    cpu_quota: float | None = None
    """CPUs (``CPUQuota=``): 0.5 is half a CPU, 2 is two CPUs."""
    tasks_max: int | None = None
    """Processes and threads (``TasksMax=``)."""


@dataclass(frozen=True)
class UnitMetadata:
    """What a restarted reconciler needs to recognise (adopt) a running container."""

    container: str
    spec_hash: str
    image_digest: str

    def log_fields(self) -> list[bytes]:
        return [
            f"{FIELD_NAME}={self.container}".encode(),
            f"{FIELD_SPEC_HASH}={self.spec_hash}".encode(),
            f"{FIELD_IMAGE_DIGEST}={self.image_digest}".encode(),
        ]

    @classmethod
    def from_log_fields(cls, fields: Iterable[bytes | str]) -> UnitMetadata | None:
        """Parse ``LogExtraFields`` as read back from systemd; None if they are not ours."""
        values: dict[str, str] = {}
        for item in fields:
            text = item.decode(errors="replace") if isinstance(item, bytes | bytearray) else item
            key, sep, value = text.partition("=")
            if sep:
                values[key] = value
        try:
            return cls(values[FIELD_NAME], values[FIELD_SPEC_HASH], values[FIELD_IMAGE_DIGEST])
        except KeyError:
            return None


@dataclass(frozen=True)
class UnitSpec:
    """Everything systemd needs to run one container (built by the reconciler)."""

    container: str
    bundle: str
    """Absolute path of the OCI bundle (config.json + rootfs)."""
    spec_hash: str
    image_digest: str
    runtime: RuntimeCommand = field(default_factory=RuntimeCommand)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_signal: int = 15
    stop_timeout_sec: float = 10.0
    start_timeout_sec: float = 60.0
    resources: Resources = field(default_factory=Resources)
    depends_on: tuple[str, ...] = ()
    slice: str = SLICE

    @property
    def unit(self) -> str:
        return unit_name(self.container)

    @property
    def metadata(self) -> UnitMetadata:
        return UnitMetadata(self.container, self.spec_hash, self.image_digest)


def _usec(spec: UnitSpec, name: str, seconds: float, minimum: float = 0.0) -> int:
    if not seconds >= minimum or seconds > 10**9:
        raise UnitSpecError(spec.container, name, f"{seconds!r} seconds is out of range")
    return round(seconds * USEC)


def _positive(spec: UnitSpec, name: str, value: int, upper: int = 2**63) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise UnitSpecError(spec.container, name, f"{value!r} must be an integer in 1..{upper}")
    return value


def _absolute(spec: UnitSpec, name: str, path: str) -> str:
    if not path.startswith("/") or any(c in path for c in "\x00\n"):
        raise UnitSpecError(spec.container, name, f"{path!r} must be an absolute path")
    return path


def _check(spec: UnitSpec) -> None:
    check_container_name(spec.container)
    _absolute(spec, "bundle", spec.bundle)
    _absolute(spec, "runtime.path", spec.runtime.path)
    if spec.runtime.root is not None:
        _absolute(spec, "runtime.root", spec.runtime.root)
    if not _TOKEN.match(spec.spec_hash):
        raise UnitSpecError(spec.container, "spec_hash", f"{spec.spec_hash!r} is not a hash")
    if not _DIGEST.match(spec.image_digest):
        raise UnitSpecError(
            spec.container, "image_digest", f"{spec.image_digest!r} is not a digest"
        )
    if not 1 <= spec.stop_signal <= 64 or isinstance(spec.stop_signal, bool):
        raise UnitSpecError(spec.container, "stop_signal", f"{spec.stop_signal!r} is no signal")
    for dep in spec.depends_on:
        if dep == spec.container:
            raise UnitSpecError(spec.container, "depends_on", "a container cannot depend on itself")
        try:
            check_container_name(dep)
        except UnitSpecError as exc:
            raise UnitSpecError(
                spec.container, "depends_on", f"{dep!r} is not a container name"
            ) from exc
    if not spec.slice.endswith(".slice") or not _TOKEN.match(spec.slice):
        raise UnitSpecError(spec.container, "slice", f"{spec.slice!r} is not a slice name")


def _exec(argv: list[str], ignore_failure: bool = False) -> list[tuple[str, list[str], bool]]:
    # ExecStart is a(sasb): (binary path, argv including argv[0], ignore failure)
    return [(argv[0], argv, ignore_failure)]


def render_properties(spec: UnitSpec) -> tuple[UnitProperty, ...]:
    """The StartTransientUnit property list for ``spec``; raises UnitSpecError, sends nothing."""
    _check(spec)
    name = spec.container
    restart = spec.restart
    props: list[UnitProperty] = [
        UnitProperty("Description", "s", f"pycontainers container {name}"),
        UnitProperty("Documentation", "as", [f"file://{quote(spec.bundle)}/config.json"]),
        UnitProperty("Slice", "s", spec.slice),
        UnitProperty("Type", "s", "notify"),
        UnitProperty("NotifyAccess", "s", "all"),
        UnitProperty("Delegate", "b", True),
        UnitProperty(
            "ExecStart",
            "a(sasb)",
            _exec(spec.runtime.argv("run", "--detach", "--bundle", spec.bundle, name)),
        ),
        # The runtime's state outlives a crashed init: clear it after every stop, so a
        # restart (Restart=, or the next start) can create the container again.
        UnitProperty(
            "ExecStopPost",
            "a(sasb)",
            _exec(spec.runtime.argv("delete", "--force", name), ignore_failure=True),
        ),
        UnitProperty("SyslogIdentifier", "s", name),
        UnitProperty("LogExtraFields", "aay", spec.metadata.log_fields()),
        # mixed: the stop signal goes to the container's init only (it forwards or
        # exits), the final SIGKILL to whatever is left in the cgroup (podman's choice).
        UnitProperty("KillMode", "s", "mixed"),
        UnitProperty("KillSignal", "i", spec.stop_signal),
        UnitProperty(
            "TimeoutStopUSec", "t", _usec(spec, "stop_timeout_sec", spec.stop_timeout_sec)
        ),
        UnitProperty(
            "TimeoutStartUSec", "t", _usec(spec, "start_timeout_sec", spec.start_timeout_sec, 0.001)
        ),
        UnitProperty("Restart", "s", restart.restart),
        UnitProperty("RestartUSec", "t", _usec(spec, "restart.delay_sec", restart.delay_sec)),
        UnitProperty(
            "StartLimitBurst",
            "u",
            _positive(spec, "restart.start_limit_burst", restart.start_limit_burst, 2**32 - 1),
        ),
        UnitProperty(
            "StartLimitIntervalUSec",
            "t",
            _usec(spec, "restart.start_limit_interval_sec", restart.start_limit_interval_sec),
        ),
    ]
    res = spec.resources
    if res.memory_max is not None:
        props.append(
            UnitProperty("MemoryMax", "t", _positive(spec, "resources.memory_max", res.memory_max))
        )
    if res.cpu_weight is not None:
        props.append(
            UnitProperty(
                "CPUWeight", "t", _positive(spec, "resources.cpu_weight", res.cpu_weight, 10000)
            )
        )
    if res.cpu_quota is not None:
        if not 0 < res.cpu_quota <= 4096:
            raise UnitSpecError(
                name, "resources.cpu_quota", f"{res.cpu_quota!r} CPUs is out of range"
            )
        # CPUQuota=50% is CPUQuotaPerSecUSec=500000: CPU time per wall-clock second
        props.append(UnitProperty("CPUQuotaPerSecUSec", "t", round(res.cpu_quota * USEC)))
    if res.tasks_max is not None:
        props.append(
            UnitProperty("TasksMax", "t", _positive(spec, "resources.tasks_max", res.tasks_max))
        )
    if spec.depends_on:
        deps = [unit_name(d) for d in spec.depends_on]
        props.append(UnitProperty("After", "as", deps))
        props.append(UnitProperty("Requires", "as", deps))
    return tuple(props)
