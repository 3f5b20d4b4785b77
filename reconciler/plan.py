"""``plan(desired, actual)``: the ordered actions that make what runs match the specs.

Pure: no I/O, no clock, no generated names; the same inputs give the same plan, so
``pycontainers diff`` shows exactly what the daemon would do. Every action carries a reason
a person can read. Safety: only a name *validly absent* from the desired state is removed;
a container whose file is invalid (or whose origin is unknown while some file is invalid)
is held as it is.

Order: removals first (they may free a port or a volume for a renamed container), then
desired containers with every ``dependsOn`` before its dependents (ties by name), then
holds of containers that only exist.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pycontainers.reconciler.actual import RUNNING_STATES, ActualContainer, ActualState, unit_name
from pycontainers.reconciler.desired import DesiredContainer, DesiredState
from pycontainers.reconciler.errors import SpecError


class ActionKind(StrEnum):
    CREATE = "create"  # no unit: start a new one
    REPLACE = "replace"  # the unit runs another spec or image: stop it, start the new one
    START = "start"  # the unit is right but not running (failed, stopped by hand)
    REMOVE = "remove"  # the spec is validly gone: stop and remove the unit
    HOLD = "hold"  # the spec cannot be trusted now, or reconciliation is suspended
    NOTHING = "nothing"  # up to date

    @property
    def changes_something(self) -> bool:
        return self in (ActionKind.CREATE, ActionKind.REPLACE, ActionKind.START, ActionKind.REMOVE)


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    name: str
    reason: str
    container: DesiredContainer | None = None
    """The spec to realise (create, replace, start)."""
    changes: tuple[FieldChange, ...] = ()
    """Field-level differences of a replace, when the applied spec is known."""

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.reason}"


@dataclass(frozen=True)
class Plan:
    revision: str
    actions: tuple[Action, ...]
    errors: tuple[SpecError, ...] = ()

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind.changes_something)

    def counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in ActionKind}
        for action in self.actions:
            counts[action.kind.value] += 1
        return counts

    def by_name(self) -> Mapping[str, Action]:
        return {a.name: a for a in self.actions}


def plan(desired: DesiredState, actual: ActualState) -> Plan:
    removals: list[Action] = []
    holds: list[Action] = []
    for name in sorted(actual.containers):
        if name in desired.containers or name in desired.held:
            continue
        current = actual.containers[name]
        if name in actual.suspended:
            holds.append(Action(ActionKind.HOLD, name, "suspended; spec removed"))
        elif current.source_file is not None and current.source_file in desired.invalid_files:
            holds.append(
                Action(
                    ActionKind.HOLD,
                    name,
                    f"{current.source_file} is invalid: kept as it last was",
                )
            )
        elif current.source_file is None and desired.invalid_files:
            holds.append(
                Action(
                    ActionKind.HOLD,
                    name,
                    "spec not found while some files are invalid: kept as it last was",
                )
            )
        else:
            removals.append(Action(ActionKind.REMOVE, name, "spec removed"))

    ordered: list[Action] = []
    for name in _dependency_order(desired.containers):
        container = desired.containers[name]
        ordered.append(_decide(container, actual.containers.get(name), name in actual.suspended))
    for name, held in desired.held.items():
        exists = name in actual.containers
        reason = held.reason if exists else f"{held.reason} (not created)"
        holds.append(Action(ActionKind.HOLD, name, reason))
    return Plan(desired.revision, (*removals, *ordered, *holds), desired.errors)


def _decide(want: DesiredContainer, have: ActualContainer | None, suspended: bool) -> Action:
    name = want.name
    if suspended:
        return Action(ActionKind.HOLD, name, "suspended")
    if have is None:
        return Action(ActionKind.CREATE, name, "new container", want)
    reasons: list[str] = []
    changes: tuple[FieldChange, ...] = ()
    if have.applied_hash != want.spec_hash:
        if have.applied_spec is not None:
            changes = tuple(_field_changes(have.applied_spec, want.normalised))
        reasons.append(
            _describe(changes)
            if changes
            else f"spec changed (hash {_short(have.applied_hash)} -> {_short(want.spec_hash)})"
        )
    if want.image_digest is not None and have.image_digest not in (None, want.image_digest):
        reasons.append(
            f"image digest changed: {_short(have.image_digest)} -> {_short(want.image_digest)}"
        )
    if reasons:
        kind = ActionKind.REPLACE if have.unit_exists else ActionKind.CREATE
        return Action(kind, name, "; ".join(reasons), want, changes)

    policy = want.document.spec.restart_policy
    if not have.unit_exists:
        if _finished_for_good(have, policy):
            return Action(ActionKind.NOTHING, name, f"completed ({have.result})")
        return Action(ActionKind.CREATE, name, f"unit {unit_name(name)} is gone", want)
    if have.active_state in RUNNING_STATES:
        return Action(ActionKind.NOTHING, name, f"up to date ({have.sub_state})")
    if have.active_state == "deactivating":
        return Action(ActionKind.NOTHING, name, "stopping; looked at again when it settles")
    if _finished_for_good(have, policy):
        return Action(
            ActionKind.NOTHING, name, f"completed ({have.result}; restartPolicy {policy})"
        )
    if have.failed:
        return Action(ActionKind.START, name, f"unit failed ({have.result})", want)
    return Action(ActionKind.START, name, f"unit {have.active_state} ({have.sub_state})", want)


def _finished_for_good(have: ActualContainer, policy: str) -> bool:
    """A job ran to an end its restart policy accepts: running it again would be wrong."""
    if have.active_state not in ("inactive", "failed"):
        return False
    if policy == "Never":
        return True
    return policy == "OnFailure" and have.result == "success" and not have.failed


def _dependency_order(containers: Mapping[str, DesiredContainer]) -> list[str]:
    """Kahn's algorithm with a name-ordered heap: dependencies first, deterministic ties.

    ``load_desired`` already held cyclic containers, so every name gets placed.
    """
    waiting = {name: {d for d in c.depends_on if d in containers} for name, c in containers.items()}
    dependents: dict[str, list[str]] = {}
    for name, deps in waiting.items():
        for dep in deps:
            dependents.setdefault(dep, []).append(name)
    ready = [name for name, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for dependent in dependents.get(name, ()):
            waiting[dependent].discard(name)
            if not waiting[dependent]:
                heapq.heappush(ready, dependent)
    if len(order) != len(containers):  # a cycle slipped through: never drop a container
        order.extend(sorted(set(containers) - set(order)))
    return order


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _field_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[FieldChange]:
    before, after = _flatten(old), _flatten(new)
    for path in sorted(set(before) | set(after)):
        if path in ("apiVersion", "kind"):
            continue
        a, b = before.get(path), after.get(path)
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            yield FieldChange(path, a, b)


_KEYED = ("spec.env.", "spec.sysctls.", "metadata.labels.", "metadata.annotations.")


def _describe(changes: tuple[FieldChange, ...]) -> str:
    """ "env changed: A, B; image changed" from field paths."""
    groups: dict[str, list[str]] = {}
    for change in changes:
        keyed = next((p for p in _KEYED if change.path.startswith(p)), None)
        if keyed is not None:
            group = keyed.rstrip(".").rsplit(".", 1)[1]
            groups.setdefault(group, []).append(change.path[len(keyed) :])
        else:
            groups.setdefault(_field_group(change.path), [])
    return "; ".join(
        f"{group} changed: {', '.join(keys)}" if keys else f"{group} changed"
        for group, keys in groups.items()
    )


def _field_group(path: str) -> str:
    """The name a person knows a field by: ``image``, ``mounts``, ``resources.memory``."""
    parts = path.split(".")
    if parts[0] == "spec" and len(parts) > 1:
        if parts[1] in ("resources", "capabilities"):
            return ".".join(parts[1:3])
        return parts[1]
    return parts[-1]


def _short(value: str | None) -> str:
    if value is None:
        return "none"
    algorithm, sep, hexpart = value.partition(":")
    return f"{algorithm}:{hexpart[:12]}" if sep else value[:12]
