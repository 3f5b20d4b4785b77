"""What actually runs: our units (over D-Bus) joined with the bundles' applied records.

The unit's own metadata (name, spec hash, image digest) is the truth about what runs;
the record in its bundle adds what the unit cannot carry (source file, the applied spec
for field-level diffs). A container whose unit is gone but whose bundle was started is
reported as ``unit_exists=False``: the plan re-creates it (drift repair), unless it is a
job that already ran to an end its restart policy accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pycontainers.reconciler.actual import ActualContainer, ActualState
from pycontainers.reconciler.layout import (
    AppliedRecord,
    EnginePaths,
    latest_records,
    mark_started,
    read_record,
)
from pycontainers.units.backend import ContainerUnit, SystemdBackend
from pycontainers.units.manager import UnitStatus


@dataclass(frozen=True)
class Observed:
    actual: ActualState
    units: Mapping[str, UnitStatus] = field(default_factory=lambda: MappingProxyType({}))
    records: Mapping[str, AppliedRecord] = field(default_factory=lambda: MappingProxyType({}))


def _from_unit(unit: ContainerUnit, record: AppliedRecord | None) -> ActualContainer:
    status = unit.status
    meta = unit.metadata
    matching = record is not None and record.spec_hash == meta.spec_hash
    return ActualContainer(
        name=unit.container,
        unit_exists=True,
        active_state=status.active_state,
        sub_state=status.sub_state,
        result=status.result,
        applied_hash=meta.spec_hash,
        image_digest=meta.image_digest,
        restarts=status.n_restarts,
        source_file=record.source_file if matching and record else None,
        applied_spec=record.spec if matching and record else None,
    )


def _gone(record: AppliedRecord) -> ActualContainer:
    """A unit we started is no longer loaded: stopped by hand, collected, or a reboot."""
    return ActualContainer(
        name=record.name,
        unit_exists=False,
        active_state="inactive",
        sub_state="dead",
        result="success",
        applied_hash=record.spec_hash,
        image_digest=record.image_digest,
        source_file=record.source_file,
        applied_spec=record.spec,
    )


def merge(paths: EnginePaths, units: list[ContainerUnit], suspended: frozenset[str]) -> Observed:
    records = latest_records(paths)
    containers: dict[str, ActualContainer] = {}
    statuses: dict[str, UnitStatus] = {}
    unit_records: dict[str, AppliedRecord] = {}
    for unit in units:
        meta = unit.metadata
        bundle = paths.bundle_dir(unit.container, meta.spec_hash, meta.image_digest)
        record = read_record(bundle)
        if record is not None:
            mark_started(bundle)
            unit_records[unit.container] = record
        containers[unit.container] = _from_unit(unit, record)
        statuses[unit.container] = unit.status
    for name, record in records.items():
        if name not in containers:
            containers[name] = _gone(record)
            unit_records[name] = record
    return Observed(
        ActualState(MappingProxyType(containers), suspended),
        MappingProxyType(statuses),
        MappingProxyType(unit_records),
    )


async def observe(
    backend: SystemdBackend, paths: EnginePaths, suspended: frozenset[str]
) -> Observed:
    return merge(paths, await backend.list(), suspended)
