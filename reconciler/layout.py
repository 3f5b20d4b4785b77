"""Where the engine keeps things on disk, and the record of what it applied to a container.

Beside the content store (``<base>/storage``) and the layer store (``<base>/layers``)::

    <base>/containers/<name>/<bundle-id>/   one bundle: config.json, rootfs/ (mount point),
                                            upper/ + work/ (the container's writable layer),
                                            applied.json (what was applied, for adoption)
    <base>/containers/<name>/.tmp-*         a bundle being written (removed when stale)
    <base>/volumes/<volume>/_data           named volumes: outlive every container
    <base>/engine/suspended.json            what an operator suspended (survives reboots)
    <runroot>/status.json                   the last reconcile's status (``pycontainers status``)

A bundle id is derived from the spec hash and the image digest, so a restarted daemon
finds the bundle of a running unit from the unit's own metadata, and a replace writes a
new bundle next to the old one instead of over the files a running container uses.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycontainers.distribution.layerstore import default_layers_dir

APPLIED = "applied.json"
STARTED = "started"
"""Marker: a unit was started from this bundle (a job that has run and been collected
leaves only this behind, which is how its completion is known after a daemon restart)."""
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class EnginePaths:
    storage: Path
    """The OCI layout of the content store (``--root``)."""
    runroot: Path
    """Volatile run-time state (``--runroot``): status, sync requests."""

    @property
    def base(self) -> Path:
        return self.storage.absolute().parent

    @property
    def layers(self) -> Path:
        return default_layers_dir(self.storage)

    @property
    def containers(self) -> Path:
        return self.base / "containers"

    @property
    def volumes(self) -> Path:
        return self.base / "volumes"

    @property
    def engine_state(self) -> Path:
        return self.base / "engine"

    @property
    def suspended_file(self) -> Path:
        return self.engine_state / "suspended.json"

    @property
    def status_file(self) -> Path:
        return self.runroot / "status.json"

    def container_dir(self, name: str) -> Path:
        return self.containers / name

    def bundle_dir(self, name: str, spec_hash: str, image_digest: str) -> Path:
        return self.container_dir(name) / bundle_id(spec_hash, image_digest)

    def volume_dir(self, volume: str) -> Path:
        return self.volumes / volume / "_data"


def bundle_id(spec_hash: str, image_digest: str) -> str:
    return f"{spec_hash[:16]}-{image_digest.partition(':')[2][:16]}"


@dataclass(frozen=True)
class AppliedRecord:
    """What the engine applied in one bundle; the unit's metadata says which bundle runs."""

    name: str
    spec_hash: str
    image_digest: str
    image: str
    source_file: str
    revision: str
    spec: Mapping[str, Any]
    """The normalised document (defaults left out), for field-level diffs and policies."""

    @property
    def restart_policy(self) -> str:
        spec = self.spec.get("spec", {})
        return str(spec.get("restartPolicy", "Always")) if isinstance(spec, Mapping) else "Always"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "specHash": self.spec_hash,
            "imageDigest": self.image_digest,
            "image": self.image,
            "sourceFile": self.source_file,
            "revision": self.revision,
            "spec": dict(self.spec),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> AppliedRecord:
        return cls(
            name=str(doc["name"]),
            spec_hash=str(doc["specHash"]),
            image_digest=str(doc["imageDigest"]),
            image=str(doc.get("image", "")),
            source_file=str(doc.get("sourceFile", "")),
            revision=str(doc.get("revision", "")),
            spec=dict(doc.get("spec") or {}),
        )


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """temp file + fsync + rename: readers see the old content or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(bundle: Path) -> AppliedRecord | None:
    try:
        return AppliedRecord.from_json(json.loads((bundle / APPLIED).read_bytes()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_started(bundle: Path) -> None:
    marker = bundle / STARTED
    if bundle.is_dir() and not marker.exists():
        marker.touch()


def bundles_of(paths: EnginePaths, name: str, *, started: bool = False) -> list[Path]:
    """Complete bundles of a container (only those a unit ran from: ``started``), newest
    first."""
    directory = paths.container_dir(name)
    try:
        entries = [e for e in directory.iterdir() if not e.name.startswith(".")]
    except OSError:
        return []
    marker = STARTED if started else APPLIED
    complete = [e for e in entries if (e / marker).is_file()]
    return sorted(complete, key=lambda e: (e / marker).stat().st_mtime_ns, reverse=True)


def latest_records(paths: EnginePaths) -> dict[str, AppliedRecord]:
    """The newest record of every container that a unit was started from."""
    found: dict[str, AppliedRecord] = {}
    try:
        names = sorted(e.name for e in paths.containers.iterdir() if e.is_dir())
    except OSError:
        return found
    for name in names:
        for bundle in bundles_of(paths, name, started=True):
            record = read_record(bundle)
            if record is not None:
                found[name] = record
                break
    return found


def temp_bundle_dir(paths: EnginePaths, name: str, final: Path) -> Path:
    parent = paths.container_dir(name)
    parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    tmp = parent / f"{TMP_PREFIX}{final.name}-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o711)
    return tmp


def remove_tree(path: Path) -> None:
    """rmtree that also copes with overlayfs' work/work dir (mode 000) and vanished files."""
    if not path.exists() and not path.is_symlink():
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        for root, dirs, _files in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o700)
        shutil.rmtree(path, ignore_errors=True)
