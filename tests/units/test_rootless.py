"""The rootless path: the unprivileged test user's own systemd manager, on the user bus.

The user bus lives inside the guest only, so the client runs there, as the user, with the
environment a login would give it (XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS); the bus is
found from that environment exactly as the rootless daemon will find it.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from harness.sandbox import Sandbox
from pycontainers.units.model import UnitSpec, default_runtime_path

pytestmark = [pytest.mark.systemd, pytest.mark.root, pytest.mark.usefixtures("clean_units")]

CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pycontainers.units.backend import SystemdBackend
    from pycontainers.units.bus import user_bus
    from pycontainers.units.errors import UnitError
    from pycontainers.units.model import RestartPolicy, RuntimeCommand, UnitSpec

    async def main(verb, name, bundle, runtime):
        try:
            async with await SystemdBackend.open(user_bus()) as backend:
                if verb == "start":
                    spec = UnitSpec(name, bundle, "h-" + name, "sha256:" + "cd" * 32,
                                    RuntimeCommand(runtime), RestartPolicy("no"))
                    unit = await backend.start(spec)
                elif verb == "stop":
                    await backend.stop(name)
                listed = await backend.list()
        except UnitError as exc:
            return {"error": exc.diagnostics()}
        return {"list": [[u.container, u.status.active_state, u.status.main_pid,
                          u.status.control_group, u.metadata.spec_hash] for u in listed]}

    print(json.dumps(asyncio.run(main(*sys.argv[1:]))))
    """
)


def client(systemd: Sandbox, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run CLIENT as the test user: ``start NAME BUNDLE RUNTIME``, ``stop NAME``, ``list``."""
    out = systemd.exec(sys.executable, "-c", CLIENT, *args, user=True, env=env)
    return json.loads(out.stdout)


def test_the_user_manager_runs_a_container_unit(
    systemd: Sandbox, make_spec: Callable[..., UnitSpec], name: str
) -> None:
    spec = make_spec(name)
    started = client(systemd, "start", name, spec.bundle, spec.runtime.path)
    assert "error" not in started, started["error"]
    [(container, state, pid, cgroup, spec_hash)] = [r for r in started["list"] if r[0] == name]
    assert (container, state, spec_hash) == (name, "active", f"h-{name}")
    uid = systemd.user_uid
    assert cgroup == (
        f"/user.slice/user-{uid}.slice/user@{uid}.service/pycontainers.slice/{spec.unit}"
    )
    assert systemd.exec("cat", f"/proc/{pid}/comm").stdout.strip() == "sleep"
    assert systemd.exec("stat", "-c", "%u", f"/proc/{pid}").stdout.strip() == str(uid)
    status = systemd.systemctl("status", spec.unit, user=True).stdout
    assert "Active: active (running)" in status
    # the system manager knows nothing of it
    assert spec.unit not in systemd.systemctl("list-units", "--all", "pycontainers-*").stdout

    stopped = client(systemd, "stop", name, "", "")
    assert [r for r in stopped["list"] if r[0] == name] == []


def test_without_a_user_bus_the_error_says_to_enable_lingering(systemd: Sandbox) -> None:
    # What a user without a running manager sees (no lingering, no login session).
    env = {"XDG_RUNTIME_DIR": "/tmp", "DBUS_SESSION_BUS_ADDRESS": ""}
    result = client(systemd, "list", "x", "", "", env=env)
    assert result["error"].splitlines()[0] == (
        "cannot reach the user manager's bus at unix:path=/tmp/bus: the socket does not exist"
    )
    assert "loginctl enable-linger pyctest" in result["error"]


BUSYBOX_INIT = "trap 'exit 0' TERM; echo hello rootless; while :; do sleep 1 & wait; done"


def test_a_rootless_busybox_container_in_the_user_manager(
    systemd: Sandbox, busybox_bundle: Callable[..., str], name: str
) -> None:
    """The real runtime as the unprivileged user, in a user namespace mapping root to it."""
    uid = systemd.user_uid
    assert uid is not None
    bundle = busybox_bundle(BUSYBOX_INIT, rootless_uid=uid)
    started = client(systemd, "start", name, bundle, default_runtime_path())
    if "error" in started:
        unit = f"pycontainers-{name}.service"
        log = systemd.exec(
            "journalctl", "--no-pager", "-o", "cat", f"_SYSTEMD_USER_UNIT={unit}"
        ).stdout  # fmt: skip
        runtime_says = [line for line in log.splitlines() if "pycontainers-runtime:" in line]
        # The unit model did its part (the job failed with systemd's reason); what is
        # missing is the runtime's rootless support (issue 7), e.g. gid_map without
        # setgroups=deny. Anything else is a real failure.
        assert "the main process exited with status 1" in started["error"], started["error"]
        assert runtime_says, log
        pytest.fail(f"the runtime cannot run rootless: {runtime_says[-1]}")
    [(_, state, pid, cgroup, _)] = [r for r in started["list"] if r[0] == name]
    assert state == "active"
    assert cgroup.endswith(f"/user@{uid}.service/pycontainers.slice/pycontainers-{name}.service")
    assert systemd.exec("cat", f"/proc/{pid}/comm").stdout.strip() == "sh"
    assert systemd.exec("stat", "-c", "%u", f"/proc/{pid}").stdout.strip() == str(uid)
    client(systemd, "stop", name, "", "")
