"""Which bus is tried, and what an operator reads when it cannot be reached.

The "bus without systemd" case uses a real dbus-daemon (a session bus nobody registered
systemd on), not a fake.
"""

from __future__ import annotations

import os
import socket
import subprocess
from asyncio import run
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainers.units.bus import SYSTEM_BUS_DEFAULT, BusTarget, connect, system_bus, user_bus
from pycontainers.units.errors import BusUnavailable
from pycontainers.units.manager import SystemdManager


def test_system_bus_honours_the_environment() -> None:
    assert system_bus({}).address == SYSTEM_BUS_DEFAULT
    assert system_bus({"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/x"}).address == "unix:path=/x"


def test_user_bus_prefers_the_session_address_then_the_runtime_dir() -> None:
    env = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/a", "XDG_RUNTIME_DIR": "/run/user/7"}
    assert user_bus(env, uid=7).address == "unix:path=/a"
    assert user_bus({"XDG_RUNTIME_DIR": "/run/user/7"}, uid=7).address == (
        "unix:path=/run/user/7/bus"
    )


def test_user_bus_without_any_address_says_how_to_get_one() -> None:
    with pytest.raises(BusUnavailable) as info:
        user_bus({}, uid=0)
    assert str(info.value) == (
        "cannot reach the user manager's bus at (no address): "
        "neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set"
    )
    assert "XDG_RUNTIME_DIR=/run/user/0" in info.value.hint
    assert "loginctl enable-linger root" in info.value.hint


def test_a_missing_user_bus_points_at_lingering(tmp_path: Path) -> None:
    target = user_bus({"XDG_RUNTIME_DIR": str(tmp_path)}, uid=os.getuid())
    with pytest.raises(BusUnavailable) as info:
        run(connect(target))
    assert str(info.value) == (
        f"cannot reach the user manager's bus at unix:path={tmp_path}/bus: "
        "the socket does not exist"
    )
    assert "loginctl enable-linger" in info.value.diagnostics()
    assert info.value.retryable


def test_a_dead_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bus"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))  # bound, never listening: connect() gets ECONNREFUSED
        with pytest.raises(BusUnavailable, match="connection refused"):
            run(connect(BusTarget("system", f"unix:path={path}", "hint")))


@pytest.fixture
def bus_without_systemd(tmp_path: Path) -> Iterator[str]:
    address = f"unix:path={tmp_path}/bus"
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address={address}",
         "--print-address=1"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # printed once it listens
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_bus_without_systemd_is_named(bus_without_systemd: str) -> None:
    target = BusTarget("user", bus_without_systemd, "enable lingering")
    with pytest.raises(BusUnavailable) as info:
        run(SystemdManager.open(target))
    assert str(info.value).startswith(
        f"cannot reach the user manager's bus at {bus_without_systemd}: "
        "no systemd manager on this bus (org.freedesktop.systemd1 did not answer: "
    )
    assert "loginctl" not in str(info.value)  # the advice is in the hint
    assert info.value.hint == "enable lingering"
