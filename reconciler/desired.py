"""Snapshot -> ``DesiredState``: which containers should run, and which must be held.

Pure. A file is valid or invalid as a whole; an invalid file's containers are *held* (left
as they last were), never pruned. Name-level problems (duplicate names, unknown or cyclic
``dependsOn``) hold only the containers they concern. ``spec_hash`` is the sha256 of the
normalised document's canonical JSON, so a reformatted file hashes the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from pycontainers.distribution.reference import ImageRef
from pycontainers.reconciler.errors import SpecError
from pycontainers.reconciler.loader import LoadedDocument, load_file
from pycontainers.reconciler.snapshot import Snapshot
from pycontainers.reconciler.spec import ContainerDocument

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def normalise(document: ContainerDocument) -> dict[str, Any]:
    """The document as plain JSON data, defaults left out.

    Leaving defaults out keeps hashes stable when a later version adds a field with a
    default: an upgrade alone never replaces containers.
    """
    return document.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def spec_hash(normalised: Mapping[str, Any]) -> str:
    canonical = json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class DesiredContainer:
    """One valid container spec with its identity for planning."""

    name: str
    document: ContainerDocument = field(repr=False)
    normalised: Mapping[str, Any] = field(repr=False, compare=False)
    spec_hash: str
    source_file: str
    image_digest: str | None = None
    """The digest the image must have: pinned in the reference, or resolved for a tag."""

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(self.document.spec.depends_on)


@dataclass(frozen=True)
class Held:
    """A container left exactly as it is, because its spec cannot be trusted right now."""

    name: str
    source_file: str
    reason: str


@dataclass(frozen=True)
class DesiredState:
    revision: str
    containers: Mapping[str, DesiredContainer] = field(default_factory=lambda: _EMPTY)
    held: Mapping[str, Held] = field(default_factory=lambda: _EMPTY)
    errors: tuple[SpecError, ...] = ()
    invalid_files: frozenset[str] = frozenset()
    """Files that are invalid as a whole: containers last seen in them are never pruned."""

    def with_resolved_digests(self, digests: Mapping[str, str]) -> DesiredState:
        """Attach the digests tag references resolve to (the daemon's auto-update)."""
        containers = {
            name: replace(c, image_digest=digests.get(c.document.spec.image, c.image_digest))
            for name, c in self.containers.items()
        }
        return replace(self, containers=MappingProxyType(containers))


def container_from(loaded: LoadedDocument) -> DesiredContainer:
    normalised = normalise(loaded.document)
    pinned = ImageRef.parse(loaded.document.spec.image).digest
    return DesiredContainer(
        name=loaded.document.metadata.name,
        document=loaded.document,
        normalised=normalised,
        spec_hash=spec_hash(normalised),
        source_file=loaded.file,
        image_digest=str(pinned) if pinned is not None else None,
    )


def load_desired(snapshot: Snapshot, last_good: DesiredState | None = None) -> DesiredState:
    """Build the desired state of one snapshot.

    ``last_good`` is the previous result, if any: when a file turns invalid, the
    containers it defined before are held by name even if the broken file no longer
    says which they are.
    """
    errors: list[SpecError] = []
    invalid_files: set[str] = set()
    held: dict[str, Held] = {}
    candidates: dict[str, list[LoadedDocument]] = {}

    for path, problem in sorted(snapshot.file_errors.items()):
        errors.append(SpecError(path, problem))
        invalid_files.add(path)
    for path in sorted(snapshot.files):
        loaded = load_file(path, snapshot.files[path])
        if not loaded.valid:
            errors.extend(loaded.errors)
            invalid_files.add(path)
            for name in sorted(loaded.names):
                held.setdefault(name, Held(name, path, f"{path} is invalid: kept as it last was"))
            continue
        for document in loaded.documents:
            candidates.setdefault(document.document.metadata.name, []).append(document)

    if last_good is not None:
        for name, container in last_good.containers.items():
            if container.source_file in invalid_files and name not in candidates:
                held.setdefault(
                    name,
                    Held(
                        name,
                        container.source_file,
                        f"{container.source_file} is invalid: kept as it last was",
                    ),
                )

    valid: dict[str, LoadedDocument] = {}
    for name, documents in sorted(candidates.items()):
        if len(documents) > 1 or name in held:
            where = [f"{d.file}:{d.locate('metadata', 'name')[0]}" for d in documents]
            if name in held:
                where.append(held[name].source_file)
            for document in documents:
                line, column = document.locate("metadata", "name")
                errors.append(
                    SpecError(
                        document.file,
                        f"duplicate container name {name!r} (defined in {', '.join(where)})",
                        line=line,
                        column=column,
                        field="metadata.name",
                        name=name,
                    )
                )
            held[name] = Held(name, documents[0].file, f"name {name!r} is defined twice")
            continue
        valid[name] = documents[0]

    for name in _dependency_errors(valid, held, errors):
        held[name] = Held(name, valid[name].file, "dependsOn is invalid")
        del valid[name]

    containers = {name: container_from(doc) for name, doc in valid.items()}
    return DesiredState(
        revision=snapshot.revision,
        containers=MappingProxyType(containers),
        held=MappingProxyType(dict(sorted(held.items()))),
        errors=tuple(errors),
        invalid_files=frozenset(invalid_files),
    )


def _dependency_errors(
    valid: Mapping[str, LoadedDocument], held: Mapping[str, Held], errors: list[SpecError]
) -> list[str]:
    """Names whose dependsOn lists an unknown name or takes part in a cycle."""
    bad: list[str] = []

    def report(name: str, index: int, message: str) -> None:
        document = valid[name]
        line, column = document.locate("spec", "dependsOn", index)
        errors.append(
            SpecError(
                document.file,
                message,
                line=line,
                column=column,
                field=f"spec.dependsOn[{index}]",
                name=name,
            )
        )

    for name, document in valid.items():
        for index, dep in enumerate(document.document.spec.depends_on):
            if dep not in valid and dep not in held:
                report(name, index, f"{name} depends on unknown container {dep!r}")
                bad.append(name)
                break
    graph = {
        name: [d for d in doc.document.spec.depends_on if d in valid]
        for name, doc in valid.items()
        if name not in bad
    }
    for cycle in _cycles(graph):
        ring = " -> ".join([*cycle, cycle[0]])
        for name in cycle:
            deps = valid[name].document.spec.depends_on
            index = next(i for i, d in enumerate(deps) if d in cycle)
            report(name, index, f"dependency cycle: {ring}")
            bad.append(name)
    return bad


def _cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = [s for s in graph.get(node, []) if s in graph]
            if child < len(successors):
                work.append((node, child + 1))
                succ = successors[child]
                if succ not in index:
                    work.append((succ, 0))
                elif succ in on_stack:
                    low[node] = min(low[node], index[succ])
                continue
            for succ in successors:
                if succ in on_stack:
                    low[node] = min(low[node], low[succ])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found
