"""``ActualState``: what the units report, as plain values, and the seam that provides it.

The units layer fills one ``ActualContainer`` per owned unit (``pycontainers-<name>``);
the daemon may also report containers whose unit is gone but whose outcome it recorded
(a finished one-shot job). ``diff`` reads it from a JSON file until the units layer exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import pydantic
from pydantic.alias_generators import to_camel

from pycontainers.reconciler.errors import ActualStateError

RUNNING_STATES = frozenset({"active", "activating", "reloading"})


def unit_name(name: str) -> str:
    return f"pycontainers-{name}.service"


@dataclass(frozen=True)
class ActualContainer:
    name: str
    unit_exists: bool = True
    """False when the unit is gone (removed by hand, garbage-collected after exit, reboot)."""
    active_state: str = "active"
    """systemd ActiveState: active, activating, deactivating, inactive, failed, reloading."""
    sub_state: str = "running"
    """systemd SubState, e.g. running, exited, dead, failed, auto-restart."""
    result: str = "success"
    """systemd Result of the last run: success, exit-code, signal, oom-kill, ..."""
    applied_hash: str | None = None
    """The spec hash the unit was started from (carried on the unit)."""
    image_digest: str | None = None
    """The manifest digest of the image the container runs."""
    restarts: int = 0
    """systemd NRestarts."""
    source_file: str | None = None
    """The spec file the container came from, so a broken file still holds it."""
    applied_spec: Mapping[str, Any] | None = field(default=None, compare=False)
    """The normalised spec last applied, when recorded: lets the plan name changed fields."""

    @property
    def failed(self) -> bool:
        return self.active_state == "failed"

    @property
    def running(self) -> bool:
        return self.unit_exists and self.active_state in RUNNING_STATES


@dataclass(frozen=True)
class ActualState:
    containers: Mapping[str, ActualContainer] = field(default_factory=lambda: MappingProxyType({}))
    suspended: frozenset[str] = frozenset()
    """Names an operator paused (``pycontainers suspend``): the plan holds them."""

    @classmethod
    def of(
        cls, *containers: ActualContainer, suspended: frozenset[str] = frozenset()
    ) -> ActualState:
        return cls(MappingProxyType({c.name: c for c in containers}), suspended)


class ActualStateProvider(Protocol):
    """The seam the units layer implements (by listing ``pycontainers-*.service``)."""

    async def actual_state(self) -> ActualState: ...


class EmptyActualState:
    """Nothing runs: the plan creates every desired container."""

    async def actual_state(self) -> ActualState:
        return ActualState()


class _ContainerRecord(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    name: str
    unit_exists: bool = True
    active_state: str = "active"
    sub_state: str = "running"
    result: str = "success"
    applied_hash: str | None = None
    image_digest: str | None = None
    restarts: int = 0
    source_file: str | None = None
    applied_spec: dict[str, Any] | None = None


class _StateRecord(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    containers: list[_ContainerRecord] = []
    suspended: list[str] = []


class JsonFileActualState:
    """Actual state read from a JSON file (``{"containers": [{"name": ..., ...}]}``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def actual_state(self) -> ActualState:
        return read_actual_state(self.path)


def read_actual_state(path: Path) -> ActualState:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ActualStateError(f"cannot read actual state {path}: {exc.strerror}") from exc
    try:
        record = _StateRecord.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ActualStateError(
            f"invalid actual state {path}: {where}: {first['msg'].lower()}"
        ) from exc
    return ActualState.of(
        *(ActualContainer(**c.model_dump()) for c in record.containers),
        suspended=frozenset(record.suspended),
    )


def actual_state_json(state: ActualState) -> str:
    """The inverse of ``read_actual_state``: for tests, tools and the daemon's status dir."""
    containers = [
        _ContainerRecord(
            **{f.name: getattr(c, f.name) for f in fields(c)}
            | {"applied_spec": dict(c.applied_spec) if c.applied_spec is not None else None}
        ).model_dump(by_alias=True, exclude_none=True)
        for c in sorted(state.containers.values(), key=lambda c: c.name)
    ]
    return json.dumps({"containers": containers, "suspended": sorted(state.suspended)}, indent=2)
