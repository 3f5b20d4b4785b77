"""Containers as units: start, stop, restart, kill, list and watch, touching only our own units.

A unit is ours when it is transient and carries our ``LogExtraFields`` naming the same
container as its unit name. Anything else under a ``pycontainers-*`` name (a unit file an
admin wrote, a unit some other tool started) is foreign: every verb refuses it with
``ForeignUnit`` instead of stopping or replacing it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from pycontainers.units.bus import BusTarget
from pycontainers.units.errors import ForeignUnit, NoSuchUnit, SystemdCallError
from pycontainers.units.manager import SystemdManager, UnitEvent, UnitStatus
from pycontainers.units.model import (
    UNIT_PATTERN,
    UnitMetadata,
    UnitSpec,
    container_of,
    render_properties,
    unit_name,
)

UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"
ACTIVE_STATES = ("active", "activating", "deactivating", "reloading", "refreshing")
LIST_CONCURRENCY = 16
"""Units read at once by ``list()``. Reading ~100 at once backs the replies (two GetAll
each, ~10 kB) up in dbus-daemon until it stops reading our requests, and dbus-next then
fails its write with EAGAIN and drops the connection."""


@dataclass(frozen=True)
class ContainerUnit:
    """One container as systemd runs it: what we started (metadata) and how it is doing."""

    metadata: UnitMetadata
    status: UnitStatus

    @property
    def container(self) -> str:
        return self.metadata.container

    @property
    def unit(self) -> str:
        return self.status.name


class UnitBackend(Protocol):
    """What the reconciler needs from units (SystemdBackend is the implementation)."""

    async def start(self, spec: UnitSpec) -> ContainerUnit: ...

    async def stop(self, container: str) -> None: ...

    async def restart(self, container: str) -> ContainerUnit: ...

    async def list(self) -> list[ContainerUnit]: ...


def ownership(container: str, status: UnitStatus) -> UnitMetadata:
    """Our metadata on ``status``, or ForeignUnit saying why the unit is not ours."""
    if not status.transient:
        where = f" (unit file {status.fragment_path})" if status.fragment_path else ""
        raise ForeignUnit(status.name, f"it is not a transient unit{where}")
    metadata = UnitMetadata.from_log_fields(status.log_extra_fields)
    if metadata is None:
        raise ForeignUnit(status.name, "it carries no pycontainers metadata (LogExtraFields)")
    if metadata.container != container:
        raise ForeignUnit(status.name, f"its metadata names container {metadata.container!r}")
    return metadata


class SystemdBackend:
    """The container-level client the reconciler uses; one manager (system or user) each."""

    def __init__(self, manager: SystemdManager) -> None:
        self.manager = manager

    @classmethod
    async def open(cls, target: BusTarget, timeout: float = 10.0) -> SystemdBackend:
        return cls(await SystemdManager.open(target, timeout))

    def close(self) -> None:
        self.manager.close()

    async def __aenter__(self) -> SystemdBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def _owned(self, container: str, load: bool = False) -> ContainerUnit | None:
        """Our unit for ``container``; None if no unit of that name exists."""
        name = unit_name(container)
        try:
            path = await (self.manager.load_unit(name) if load else self.manager.get_unit(name))
        except NoSuchUnit:
            return None
        status = await self.manager.status_at(name, path)
        if status.load_state == "not-found" and not status.fragment_path:
            return None
        return ContainerUnit(ownership(container, status), status)

    async def get(self, container: str) -> ContainerUnit | None:
        return await self._owned(container)

    async def start(self, spec: UnitSpec, timeout: float = 90.0) -> ContainerUnit:
        """Start the container's unit and wait for the job (READY=1 from the runtime).

        A failed or inactive unit of ours still holding the name is reset first; an
        active one is left alone (UnitExists: replace it with stop + start).
        """
        properties = render_properties(spec)
        name = spec.unit
        try:
            await self.manager.start_transient_unit(name, properties, timeout=timeout)
        except SystemdCallError as exc:
            if exc.error_name != UNIT_EXISTS:
                raise
            existing = await self._owned(spec.container, load=True)
            if existing is not None and existing.status.active_state in ACTIVE_STATES:
                raise
            await self._release(name)
            await self.manager.start_transient_unit(name, properties, timeout=timeout)
        unit = await self._owned(spec.container)
        if unit is None:
            raise NoSuchUnit(
                f"start {name}", "org.freedesktop.systemd1.NoSuchUnit", "unit vanished"
            )
        return unit

    async def _release(self, name: str, timeout: float = 10.0) -> None:
        """Reset a failed/inactive unit and wait until systemd has collected it."""
        with contextlib.suppress(NoSuchUnit):
            await self.manager.reset_failed_unit(name)
        await self.manager.wait_for(
            name,
            lambda s: s is None,
            timeout,
            what=f"{name} to be unloaded (a unit that still references it keeps it loaded)",
        )

    async def stop(self, container: str, timeout: float = 90.0) -> None:
        """Stop the container; a no-op if its unit is gone.

        A failed unit is reset so that its name is free again. The unit may stay loaded
        (inactive) while other units still reference it, e.g. through ``Requires=``.
        """
        unit = await self._owned(container)
        if unit is None:
            return
        name = unit.unit
        if unit.status.active_state in ACTIVE_STATES:
            await self.manager.stop_unit(name, timeout=timeout)
        status = await self.manager.status_or_none(name)
        if status is not None and status.active_state == "failed":
            with contextlib.suppress(NoSuchUnit):
                await self.manager.reset_failed_unit(name)

    async def restart(self, container: str, timeout: float = 90.0) -> ContainerUnit:
        unit = await self._require(container)
        await self.manager.restart_unit(unit.unit, timeout=timeout)
        return await self._require(container)

    async def kill(self, container: str, signal: int, who: str = "main") -> None:
        """Send ``signal`` to the container's init (``main``) or every process (``all``)."""
        unit = await self._require(container)
        await self.manager.kill_unit(unit.unit, who, signal)

    async def reset_failed(self, container: str) -> None:
        unit = await self._require(container)
        await self.manager.reset_failed_unit(unit.unit)

    async def _require(self, container: str) -> ContainerUnit:
        unit = await self._owned(container)
        if unit is None:
            name = unit_name(container)
            raise NoSuchUnit(name, "org.freedesktop.systemd1.NoSuchUnit", f"unit {name} not loaded")
        return unit

    async def list(self) -> list[ContainerUnit]:
        """Every container unit of ours that systemd has loaded (running, failed, ...)."""
        rows = await self.manager.list_units_by_patterns([UNIT_PATTERN])
        limit = asyncio.Semaphore(LIST_CONCURRENCY)

        async def read(name: str, path: str) -> ContainerUnit | None:
            container = container_of(name)
            if container is None:
                return None
            async with limit:
                try:
                    status = await self.manager.status_at(name, path)
                    return ContainerUnit(ownership(container, status), status)
                except (ForeignUnit, NoSuchUnit):
                    return None

        found = await asyncio.gather(*(read(r.name, r.path) for r in rows))
        return sorted((u for u in found if u is not None), key=lambda u: u.container)

    @contextlib.asynccontextmanager
    async def events(self) -> AsyncIterator[asyncio.Queue[UnitEvent]]:
        """Signals about ``pycontainers-*`` units, queued from entry (mark dirty on each)."""
        async with self.manager.watch(lambda name: container_of(name) is not None) as queue:
            yield queue

    async def wait_for(
        self,
        container: str,
        predicate: Callable[[UnitStatus | None], bool],
        timeout: float,
        what: str = "",
    ) -> UnitStatus | None:
        return await self.manager.wait_for(unit_name(container), predicate, timeout, what)
