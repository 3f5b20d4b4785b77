"""The systemd fixture boots a real manager we can drive over D-Bus, system and user."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from dbus_next import BusType, Variant
from dbus_next.aio import MessageBus

from harness.sandbox import Sandbox
from harness.util import eventually

pytestmark = [pytest.mark.systemd, pytest.mark.root]

SD = "org.freedesktop.systemd1"
SD_PATH = "/org/freedesktop/systemd1"
MGR = "org.freedesktop.systemd1.Manager"


async def _start_and_read(bus_address: str) -> tuple[str, str, str, int]:
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus_address
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        intro = await bus.introspect(SD, SD_PATH)
        mgr = bus.get_proxy_object(SD, SD_PATH, intro).get_interface(MGR)
        await mgr.call_subscribe()  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        done: dict[str, asyncio.Future[str]] = {}
        early: dict[str, str] = {}

        def on_job_removed(_id: int, job: str, _unit: str, result: str) -> None:
            if job in done:
                done[job].set_result(result)
            else:
                early[job] = result

        mgr.on_job_removed(on_job_removed)  # type: ignore[attr-defined]
        props = [
            ["Description", Variant("s", "pyc harness probe")],
            ["ExecStart", Variant("a(sasb)", [["/bin/sh", ["/bin/sh", "-c", "sleep 300"], False]])],
            ["Delegate", Variant("b", True)],
            ["CollectMode", Variant("s", "inactive-or-failed")],
        ]
        job = await mgr.call_start_transient_unit(  # type: ignore[attr-defined]
            "pyc-harness-probe.service", "fail", props, []
        )
        fut = done.setdefault(job, loop.create_future())
        if job in early:
            fut.set_result(early.pop(job))
        result = await asyncio.wait_for(fut, 20)
        path = await mgr.call_get_unit("pyc-harness-probe.service")  # type: ignore[attr-defined]
        obj = bus.get_proxy_object(SD, path, await bus.introspect(SD, path))
        unit = obj.get_interface("org.freedesktop.systemd1.Unit")
        svc = obj.get_interface("org.freedesktop.systemd1.Service")
        active = await unit.get_active_state()  # type: ignore[attr-defined]
        cgroup = await svc.get_control_group()  # type: ignore[attr-defined]
        pid = await svc.get_main_pid()  # type: ignore[attr-defined]
        await mgr.call_stop_unit("pyc-harness-probe.service", "replace")  # type: ignore[attr-defined]
        return result, active, cgroup, pid
    finally:
        bus.disconnect()


def test_transient_unit_over_dbus(systemd: Sandbox) -> None:
    result, active, cgroup, pid = asyncio.run(_start_and_read(systemd.bus_address))
    assert (result, active) == ("done", "active")
    assert cgroup == "/system.slice/pyc-harness-probe.service"
    assert pid > 1
    # the guest's view agrees; the unit is gone once stopped (CollectMode)
    eventually(
        lambda: "pyc-harness-probe" not in systemd.systemctl("list-units", "--all").stdout,
        what="probe unit collected",
    )


def test_user_manager_runs_transient_units(systemd: Sandbox) -> None:
    assert systemd.user_uid is not None
    out = systemd.exec(
        "systemd-run", "--user", "--wait", "--collect", "-q", "-p", "Delegate=yes",
        "--unit=pyc-user-probe", "/bin/sh", "-c", "exit 3",
        user=True, check=False,
    )  # fmt: skip
    assert out.returncode == 3, out.stderr
    show = systemd.exec("id", "-u", user=True).stdout.strip()
    assert show == str(systemd.user_uid)


def test_project_runs_inside_the_guest(systemd: Sandbox) -> None:
    """The checkout (and its .venv) is bound in, as the user too: code can run in there."""
    venv_python = str(Path(sys.executable))
    out = systemd.exec(venv_python, "-c", "import pycontainers, os; print(os.getpid())", user=True)
    assert int(out.stdout) > 1
    assert systemd.exec("cat", "/proc/1/comm").stdout.strip() == "systemd"
