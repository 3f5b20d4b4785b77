"""A typed async client of systemd's manager (org.freedesktop.systemd1.Manager) over D-Bus.

Knows systemd, not containers. Jobs are waited for the way systemd's own
bus-wait-for-jobs.c does it: the ``JobRemoved`` match and ``Subscribe()`` are in place
before any job-creating call, because the signal can arrive before the method reply; a
result other than ``done`` becomes ``JobFailed`` carrying the unit's own failure reason.
State changes are learnt from ``PropertiesChanged``/``UnitRemoved`` signals, never by
polling: ``wait_for`` re-reads a unit only when a signal says it changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal as signals
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pycontainers.units.bus import SYSTEMD, BusTarget, connect
from pycontainers.units.errors import JobFailed, NoSuchUnit, WaitTimeout
from pycontainers.units.model import UnitProperty
from pycontainers.units.wire import Connection, Signal, to_wire

SD_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE = "org.freedesktop.systemd1.Service"
PROPERTIES = "org.freedesktop.DBus.Properties"
UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/"

_MATCHES = (
    f"type='signal',sender='{SYSTEMD}',interface='{MANAGER}',member='JobRemoved'",
    f"type='signal',sender='{SYSTEMD}',interface='{MANAGER}',member='UnitRemoved'",
    f"type='signal',sender='{SYSTEMD}',interface='{PROPERTIES}',member='PropertiesChanged',"
    f"path_namespace='{SD_PATH}/unit'",
)

# systemd's job results (src/core/job.h) and service results (src/core/service.h), worded
# after bus-wait-for-jobs.c so an operator reads what systemctl would have said.
JOB_RESULTS = {
    "canceled": "the job was canceled",
    "timeout": "the job timed out",
    "failed": "the unit failed",
    "dependency": "a unit it requires failed",
    "skipped": "the job was skipped",
    "invalid": "the job is not applicable to the unit",
    "assert": "an assertion of the unit failed",
    "unsupported": "the unit type is not supported here",
    "collected": "the unit was garbage-collected before the job ended",
    "once": "the unit may be started only once",
}
SERVICE_RESULTS = {
    "timeout": "a timeout was exceeded",
    "core-dump": "a process dumped core",
    "watchdog": "the watchdog fired",
    "start-limit-hit": "start of the service was attempted too often",
    "resources": "a resource was unavailable (a limit, a missing directory or executable)",
    "protocol": "the service did not follow the notify protocol (no READY=1 or main pid)",
    "oom-kill": "the kernel's oom killer killed a process of the unit",
    "exec-condition": "an ExecCondition= command failed",
}
# systemd's EXIT_* codes for a process that failed in systemd's own setup before exec
# (systemd.exec(5), "Process Exit Codes").
EXEC_EXIT_CODES = {
    200: "chdir failed",
    203: "the executable could not be run",
    209: "stdio setup failed",
    216: "group lookup failed",
    217: "user lookup failed",
    219: "cgroup setup failed",
    226: "namespace setup failed",
}
# ExecMainCode holds the CLD_* code of waitid(2)
CLD_EXITED, CLD_KILLED, CLD_DUMPED = 1, 2, 3


@dataclass(frozen=True)
class ListedUnit:
    """One row of ListUnitsByPatterns."""

    name: str
    description: str
    load_state: str
    active_state: str
    sub_state: str
    path: str


@dataclass(frozen=True)
class UnitStatus:
    """A consistent-enough snapshot of one unit's Unit and Service properties."""

    name: str
    load_state: str
    active_state: str
    sub_state: str
    result: str
    transient: bool
    description: str
    documentation: tuple[str, ...]
    main_pid: int
    exec_main_code: int
    exec_main_status: int
    control_group: str
    n_restarts: int
    log_extra_fields: tuple[bytes, ...]
    active_enter_usec: int
    inactive_enter_usec: int
    state_change_usec: int
    fragment_path: str

    @property
    def running(self) -> bool:
        return self.active_state == "active" and self.sub_state == "running"

    @classmethod
    def from_properties(
        cls, name: str, unit: dict[str, Any], service: dict[str, Any]
    ) -> UnitStatus:
        return cls(
            name=name,
            load_state=str(unit.get("LoadState", "")),
            active_state=str(unit.get("ActiveState", "")),
            sub_state=str(unit.get("SubState", "")),
            result=str(service.get("Result", "")),
            transient=bool(unit.get("Transient", False)),
            description=str(unit.get("Description", "")),
            documentation=tuple(unit.get("Documentation", ())),
            main_pid=int(service.get("MainPID", 0)),
            exec_main_code=int(service.get("ExecMainCode", 0)),
            exec_main_status=int(service.get("ExecMainStatus", 0)),
            control_group=str(service.get("ControlGroup", "")),
            n_restarts=int(service.get("NRestarts", 0)),
            log_extra_fields=tuple(bytes(f) for f in service.get("LogExtraFields", ())),
            active_enter_usec=int(unit.get("ActiveEnterTimestamp", 0)),
            inactive_enter_usec=int(unit.get("InactiveEnterTimestamp", 0)),
            state_change_usec=int(unit.get("StateChangeTimestamp", 0)),
            fragment_path=str(unit.get("FragmentPath", "")),
        )


