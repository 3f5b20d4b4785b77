"""End to end: a busybox bundle run by the real ``pycontainers-runtime`` as a systemd unit.

The bundle's config.json comes from ``runc spec`` (the peer's defaults), its rootfs is
Debian's static busybox with its applet symlinks, in a directory bound into the sandbox.
"""

from __future__ import annotations

import json
import os
import re
import signal
from asyncio import run
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.sandbox import Sandbox
from harness.util import eventually
from pycontainers.units.backend import SystemdBackend
from pycontainers.units.bus import BusTarget
from pycontainers.units.errors import JobFailed
from pycontainers.units.manager import UnitStatus
from pycontainers.units.model import RestartPolicy, RuntimeCommand, UnitSpec, default_runtime_path

Guest = Any  # tests/units/conftest.py: Guest (processes, journal of the sandbox)

pytestmark = [
    pytest.mark.systemd,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.usefixtures("clean_units"),
]

RUNTIME = default_runtime_path()
# sh as PID 1 ignores SIGTERM unless it traps it (the kernel drops default-action signals
# for a namespace's init), so the init traps it like a well-behaved container would.
INIT = "trap 'echo bye; exit 0' TERM; echo hello from busybox; while :; do sleep 1 & wait; done"


def busybox_spec(name: str, bundle: str, restart: RestartPolicy | None = None) -> UnitSpec:
    return UnitSpec(
        container=name,
        bundle=bundle,
        spec_hash=f"h-{name}",
        image_digest="sha256:" + "ef" * 32,
        runtime=RuntimeCommand(RUNTIME),
        restart=restart or RestartPolicy("no"),
        stop_timeout_sec=10,
    )


def runtime_ids(systemd: Sandbox) -> list[str]:
    out = systemd.exec(RUNTIME, "list", "--format", "json").stdout
    return [c["id"] for c in json.loads(out or "[]") or []]


def test_a_busybox_container_runs_as_the_units_main_process(
    systemd: Sandbox,
    guest: Guest,
    system_bus: BusTarget,
    busybox_bundle: Callable[[str], str],
    name: str,
) -> None:
    spec = busybox_spec(name, busybox_bundle(INIT))

    async def start() -> UnitStatus:
        async with await SystemdBackend.open(system_bus) as backend:
            return (await backend.start(spec)).status

    status = run(start())
    pid = status.main_pid
    assert status.running
    # the main PID is the container's init: PID 1 of its own PID namespace, running sh
    nspid = re.search(r"NSpid:\s+(.*)", systemd.exec("cat", f"/proc/{pid}/status").stdout)
    assert nspid and nspid.group(1).split() == [str(pid), "1"]
    assert systemd.exec("cat", f"/proc/{pid}/comm").stdout.strip() == "sh"
    procs = guest.processes(status.control_group)
    assert pid in procs
    assert not [c for c in procs.values() if c.startswith("python") or c.startswith("pycontainers")]

    text = systemd.systemctl("status", spec.unit).stdout
    assert "Active: active (running)" in text
    assert f"Main PID: {pid} (sh)" in text
    assert f"CGroup: /pycontainers.slice/{spec.unit}" in text
    eventually(lambda: "hello from busybox" in guest.journal("-u", spec.unit), what="output")
    assert name in runtime_ids(systemd)

    async def stop() -> None:
        async with await SystemdBackend.open(system_bus) as backend:
            await backend.stop(name)

    run(stop())
    assert "bye" in guest.journal("-u", spec.unit)  # stopped by its stop signal, not killed
    assert name not in runtime_ids(systemd)  # ExecStopPost deleted the runtime state


def test_a_crashed_busybox_container_is_restarted(
    systemd: Sandbox,
    guest: Guest,
    system_bus: BusTarget,
    busybox_bundle: Callable[[str], str],
    name: str,
) -> None:
    spec = busybox_spec(
        name, busybox_bundle(INIT), restart=RestartPolicy("on-failure", delay_sec=0.1)
    )

    async def scenario() -> tuple[UnitStatus, UnitStatus | None]:
        async with await SystemdBackend.open(system_bus) as backend:
            before = (await backend.start(spec)).status
            await backend.kill(name, signal.SIGKILL)
            after = await backend.wait_for(
                name, lambda s: s is not None and s.n_restarts == 1 and s.running, 30
            )
            return before, after

    before, after = run(scenario())
    assert after is not None and after.main_pid != before.main_pid
    assert systemd.exec("cat", f"/proc/{after.main_pid}/comm").stdout.strip() == "sh"
    assert "status=9/KILL" in guest.journal("-u", spec.unit)


def test_a_bad_bundle_fails_the_start_with_the_runtimes_reason(
    systemd: Sandbox, guest: Guest, system_bus: BusTarget, sandbox_workdir: Path, name: str
) -> None:
    if not os.access(RUNTIME, os.X_OK):
        pytest.skip(f"{RUNTIME} is not installed")
    missing = str(sandbox_workdir / "no-such-bundle")
    spec = busybox_spec(name, missing)

    async def scenario() -> JobFailed:
        async with await SystemdBackend.open(system_bus) as backend:
            with pytest.raises(JobFailed) as info:
                await backend.start(spec)
            return info.value

    error = run(scenario())
    assert error.reason.startswith("the main process exited with status ")
    assert error.reason.endswith("(result exit-code)")
    assert missing in guest.journal("-u", spec.unit)
