"""Carry out a plan: per container pull -> layers -> bundle -> unit; report, retry, prune.

Containers are independent: each action runs in its own task, and a failure (a bad image,
a refused signature, a unit that does not start) is caught, reported with its reason and
retried later with a capped exponential backoff; it never stops the others. A container
waits for the containers it ``dependsOn`` only to be *handled*, so their failure is its
own error rather than a hang.

Order inside one container makes a replace safe: the new image is pulled and unpacked and
its bundle written *before* the old unit is stopped, so a slow or failing pull never costs
downtime. Removal touches only units that carry our metadata (the units part refuses
foreign ones) and never deletes named volumes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pycontainers.reconciler.bundle import signal_number, write_bundle
from pycontainers.reconciler.desired import DesiredContainer, DesiredState
from pycontainers.reconciler.errors import ReconcilerError
from pycontainers.reconciler.images import ImageSupply
from pycontainers.reconciler.layout import (
    TMP_PREFIX,
    AppliedRecord,
    EnginePaths,
    bundle_id,
    bundles_of,
    mark_started,
    remove_tree,
)
from pycontainers.reconciler.plan import Action, ActionKind, Plan
from pycontainers.units.backend import SystemdBackend
from pycontainers.units.errors import UnitError
from pycontainers.units.model import (
    Resources,
    RestartPolicy,
    RuntimeCommand,
    UnitSpec,
)

log = logging.getLogger("pycontainers.apply")

RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}


@dataclass(frozen=True)
class Outcome:
    name: str
    kind: str
    reason: str
    ok: bool
    error: str = ""
    image_digest: str = ""
    at: float = 0.0
    skipped: bool = False
    """Not attempted: waiting for its retry time."""


@dataclass
class Retry:
    spec_hash: str
    failures: int
    next_at: float
    last_error: str


@dataclass
class RetryBook:
    """Capped exponential backoff per container and spec: a new spec retries at once."""

    base: float = 2.0
    cap: float = 300.0
    entries: dict[str, Retry] = field(default_factory=dict)

    def due(self, name: str, spec_hash: str, now: float) -> bool:
        entry = self.entries.get(name)
        return entry is None or entry.spec_hash != spec_hash or now >= entry.next_at

    def failed(self, name: str, spec_hash: str, now: float, error: str) -> Retry:
        entry = self.entries.get(name)
        count = entry.failures + 1 if entry and entry.spec_hash == spec_hash else 1
        delay = min(self.base * 2 ** (count - 1), self.cap)
        retry = Retry(spec_hash, count, now + delay, error)
        self.entries[name] = retry
        return retry

    def succeeded(self, name: str) -> None:
        self.entries.pop(name, None)

    def next_wake(self) -> float | None:
        return min((e.next_at for e in self.entries.values()), default=None)


def unit_spec(
    container: DesiredContainer,
    bundle: str,
    digest: str,
    runtime: RuntimeCommand,
    long_running: frozenset[str],
) -> UnitSpec:
    spec = container.document.spec
    limits = spec.resources
    # Requires= only on dependencies that keep running: a finished job's unit is
    # collected, and requiring a unit that no longer exists would fail the start.
    deps = tuple(d for d in spec.depends_on if d in long_running)
    return UnitSpec(
        container=container.name,
        bundle=bundle,
        spec_hash=container.spec_hash,
        image_digest=digest,
        runtime=runtime,
        restart=RestartPolicy(RESTART[spec.restart_policy]),  # type: ignore[arg-type]
        stop_signal=signal_number(spec.stop_signal),
        stop_timeout_sec=spec.stop_timeout,
        resources=Resources(memory_max=limits.memory, cpu_quota=limits.cpus, tasks_max=limits.pids),
        depends_on=deps,
    )


class Applier:
    def __init__(
        self,
        paths: EnginePaths,
        backend: SystemdBackend,
        images: ImageSupply,
        *,
        runtime: RuntimeCommand | None = None,
        retries: RetryBook | None = None,
        parallel: int = 8,
    ) -> None:
        self.paths = paths
        self.backend = backend
        self.images = images
        self.runtime = runtime or RuntimeCommand()
        self.retries = retries or RetryBook()
        self.parallel = parallel

    async def apply(self, plan: Plan, desired: DesiredState) -> list[Outcome]:
        now = time.time()
        sem = asyncio.Semaphore(self.parallel)
        handled: dict[str, asyncio.Event] = {a.name: asyncio.Event() for a in plan.changes}
        long_running = frozenset(
            n for n, c in desired.containers.items() if c.document.spec.restart_policy == "Always"
        )

        async def one(action: Action) -> Outcome:
            try:
                return await self._one(action, now, sem, handled, long_running, plan.revision)
            finally:
                handled[action.name].set()

        outcomes = await asyncio.gather(*(one(a) for a in plan.changes))
        await self.collect_garbage(desired, plan)
        return list(outcomes)

    async def _one(
        self,
        action: Action,
        now: float,
        sem: asyncio.Semaphore,
        handled: Mapping[str, asyncio.Event],
        long_running: frozenset[str],
        revision: str,
    ) -> Outcome:
        name = action.name
        container = action.container
        spec_hash = container.spec_hash if container else ""
        if not self.retries.due(name, spec_hash, now):
            entry = self.retries.entries[name]
            return Outcome(
                name,
                str(action.kind),
                action.reason,
                ok=False,
                error=entry.last_error,
                at=now,
                skipped=True,
            )
        try:
            if action.kind is ActionKind.REMOVE:
                async with sem:
                    await self.remove(name)
                digest = ""
            else:
                assert container is not None
                digest = await self._realise(
                    action, container, sem, handled, long_running, revision
                )
        except (ReconcilerError, UnitError, OSError) as exc:
            error = exc.diagnostics() if hasattr(exc, "diagnostics") else str(exc)
            if isinstance(exc, OSError) and not isinstance(exc, ReconcilerError):
                error = f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
            retry = self.retries.failed(name, spec_hash, time.time(), error)
            log.warning(
                "%s %s failed (retry in %.0fs): %s",
                action.kind,
                name,
                retry.next_at - time.time(),
                error,
            )
            return Outcome(
                name, str(action.kind), action.reason, ok=False, error=error, at=time.time()
            )
        self.retries.succeeded(name)
        log.info("%s %s: %s", action.kind, name, action.reason)
        return Outcome(
            name, str(action.kind), action.reason, ok=True, image_digest=digest, at=time.time()
        )

    async def _realise(
        self,
        action: Action,
        container: DesiredContainer,
        sem: asyncio.Semaphore,
        handled: Mapping[str, asyncio.Event],
        long_running: frozenset[str],
        revision: str,
    ) -> str:
        name = container.name
        spec = container.document.spec
        async with sem:
            image = await self.images.prepare(spec, want_digest=container.image_digest)
            record = AppliedRecord(
                name=name,
                spec_hash=container.spec_hash,
                image_digest=image.digest,
                image=image.name,
                source_file=container.source_file,
                revision=revision,
                spec=dict(container.normalised),
            )
            bundle = await asyncio.to_thread(
                write_bundle, self.paths, record, spec, image.config, image.layers
            )
        for dep in spec.depends_on:
            event = handled.get(dep)
            if event is not None:
                await event.wait()
        async with sem:
            if action.kind is ActionKind.REPLACE:
                await self.backend.stop(name, timeout=spec.stop_timeout + 30)
            unit = unit_spec(container, str(bundle), image.digest, self.runtime, long_running)
            try:
                await self.backend.start(unit)
            except UnitError:
                # a unit that started and failed at once still ran from this bundle
                if await self.backend.get(name) is not None:
                    mark_started(bundle)
                raise
            mark_started(bundle)
        return image.digest

    async def remove(self, name: str) -> None:
        """Stop and drop our unit, then the container's bundles (never its volumes)."""
        await self.backend.stop(name)
        await asyncio.to_thread(remove_tree, self.paths.container_dir(name))

    async def collect_garbage(self, desired: DesiredState, plan: Plan) -> None:
        """Delete bundles nothing runs from: old ones after a replace, half-written ones;
        and layer unpacks a crash interrupted."""
        await asyncio.to_thread(self.images.layers.remove_stale)
        try:
            units = {u.container: u for u in await self.backend.list()}
        except UnitError as exc:
            log.warning("garbage collection skipped: %s", exc)
            return
        keep_all = {a.name for a in plan.actions if a.kind is ActionKind.HOLD}
        await asyncio.to_thread(self._collect, desired, units, keep_all)

    def _collect(
        self, desired: DesiredState, units: Mapping[str, object], keep_all: set[str]
    ) -> None:
        try:
            names = [e.name for e in self.paths.containers.iterdir() if e.is_dir()]
        except OSError:
            return
        for name in names:
            if name in keep_all:
                continue
            directory = self.paths.container_dir(name)
            unit = units.get(name)
            if unit is None and name not in desired.containers and name not in desired.held:
                remove_tree(directory)
                continue
            if unit is not None:
                meta = unit.metadata  # type: ignore[attr-defined]
                keep = {bundle_id(meta.spec_hash, meta.image_digest)}
            else:
                started = bundles_of(self.paths, name, started=True)
                keep = {started[0].name} if started else set()
            for entry in directory.iterdir():
                if entry.name in keep:
                    continue
                if entry.name.startswith(TMP_PREFIX) or entry.is_dir():
                    remove_tree(entry)