@dataclass(frozen=True)
class UnitEvent:
    """Something happened to a unit: its properties changed, it was removed, a job ended."""

    unit: str
    kind: Literal["changed", "removed", "job"]
    changed: dict[str, Any] = field(default_factory=dict)
    job_result: str = ""


def unit_name_from_path(path: str) -> str | None:
    """Undo sd_bus_path_encode for a unit object path (``_2d`` -> ``-``)."""
    if not path.startswith(UNIT_PATH_PREFIX):
        return None
    label = path[len(UNIT_PATH_PREFIX) :]
    out: list[str] = []
    i = 0
    while i < len(label):
        if label[i] == "_" and _is_hex(label[i + 1 : i + 3]):
            out.append(chr(int(label[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(label[i])
            i += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdef" for c in text)


def _signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(status: UnitStatus) -> str:
    """How the main process ended, in systemctl's words."""
    code, value = status.exec_main_code, status.exec_main_status
    if code == CLD_EXITED:
        extra = EXEC_EXIT_CODES.get(value)
        return f"the main process exited with status {value}" + (f" ({extra})" if extra else "")
    if code in (CLD_KILLED, CLD_DUMPED):
        return f"the main process was killed by {_signal_name(value)}"
    return ""


def describe_failure(job_result: str, status: UnitStatus | None) -> str:
    """The reason an operator needs: the unit's result and how its process ended."""
    if status is None:
        return JOB_RESULTS.get(job_result, job_result) + " (the unit is gone)"
    parts: list[str] = []
    if status.result and status.result != "success":
        parts.append(SERVICE_RESULTS.get(status.result, ""))
        exit_text = describe_exit(status)
        if exit_text:
            parts.append(exit_text)
    if not any(parts):
        parts = [JOB_RESULTS.get(job_result, job_result)]
    detail = f"result {status.result}" if status.result else f"job {job_result}"
    return "; ".join(p for p in parts if p) + f" ({detail})"


class SystemdManager:
    """One connection to one manager (system or user); create with ``await open(target)``."""

    def __init__(self, conn: Connection, target: BusTarget) -> None:
        self.conn = conn
        self.target = target
        self._jobs: dict[str, asyncio.Future[str]] = {}
        self._early_jobs: dict[str, str] = {}
        self._calls_in_flight = 0
        self._watchers: list[Callable[[UnitEvent], None]] = []
        conn.add_signal_handler(self._on_signal)

    @classmethod
    async def open(cls, target: BusTarget, timeout: float = 10.0) -> SystemdManager:
        conn = await connect(target, timeout)
        manager = cls(conn, target)
        try:
            for rule in _MATCHES:
                await conn.add_match(rule)
            # Without Subscribe() systemd emits JobRemoved and friends only if some other
            # client subscribed.
            await manager._call("Subscribe")
        except BaseException:
            conn.close()
            raise
        return manager

    @property
    def connected(self) -> bool:
        """False once the bus connection is gone (reopen; signals were missed meanwhile)."""
        return self.conn.connected

    def close(self) -> None:
        self.conn.close()

    async def __aenter__(self) -> SystemdManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def _call(
        self, member: str, signature: str = "", body: Sequence[object] = (), what: str = ""
    ) -> list[Any]:
        return await self.conn.call(
            SYSTEMD, SD_PATH, MANAGER, member, signature, body, what=what or member
        )

    # -- signals ----------------------------------------------------------------

    def _on_signal(self, sig: Signal) -> None:
        if sig.interface == MANAGER and sig.member == "JobRemoved":
            _id, job, unit, result = sig.body
            fut = self._jobs.get(job)
            if fut is not None:
                if not fut.done():
                    fut.set_result(result)
            elif self._calls_in_flight:
                self._early_jobs[job] = result
            self._emit(UnitEvent(unit, "job", job_result=result))
        elif sig.interface == MANAGER and sig.member == "UnitRemoved":
            self._emit(UnitEvent(sig.body[0], "removed"))
        elif sig.interface == PROPERTIES and sig.member == "PropertiesChanged":
            name = unit_name_from_path(sig.path)
            if name is not None:
                self._emit(UnitEvent(name, "changed", changed=dict(sig.body[1])))

    def _emit(self, event: UnitEvent) -> None:
        for watcher in list(self._watchers):
            watcher(event)

    @contextlib.asynccontextmanager
    async def watch(
        self, units: Callable[[str], bool] = lambda _name: True
    ) -> AsyncIterator[asyncio.Queue[UnitEvent]]:
        """Events for units whose name passes ``units``, queued from the moment of entry."""
        queue: asyncio.Queue[UnitEvent] = asyncio.Queue()

        def deliver(event: UnitEvent) -> None:
            if units(event.unit):
                queue.put_nowait(event)

        self._watchers.append(deliver)
        try:
            yield queue
        finally:
            self._watchers.remove(deliver)

    # -- jobs -------------------------------------------------------------------

    async def _job(
        self,
        unit: str,
        verb: str,
        member: str,
        signature: str,
        body: Sequence[object],
        timeout: float,
    ) -> str:
        loop = asyncio.get_running_loop()
        self._calls_in_flight += 1
        try:
            reply = await self._call(member, signature, body, what=f"{member} {unit}")
            job = str(reply[0])
            fut = self._jobs.setdefault(job, loop.create_future())
            if job in self._early_jobs:
                fut.set_result(self._early_jobs.pop(job))
        finally:
            self._calls_in_flight -= 1
            if not self._calls_in_flight:
                self._early_jobs.clear()
        try:
            result = await asyncio.wait_for(fut, timeout)
        except TimeoutError as exc:
            raise WaitTimeout(f"the {verb} job of {unit}", timeout) from exc
        finally:
            self._jobs.pop(job, None)
        if result != "done":
            status = await self.status_or_none(unit)
            raise JobFailed(unit, verb, result, describe_failure(result, status))
        return result

    async def start_transient_unit(
        self,
        name: str,
        properties: Sequence[UnitProperty],
        mode: str = "fail",
        timeout: float = 90.0,
    ) -> str:
        """Create and start a transient unit; returns the job result (``done``)."""
        props = [[p.name, to_wire(p.signature, p.value)] for p in properties]
        return await self._job(
            name,
            "start",
            "StartTransientUnit",
            "ssa(sv)a(sa(sv))",
            [name, mode, props, []],
            timeout,
        )

    async def stop_unit(self, name: str, mode: str = "replace", timeout: float = 90.0) -> str:
        return await self._job(name, "stop", "StopUnit", "ss", [name, mode], timeout)

    async def restart_unit(self, name: str, mode: str = "replace", timeout: float = 90.0) -> str:
        return await self._job(name, "restart", "RestartUnit", "ss", [name, mode], timeout)

    async def kill_unit(self, name: str, who: str = "all", signal: int = 15) -> None:
        await self._call("KillUnit", "ssi", [name, who, signal], what=f"KillUnit {name}")

    async def reset_failed_unit(self, name: str) -> None:
        await self._call("ResetFailedUnit", "s", [name], what=f"ResetFailedUnit {name}")

    # -- reading ----------------------------------------------------------------

    async def list_units_by_patterns(
        self, patterns: Sequence[str], states: Sequence[str] = ()
    ) -> list[ListedUnit]:
        rows = await self._call("ListUnitsByPatterns", "asas", [list(states), list(patterns)])
        return [ListedUnit(r[0], r[1], r[2], r[3], r[4], r[6]) for r in rows[0]]

    async def get_unit(self, name: str) -> str:
        """The unit's object path; NoSuchUnit if it is not loaded."""
        return str((await self._call("GetUnit", "s", [name], what=f"GetUnit {name}"))[0])

    async def load_unit(self, name: str) -> str:
        """The unit's object path, loading it (from a unit file, if any) when needed."""
        return str((await self._call("LoadUnit", "s", [name], what=f"LoadUnit {name}"))[0])

    async def properties(self, path: str, interface: str) -> dict[str, Any]:
        reply = await self.conn.call(
            SYSTEMD, path, PROPERTIES, "GetAll", "s", [interface], what=f"GetAll {path}"
        )
        return dict(reply[0])

    async def status_at(self, name: str, path: str) -> UnitStatus:
        unit, service = await asyncio.gather(
            self.properties(path, UNIT), self.properties(path, SERVICE)
        )
        return UnitStatus.from_properties(name, unit, service)

    async def status(self, name: str) -> UnitStatus:
        return await self.status_at(name, await self.get_unit(name))

    async def status_or_none(self, name: str) -> UnitStatus | None:
        try:
            return await self.status(name)
        except NoSuchUnit:
            return None

    async def wait_for(
        self,
        name: str,
        predicate: Callable[[UnitStatus | None], bool],
        timeout: float,
        what: str = "",
    ) -> UnitStatus | None:
        """Wait until ``predicate(status)`` holds (None: not loaded), re-reading on signals."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self.watch(lambda unit: unit == name) as events:
            status = await self.status_or_none(name)
            while not predicate(status):
                try:
                    await asyncio.wait_for(events.get(), max(0.0, deadline - loop.time()))
                except TimeoutError as exc:
                    raise WaitTimeout(what or f"a state change of {name}", timeout) from exc
                while not events.empty():
                    events.get_nowait()
                status = await self.status_or_none(name)
            return status
