"""Helpers for the reconciler tests: build spec YAML, desired and actual states as values."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
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


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class WorkRepo:
    """A real git work tree in a tmp dir, driven with the git binary."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env

    @classmethod
    def init(cls, path: Path, env: dict[str, str], branch: str = "main") -> WorkRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path, env)
        repo.git("init", "--quiet", f"--initial-branch={branch}")
        return repo

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
        )

    def commit(self, files: Mapping[str, bytes | None], message: str = "change") -> str:
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()


def git_test_env(home: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_IDENTITY)
    env["HOME"] = str(home)
    return env
