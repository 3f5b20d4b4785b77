"""Helpers for the reconciler tests: build spec YAML, desired and actual states as values."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import yaml

from pycontainers.reconciler.actual import ActualContainer
from pycontainers.reconciler.desired import DesiredState, load_desired
from pycontainers.reconciler.snapshot import Snapshot

IMAGE = "127.0.0.1:5000/busybox:latest"


def document(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("image", IMAGE)
    return {
        "apiVersion": "pycontainers/v1",
        "kind": "Container",
        "metadata": {"name": name},
        "spec": spec,
    }


def spec_yaml(*documents: dict[str, Any]) -> bytes:
    return yaml.safe_dump_all(documents, sort_keys=False).encode()


def snapshot(files: Mapping[str, bytes], errors: Mapping[str, str] | None = None) -> Snapshot:
    errors = errors or {}
    return Snapshot(
        Snapshot.content_revision(files, errors),
        MappingProxyType(dict(files)),
        MappingProxyType(dict(errors)),
    )


def desired_of(
    files: Mapping[str, bytes],
    errors: Mapping[str, str] | None = None,
    last_good: DesiredState | None = None,
) -> DesiredState:
    return load_desired(snapshot(files, errors), last_good)


def running(desired: DesiredState, name: str, **overrides: Any) -> ActualContainer:
    """The actual container that applying ``desired``'s spec for ``name`` would give."""
    want = desired.containers[name]
    fields: dict[str, Any] = {
        "name": name,
        "applied_hash": want.spec_hash,
        "image_digest": want.image_digest,
        "source_file": want.source_file,
        "applied_spec": want.normalised,
    }
    fields.update(overrides)
    return ActualContainer(**fields)
