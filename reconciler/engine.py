"""One reconcile pass: snapshot -> desired -> actual -> plan -> apply -> status.

Shared by ``pycontainers apply`` (one pass, no daemon) and the daemon (a pass whenever
something marked it dirty). Level-triggered: a pass never looks at *what* changed, only
at the whole picture, so a lost or merged event cannot leave it wrong. A source that fails
(a missing directory, an unreachable git remote) falls back to the last good snapshot; with
none, the pass changes nothing rather than pruning what runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Protocol

from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.store import FileLock
from pycontainers.reconciler.apply import Applier, Outcome
from pycontainers.reconciler.desired import DesiredState, load_desired
from pycontainers.reconciler.errors import ReconcilerError, SourceError
from pycontainers.reconciler.images import ImageSupply
from pycontainers.reconciler.layout import EnginePaths, write_atomic
from pycontainers.reconciler.observe import Observed, observe
from pycontainers.reconciler.plan import ActionKind, Plan, plan
from pycontainers.reconciler.snapshot import Snapshot
from pycontainers.reconciler.status import build_status, read_status, write_status

log = logging.getLogger("pycontainers.engine")


class Source(Protocol):
    def describe(self) -> str: ...

    async def read(self, fetch: bool) -> tuple[Snapshot, str | None]:
        """The snapshot to apply, and why it is an old one (a failed fetch), if it is."""
        ...


class DirectorySpecSource:
    def __init__(self, directory: Any) -> None:
        from pycontainers.reconciler.dirsource import DirectorySource

        self.source = DirectorySource(directory)

    def describe(self) -> str:
        return self.source.describe()

    async def read(self, fetch: bool) -> tuple[Snapshot, str | None]:
        return await self.source.snapshot(), None


class FixedSource:
    """A snapshot made once (``apply FILE``)."""

    def __init__(self, snapshot: Snapshot, description: str) -> None:
        self.snapshot = snapshot
        self.description = description

    def describe(self) -> str:
        return self.description

    async def read(self, fetch: bool) -> tuple[Snapshot, str | None]:
        return self.snapshot, None


class GitSpecSource:
    def __init__(self, source: Any) -> None:
        self.source = source  # reconciler.gitsource.GitSource

    def describe(self) -> str:
        return str(self.source.describe())

    async def read(self, fetch: bool) -> tuple[Snapshot, str | None]:
        if not fetch and await self.source.current_commit() is not None:
            return await self.source.snapshot(), None
        result = await self.source.sync()
        error = str(result.fetch_error) if result.fetch_error else None
        return result.snapshot, error


@dataclass(frozen=True)
class Suspension:
    all: bool = False
    names: frozenset[str] = frozenset()

    def to_json(self) -> bytes:
        return json.dumps({"all": self.all, "names": sorted(self.names)}).encode()


def read_suspension(paths: EnginePaths) -> Suspension:
    try:
        doc = json.loads(paths.suspended_file.read_bytes())
        return Suspension(bool(doc.get("all")), frozenset(str(n) for n in doc.get("names", [])))
    except (OSError, ValueError, AttributeError):
        return Suspension()


def write_suspension(paths: EnginePaths, suspension: Suspension) -> None:
    write_atomic(paths.suspended_file, suspension.to_json())


@contextlib.asynccontextmanager
async def engine_lock(paths: EnginePaths) -> AsyncIterator[None]:
    paths.engine_state.mkdir(parents=True, exist_ok=True)
    lock = FileLock(paths.engine_state / "lock")
    if not lock.try_acquire():
        log.info("waiting for another pass (the daemon or an apply) to finish")
        await lock.acquire_async()
    try:
        yield
    finally:
        lock.release()


@dataclass(frozen=True)
class PassResult:
    plan: Plan
    outcomes: tuple[Outcome, ...]
    status: Mapping[str, Any]


class Engine:
    def __init__(
        self,
        paths: EnginePaths,
        applier: Applier,
        images: ImageSupply,
        source: Source,
        *,
        prune: bool = True,
    ) -> None:
        self.paths = paths
        self.applier = applier
        self.images = images
        self.source = source
        self.prune = prune
        self.last_good: DesiredState | None = None
        self.last_snapshot: Snapshot | None = None
        self.digests: dict[str, str] = {}
        self.collected = False
        """Whether a pass has collected garbage (half-written bundles, stale layers)."""

    async def _snapshot(self, fetch: bool) -> tuple[Snapshot | None, str | None]:
        try:
            snapshot, error = await self.source.read(fetch)
        except (SourceError, OSError) as exc:
            error = exc.diagnostics() if isinstance(exc, ReconcilerError) else str(exc)
            log.error("source %s failed: %s", self.source.describe(), error)
            return self.last_snapshot, error
        self.last_snapshot = snapshot
        return snapshot, error

    async def check_updates(self, desired: DesiredState) -> None:
        """Re-resolve tags of ``imagePullPolicy: Always`` images (podman auto-update)."""
        images = {
            c.document.spec.image
            for c in desired.containers.values()
            if c.document.spec.image_pull_policy == "Always"
            and ImageRef.parse(c.document.spec.image).digest is None
        }
        for image in sorted(images):
            try:
                digest = await self.images.remote_digest(image)
            except ReconcilerError as exc:
                log.warning("auto-update: %s", exc)
                continue
            if digest is not None:
                if self.digests.get(image) not in (None, digest):
                    log.info("auto-update: %s now points at %s", image, digest)
                self.digests[image] = digest

    async def reconcile(self, *, fetch: bool = False, check_updates: bool = False) -> PassResult:
        """One pass, holding the engine lock: ``pycontainers apply`` next to a running
        daemon waits instead of collecting the daemon's half-written bundles."""
        async with engine_lock(self.paths):
            return await self._reconcile(fetch, check_updates)

    async def _reconcile(self, fetch: bool, check_updates: bool) -> PassResult:
        snapshot, source_error = await self._snapshot(fetch)
        suspension = read_suspension(self.paths)
        if snapshot is None:
            observed = await observe(self.applier.backend, self.paths, suspension.names)
            empty = Plan("unknown", ())
            return self._finish(
                empty, (), observed, DesiredState("unknown"), source_error, suspension
            )
        desired = load_desired(snapshot, self.last_good)
        self.last_good = desired
        if check_updates:
            await self.check_updates(desired)
        if self.digests:
            desired = desired.with_resolved_digests(self.digests)
        names = suspension.names
        observed = await observe(self.applier.backend, self.paths, names)
        if suspension.all:
            everything = frozenset(desired.containers) | frozenset(observed.actual.containers)
            observed = replace(observed, actual=replace(observed.actual, suspended=everything))
        result = plan(desired, observed.actual)
        if not self.prune:
            kept = tuple(a for a in result.actions if a.kind is not ActionKind.REMOVE)
            result = replace(result, actions=kept)
        outcomes: tuple[Outcome, ...] = ()
        if result.changes:
            outcomes = tuple(await self.applier.apply(result, desired))
            observed = await observe(self.applier.backend, self.paths, observed.actual.suspended)
        elif not self.collected:
            # a first pass that changes nothing still clears what a crash left behind
            await self.applier.collect_garbage(desired, result)
        self.collected = True
        return self._finish(result, outcomes, observed, desired, source_error, suspension)

    def _finish(
        self,
        result: Plan,
        outcomes: tuple[Outcome, ...],
        observed: Observed,
        desired: DesiredState,
        source_error: str | None,
        suspension: Suspension,
    ) -> PassResult:
        status = build_status(
            desired=desired,
            plan=result,
            observed=observed,
            outcomes=outcomes,
            retries=self.applier.retries,
            previous=read_status(self.paths.status_file),
            source=self.source.describe(),
            source_error=source_error,
            suspended_all=suspension.all,
        )
        try:
            write_status(self.paths.status_file, status)
        except OSError as exc:
            log.error("cannot write status %s: %s", self.paths.status_file, exc)
        return PassResult(result, outcomes, MappingProxyType(status))
