"""The one module that imports the D-Bus library (dbus-next), behind a small typed seam.

Everything else in ``units`` speaks in plain Python values: switching to dbus-fast (an
API-compatible fork) is the import lines below. Calls go out as raw method-call messages,
not through introspected proxies: one round trip per call, no per-unit introspection, and
types we control. Library errors are translated here, once, into ``units.errors``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import MessageType
from dbus_next.errors import AuthError, DBusError
from dbus_next.message import Message
from dbus_next.signature import Variant

from pycontainers.units.errors import NoSuchUnit, SystemdCallError

DBUS = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"
# A unit that is gone: by name (NoSuchUnit) or by a stale object path (UnknownObject)
GONE = ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.DBus.Error.UnknownObject")


@dataclass(frozen=True)
class Signal:
    """One received D-Bus signal, its body already unwrapped to plain values."""

    path: str
    interface: str
    member: str
    body: tuple[Any, ...]


SignalHandler = Callable[[Signal], None]


def to_wire(signature: str, value: object) -> Any:
    """Wrap one property value for the wire (dbus-next wants structs as lists, not tuples)."""
    return Variant(signature, _lists(value))


def _lists(value: object) -> object:
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    return value


def plain(value: object) -> Any:
    """Unwrap Variants recursively, so callers never see the library's types."""
    if isinstance(value, Variant):
        return plain(value.value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Connection:
    """One authenticated connection to a bus; calls, match rules and a signal fan-out."""

    def __init__(self, bus: Any) -> None:
        self._bus = bus
        self._handlers: list[SignalHandler] = []
        bus.add_message_handler(self._on_message)

    @property
    def connected(self) -> bool:
        return bool(self._bus.connected)

    async def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Sequence[object] = (),
        timeout: float = 30.0,
        what: str = "",
    ) -> list[Any]:
        """Call a method and return its reply body (plain values), or raise SystemdCallError."""
        what = what or member
        msg = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
        )
        try:
            reply = await asyncio.wait_for(self._bus.call(msg), timeout)
        except TimeoutError as exc:
            raise SystemdCallError(what, "org.freedesktop.DBus.Error.Timeout", "no reply") from exc
        except (OSError, EOFError, DBusError) as exc:
            raise SystemdCallError(
                what, "org.freedesktop.DBus.Error.Disconnected", str(exc) or type(exc).__name__
            ) from exc
        if reply is None:
            return []
        if reply.message_type == MessageType.ERROR:
            name = reply.error_name or "org.freedesktop.DBus.Error.Failed"
            text = str(reply.body[0]) if reply.body else name
            cls = NoSuchUnit if name in GONE else SystemdCallError
            raise cls(what, name, text[:1].lower() + text[1:].rstrip("."))
        return [plain(v) for v in reply.body]

    async def add_match(self, rule: str) -> None:
        await self.call(DBUS, DBUS_PATH, DBUS, "AddMatch", "s", [rule], what="AddMatch")

    async def remove_match(self, rule: str) -> None:
        if self.connected:
            await self.call(DBUS, DBUS_PATH, DBUS, "RemoveMatch", "s", [rule], what="RemoveMatch")

    def add_signal_handler(self, handler: SignalHandler) -> None:
        self._handlers.append(handler)

    def remove_signal_handler(self, handler: SignalHandler) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)

    def close(self) -> None:
        if self.connected:
            self._bus.disconnect()

    def _on_message(self, msg: Any) -> None:
        # Returning a truthy value would mark the message handled and swallow method
        # replies, so this handler only ever observes signals and returns None.
        if msg.message_type != MessageType.SIGNAL:
            return
        signal = Signal(
            path=msg.path or "",
            interface=msg.interface or "",
            member=msg.member or "",
            body=tuple(plain(v) for v in msg.body),
        )
        for handler in list(self._handlers):
            handler(signal)


async def open_connection(address: str, timeout: float) -> Connection:
    """Connect and authenticate; raises OSError (or EOFError) for the caller to explain."""
    try:
        bus = MessageBus(bus_address=address)
        await asyncio.wait_for(bus.connect(), timeout)
    except (DBusError, AuthError) as exc:
        raise ConnectionError(str(exc) or type(exc).__name__) from exc
    except TimeoutError as exc:
        raise ConnectionError("no answer from the bus") from exc
    except (ValueError, TypeError) as exc:
        raise ConnectionError(f"invalid bus address ({exc})") from exc
    return Connection(bus)
