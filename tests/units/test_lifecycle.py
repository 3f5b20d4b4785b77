"""Container units in a real systemd 252: start, stop, restart, crash, failure, limits.

The unit's ExecStart is the stand-in runtime (tests/units/stand_in_runtime.py): it performs
the runtime's MAINPID/READY hand-off without namespaces, so these tests pin the unit
model and the D-Bus client; test_busybox.py runs the real runtime. PIDs and cgroups are
the guest's, so they are checked with commands run inside it.
"""

from __future__ import annotations

import re
import signal
from asyncio import run
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from harness.sandbox import Sandbox
from harness.util import eventually
from pycontainers.units.backend import SystemdBackend
from pycontainers.units.bus import BusTarget
from pycontainers.units.errors import JobFailed, UnitSpecError
from pycontainers.units.manager import UnitStatus, describe_exit, describe_failure
from pycontainers.units.model import Resources, RestartPolicy, UnitSpec, render_properties

Guest = Any  # tests/units/conftest.py: Guest (processes, journal of the sandbox)

pytestmark = [pytest.mark.systemd, pytest.mark.root, pytest.mark.usefixtures("clean_units")]

MakeSpec = Callable[..., UnitSpec]


async def _start(target: BusTarget, spec: UnitSpec) -> UnitStatus:
    async with await SystemdBackend.open(target) as backend:
        return (await backend.start(spec)).status


