"""Only our units are touched; a fresh process recognises (adopts) running containers.

Ownership: transient + our LogExtraFields naming the same container. A unit of another
origin under a ``pycontainers-*`` name must survive every verb.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from asyncio import run
from collections.abc import Callable

import pytest

from harness.sandbox import Sandbox
from harness.util import eventually
from pycontainers.units.backend import SystemdBackend
from pycontainers.units.bus import SYSTEM_BUS_DEFAULT, BusTarget
from pycontainers.units.errors import ForeignUnit
from pycontainers.units.model import UnitSpec

pytestmark = [pytest.mark.systemd, pytest.mark.root, pytest.mark.usefixtures("clean_units")]

MakeSpec = Callable[..., UnitSpec]


def _active(systemd: Sandbox, unit: str) -> str:
    return systemd.systemctl("is-active", unit).stdout.strip()


def test_a_foreign_transient_unit_is_never_touched(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    spec = make_spec(name)
    systemd.exec("systemd-run", f"--unit={spec.unit}", "-q", "sleep", "600")
    assert _active(systemd, spec.unit) == "active"

    async def scenario() -> list[str]:
        refused = []
        async with await SystemdBackend.open(system_bus) as backend:
            for verb in (
                lambda: backend.start(spec),
                lambda: backend.stop(name),
                lambda: backend.restart(name),
                lambda: backend.kill(name, 9),
            ):
                with pytest.raises(ForeignUnit) as info:
                    await verb()
                refused.append(str(info.value))
            assert name not in [u.container for u in await backend.list()]
        return refused

    refused = run(scenario())
    assert set(refused) == {
        f"refusing to touch {spec.unit}: it carries no pycontainers metadata (LogExtraFields)"
    }
    assert _active(systemd, spec.unit) == "active"


def test_a_unit_file_of_that_name_is_never_replaced(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    spec = make_spec(name)
    path = f"/etc/systemd/system/{spec.unit}"
    systemd.exec(
        "sh", "-c", f"printf '[Service]\\nExecStart=/bin/sleep 600\\n' > {path}"
    )  # fmt: skip
    systemd.systemctl("daemon-reload")
    try:

        async def scenario() -> ForeignUnit:
            async with await SystemdBackend.open(system_bus) as backend:
                with pytest.raises(ForeignUnit) as info:
                    await backend.start(spec)
                return info.value

        error = run(scenario())
        assert str(error) == (
            f"refusing to touch {spec.unit}: it is not a transient unit (unit file {path})"
        )
        assert "rename the container" in error.diagnostics()
        assert _active(systemd, spec.unit) == "inactive"
    finally:
        systemd.exec("rm", "-f", path)
        systemd.systemctl("daemon-reload")


ADOPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pycontainers.units.backend import SystemdBackend
    from pycontainers.units.bus import SYSTEM_BUS_DEFAULT, BusTarget

    async def main():
        target = BusTarget("system", sys.argv[1], "")
        async with await SystemdBackend.open(target) as backend:
            return [
                {"container": u.container, "hash": u.metadata.spec_hash,
                 "digest": u.metadata.image_digest, "unit": u.unit,
                 "state": u.status.active_state, "pid": u.status.main_pid}
                for u in await backend.list()
            ]

    print(json.dumps(asyncio.run(main())))
    """
)


def test_a_fresh_process_adopts_running_containers(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    specs = [make_spec(f"{name}-{i}", spec_hash=f"sha256:spec{i}") for i in range(2)]

    async def start_all() -> dict[str, int]:
        async with await SystemdBackend.open(system_bus) as backend:
            return {s.container: (await backend.start(s)).status.main_pid for s in specs}

    pids = run(start_all())  # the starting client is gone now
    expected = {
        s.container: {
            "container": s.container,
            "hash": s.spec_hash,
            "digest": s.image_digest,
            "unit": s.unit,
            "state": "active",
            "pid": pids[s.container],
        }
        for s in specs
    }
    # a new process on this side of the sandbox, and one inside it on the default system
    # bus path, where the daemon itself runs
    from_host = subprocess.run(
        [sys.executable, "-c", ADOPT, system_bus.address],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    from_guest = systemd.exec(sys.executable, "-c", ADOPT, SYSTEM_BUS_DEFAULT).stdout
    for out in (from_host, from_guest):
        adopted = {u["container"]: u for u in json.loads(out) if u["container"].startswith(name)}
        assert adopted == expected


def test_events_report_our_units_only(
    systemd: Sandbox, system_bus: BusTarget, make_spec: MakeSpec, name: str
) -> None:
    spec = make_spec(name)

    async def scenario() -> list[tuple[str, str, str]]:
        seen: list[tuple[str, str, str]] = []
        async with (
            await SystemdBackend.open(system_bus) as backend,
            backend.events() as events,
        ):
            systemd.exec("systemd-run", "--unit=not-ours-" + name, "-q", "true")
            await backend.start(spec)
            await backend.stop(name)
            while not any(kind == "removed" for _, kind, _ in seen):
                event = await asyncio.wait_for(events.get(), 20)
                state = str(event.changed.get("ActiveState", event.job_result))
                seen.append((event.unit, event.kind, state))
        return seen

    seen = run(scenario())
    assert {unit for unit, _, _ in seen} == {spec.unit}
    assert (spec.unit, "job", "done") in seen
    states = [state for _, kind, state in seen if kind == "changed" and state]
    assert "active" in states
    assert "inactive" in states or "deactivating" in states
    eventually(lambda: _active(systemd, f"not-ours-{name}") != "active", what="probe ends")
