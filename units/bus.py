"""Which bus to talk to (the system manager's, or the calling user's), and connecting to it.

Root mode uses the system bus; rootless mode uses the user's own systemd manager, reached
on the user bus (``$DBUS_SESSION_BUS_ADDRESS``, else ``$XDG_RUNTIME_DIR/bus``). The user
manager only runs while the user has a session or lingering is enabled, which is the usual
reason the user bus is missing; the error says so.
"""

from __future__ import annotations

import errno
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pycontainers.units.errors import BusUnavailable, SystemdCallError
from pycontainers.units.wire import Connection, open_connection

SYSTEMD = "org.freedesktop.systemd1"
PEER = "org.freedesktop.DBus.Peer"
SYSTEM_BUS_DEFAULT = "unix:path=/run/dbus/system_bus_socket"

Scope = Literal["system", "user"]


@dataclass(frozen=True)
class BusTarget:
    """A bus address plus what to tell an operator when it cannot be reached."""

    scope: Scope
    address: str
    hint: str


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def system_bus(env: Mapping[str, str] | None = None) -> BusTarget:
    env = os.environ if env is None else env
    address = env.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS_DEFAULT
    hint = (
        "is dbus running (`systemctl status dbus.socket`)? on a host whose PID 1 is not "
        "systemd, run pycontainers in rootless mode or point DBUS_SYSTEM_BUS_ADDRESS at a "
        "bus that systemd serves"
    )
    return BusTarget("system", address, hint)


def user_bus(env: Mapping[str, str] | None = None, uid: int | None = None) -> BusTarget:
    """The calling user's manager bus; raises BusUnavailable when nothing says where it is."""
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    user = _user_name(uid)
    hint = (
        f"the user manager of {user} runs only while {user} is logged in or lingering: "
        f"run `loginctl enable-linger {user}` as root, then check "
        "`systemctl --user status` as that user"
    )
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return BusTarget("user", env["DBUS_SESSION_BUS_ADDRESS"], hint)
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return BusTarget("user", f"unix:path={runtime_dir}/bus", hint)
    raise BusUnavailable(
        "user",
        "(no address)",
        "neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set",
        f"set XDG_RUNTIME_DIR=/run/user/{uid} (a PAM login such as `machinectl shell "
        f"{user}@` sets it; su and sudo do not); {hint}",
    )


def bus_for(scope: Scope, env: Mapping[str, str] | None = None) -> BusTarget:
    return system_bus(env) if scope == "system" else user_bus(env)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno == errno.ENOENT:
            return "the socket does not exist"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"permission denied for uid {os.getuid()}"
        if exc.errno == errno.ECONNREFUSED:
            return "connection refused (nothing listens on the socket)"
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


async def connect(target: BusTarget, timeout: float = 10.0) -> Connection:
    """Connect to ``target`` and make sure a systemd manager answers on it."""
    try:
        conn = await open_connection(target.address, timeout)
    except (OSError, EOFError) as exc:
        raise BusUnavailable(target.scope, target.address, _cause(exc), target.hint) from exc
    try:
        # A call to systemd itself, not GetNameOwner: on a user bus that was just
        # socket-activated the manager registers its name a moment later, and
        # dbus-daemon holds an auto-starting call for org.freedesktop.systemd1 until then.
        await conn.call(SYSTEMD, "/org/freedesktop/systemd1", PEER, "Ping", timeout=timeout)
    except SystemdCallError as exc:
        conn.close()
        raise BusUnavailable(
            target.scope,
            target.address,
            f"no systemd manager on this bus ({SYSTEMD} did not answer: {exc.text})",
            target.hint,
        ) from exc
    return conn