def test_start_hands_the_unit_to_the_container_init(
    systemd: Sandbox, guest: Guest, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    spec = make_spec(name, "/bin/sh", "-c", f"echo hello from {name}; exec sleep 600")
    status = run(_start(system_bus, spec))
    unit = spec.unit
    assert status.running
    assert status.control_group == f"/pycontainers.slice/{unit}"

    # Main PID is the container's init (sh, then sleep), re-parented to systemd: no
    # Python stays.
    eventually(lambda: guest.comm(status.main_pid) == "sleep", what="the init to exec sleep")
    ppid = re.search(
        r"PPid:\s+(\d+)", systemd.exec("cat", f"/proc/{status.main_pid}/status").stdout
    )
    assert ppid and ppid.group(1) == "1"
    assert guest.processes(status.control_group) == {status.main_pid: "sleep"}

    text = systemd.systemctl("status", unit).stdout
    assert "Active: active (running)" in text
    assert f"Main PID: {status.main_pid} (sleep)" in text
    assert f"CGroup: /pycontainers.slice/{unit}" in text
    assert "Transient: yes" in text

    # stdout goes to the journal under the container's name, stamped with our fields
    eventually(lambda: f"hello from {name}" in guest.journal("-u", unit), what="journal")
    assert f"hello from {name}" in guest.journal(f"PYCONTAINERS_NAME={name}")
    assert f"hello from {name}" in guest.journal(f"SYSLOG_IDENTIFIER={name}")


def test_stop_ends_the_container_and_frees_the_name(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    spec = make_spec(name)

    async def scenario() -> tuple[int, object, int]:
        async with await SystemdBackend.open(system_bus) as backend:
            first = await backend.start(spec)
            await backend.stop(name)
            gone = await backend.get(name)
            again = await backend.start(spec)  # the name is free: a new unit
            await backend.stop(name)
            await backend.stop(name)  # stopping a stopped container is a no-op
            assert backend.manager.connected
        assert not backend.manager.connected  # closed on exit
        return first.status.main_pid, gone, again.status.main_pid

    first_pid, gone, second_pid = run(scenario())
    assert gone is None
    assert second_pid != first_pid
    assert systemd.exec("test", "-e", f"/proc/{first_pid}", check=False).returncode != 0
    assert spec.unit not in systemd.systemctl("list-units", "--all", "pycontainers-*").stdout


def test_restart_starts_a_new_init(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    async def scenario() -> tuple[UnitStatus, UnitStatus]:
        async with await SystemdBackend.open(system_bus) as backend:
            before = await backend.start(make_spec(name))
            after = await backend.restart(name)
            return before.status, after.status

    before, after = run(scenario())
    assert after.running
    assert after.main_pid != before.main_pid
    assert systemd.exec("cat", f"/proc/{after.main_pid}/comm").stdout.strip() == "sleep"


def test_a_crash_is_restarted_on_failure(
    systemd: Sandbox, guest: Guest, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    spec = make_spec(name, restart=RestartPolicy("on-failure", delay_sec=0.1))

    async def scenario() -> tuple[UnitStatus, UnitStatus | None]:
        async with await SystemdBackend.open(system_bus) as backend:
            before = await backend.start(spec)
            await backend.kill(name, signal.SIGKILL, who="main")
            after = await backend.wait_for(
                name,
                lambda s: s is not None and s.n_restarts >= 1 and s.running,
                timeout=20,
                what="the restart after the crash",
            )
            return before.status, after

    before, after = run(scenario())
    assert after is not None
    assert after.n_restarts == 1
    assert after.main_pid != before.main_pid
    show = systemd.systemctl("show", "-p", "NRestarts", spec.unit).stdout
    assert show.strip() == "NRestarts=1"
    assert "Main process exited, code=killed, status=9/KILL" in guest.journal("-u", spec.unit)


def test_the_exit_status_of_the_handed_off_init_is_recorded(
    system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    """systemd reaps the init (re-parented to it when the runtime exits) and keeps its status."""
    spec = make_spec(name, "/bin/sh", "-c", "sleep 1; exit 3")

    async def scenario() -> UnitStatus | None:
        async with await SystemdBackend.open(system_bus) as backend:
            await backend.start(spec)
            return await backend.wait_for(
                name, lambda s: s is not None and s.active_state == "failed", 20
            )

    status = run(scenario())
    assert status is not None
    assert (status.result, status.exec_main_status) == ("exit-code", 3)
    assert describe_exit(status) == "the main process exited with status 3"


def test_a_crash_loop_ends_at_the_start_limit_and_can_start_again(
    system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    spec = make_spec(
        name,
        "/bin/sh",
        "-c",
        "sleep 0.2; exit 1",
        restart=RestartPolicy("on-failure", delay_sec=0, start_limit_burst=2),
    )

    async def scenario() -> tuple[UnitStatus | None, str]:
        async with await SystemdBackend.open(system_bus) as backend:
            await backend.start(spec)
            # systemd 252 gives up after `burst` restarts ("Start request repeated too
            # quickly") and keeps the last run's Result (exit-code), not start-limit-hit.
            given_up = await backend.wait_for(
                name,
                lambda s: s is not None and s.n_restarts == 2 and s.active_state == "failed",
                30,
            )
            # ResetFailedUnit (done by start) also resets the start-limit counter
            again = await backend.start(replace(spec, restart=RestartPolicy("no")))
            return given_up, again.status.active_state

    given_up, again = run(scenario())
    assert given_up is not None
    assert (given_up.result, given_up.exec_main_status) == ("exit-code", 1)
    assert describe_failure("failed", given_up) == (
        "the main process exited with status 1 (result exit-code)"
    )
    assert again == "active"


def test_a_failed_start_reports_systemds_reason(
    systemd: Sandbox, guest: Guest, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    spec = make_spec(name, bundle="/nonexistent/bundle")

    async def scenario() -> tuple[JobFailed, JobFailed, list[str]]:
        async with await SystemdBackend.open(system_bus) as backend:
            with pytest.raises(JobFailed) as first:
                await backend.start(spec)
            listed = [
                f"{u.container}:{u.status.active_state}:{u.status.result}"
                for u in await backend.list()
            ]
            # the failed unit still holds the name: a second start resets it and tries again
            with pytest.raises(JobFailed) as second:
                await backend.start(spec)
            return first.value, second.value, listed

    first, second, listed = run(scenario())
    assert first.job_result == "failed"
    assert first.reason == "the main process exited with status 1 (result exit-code)"
    assert str(first) == (
        f"start of {spec.unit} failed: the main process exited with status 1 (result exit-code)"
    )
    assert f"journalctl -u {spec.unit}" in first.diagnostics()
    assert str(second) == str(first)
    assert f"{name}:failed:exit-code" in listed
    # the runtime's own message is in the unit's journal for the operator
    assert "cannot read bundle /nonexistent/bundle" in guest.journal("-u", spec.unit)


def test_limits_and_policy_are_visible_in_systemctl_show(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    spec = make_spec(
        name,
        resources=Resources(memory_max=512 * 2**20, cpu_weight=50, cpu_quota=0.5, tasks_max=64),
        restart=RestartPolicy(
            "always", delay_sec=2, start_limit_burst=3, start_limit_interval_sec=30
        ),
        stop_signal=signal.SIGQUIT,
        stop_timeout_sec=7,
    )
    run(_start(system_bus, spec))
    keys = [
        "MemoryMax", "CPUWeight", "CPUQuotaPerSecUSec", "TasksMax", "Restart", "RestartUSec",
        "StartLimitBurst", "StartLimitIntervalUSec", "KillSignal", "KillMode", "TimeoutStopUSec",
        "Type", "NotifyAccess", "Delegate", "Slice", "SyslogIdentifier", "LogExtraFields",
    ]  # fmt: skip
    out = systemd.systemctl("show", "-p", ",".join(keys), spec.unit).stdout
    shown = dict(line.split("=", 1) for line in out.splitlines())
    assert shown == {
        "MemoryMax": str(512 * 2**20),
        "CPUWeight": "50",
        "CPUQuotaPerSecUSec": "500ms",
        "TasksMax": "64",
        "Restart": "always",
        "RestartUSec": "2s",
        "StartLimitBurst": "3",
        "StartLimitIntervalUSec": "30s",
        "KillSignal": str(int(signal.SIGQUIT)),
        "KillMode": "mixed",
        "TimeoutStopUSec": "7s",
        "Type": "notify",
        "NotifyAccess": "all",
        "Delegate": "yes",
        "Slice": "pycontainers.slice",
        "SyslogIdentifier": name,
        "LogExtraFields": (
            f"PYCONTAINERS_NAME={name} PYCONTAINERS_SPEC_HASH={spec.spec_hash} "
            f"PYCONTAINERS_IMAGE_DIGEST={spec.image_digest}"
        ),
    }


def test_property_types_match_systemds_introspection(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    """systemd's own introspection data is the oracle for every signature we send."""
    spec = make_spec(name, resources=Resources(1 << 30, 10, 1.0, 10), depends_on=())
    run(_start(system_bus, spec))
    path = systemd.exec(
        "busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager", "GetUnit", "s", spec.unit,
    ).stdout.split()[1].strip('"')  # fmt: skip
    introspected: dict[str, str] = {}
    for iface in ("org.freedesktop.systemd1.Unit", "org.freedesktop.systemd1.Service"):
        out = systemd.exec("busctl", "introspect", "org.freedesktop.systemd1", path, iface).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[1] == "property":
                introspected[fields[0].lstrip(".")] = fields[2]
    # Exec* properties read back richer (a(sasbttttuii)) than they are written (a(sasb)).
    for prop in render_properties(spec):
        if not prop.name.startswith("Exec"):
            assert introspected.get(prop.name) == prop.signature, prop.name


def test_depends_on_orders_and_requires_the_dependency(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    db = make_spec(f"{name}-db")
    web = make_spec(name, depends_on=(db.container,))

    async def scenario() -> None:
        async with await SystemdBackend.open(system_bus) as backend:
            await backend.start(db)
            await backend.start(web)

    run(scenario())
    out = systemd.systemctl("show", "-p", "After,Requires", web.unit).stdout
    shown = dict(line.split("=", 1) for line in out.splitlines())
    assert db.unit in shown["After"].split()
    assert db.unit in shown["Requires"].split()

    async def stop_dependency_then_restart_all() -> tuple[str, str]:
        async with await SystemdBackend.open(system_bus) as backend:
            await backend.stop(db.container)
            # Requires= pulled the dependent down with its dependency
            web_state = await backend.wait_for(
                web.container, lambda s: s is None or s.active_state != "active", 20
            )
            await backend.stop(web.container)
            await backend.start(db)  # the name is free again once nothing references it
            await backend.start(web)
            again = await backend.get(web.container)
            assert again is not None
            return web_state.active_state if web_state else "gone", again.status.active_state

    stopped, restarted = run(stop_dependency_then_restart_all())
    assert stopped in ("inactive", "gone")
    assert restarted == "active"


def test_a_spec_error_sends_nothing(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    with pytest.raises(UnitSpecError):
        run(_start(system_bus, replace(make_spec(name), image_digest="latest")))
    assert name not in systemd.systemctl("list-units", "--all", "pycontainers-*").stdout
