"""Fixtures for the registry/store tests: a fresh store per test, connect options, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pycontainers.distribution.docker_transport import ConnectOptions
from pycontainers.distribution.registries_conf import RegistriesConf
from pycontainers.distribution.registry import RetryPolicy

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def connect(tmp_path: Path) -> ConnectOptions:
    """No user auth files, no host registries.conf, quick retries."""
    return ConnectOptions(
        authfile=tmp_path / "no-auth.json",
        registries=RegistriesConf(),
        retry=RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.5),
    )


@pytest.fixture
def repo_name() -> str:
    """A repository name no other test uses (the session registry is shared)."""
    return f"t/{uuid.uuid4().hex[:10]}"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    env["CONTAINERS_REGISTRIES_CONF"] = str(tmp_path / "registries.conf")
    env["HOME"] = str(tmp_path / "home")
    env.pop("XDG_RUNTIME_DIR", None)
    yield env


class Cli:
    """Runs ``pycontainers --root STORE ...`` as a subprocess, as a user would."""

    def __init__(self, store_root: Path, env: dict[str, str]) -> None:
        self.store_root = store_root
        self.env = env

    def __call__(self, *args: str, input: str | None = None) -> CliResult:
        cmd = [str(PYTHON), "-m", "pycontainers.reconciler.cli", "--root", str(self.store_root)]
        proc = subprocess.run(
            [*cmd, *args],
            capture_output=True,
            text=True,
            env=self.env,
            input=input,
            timeout=120,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def run_cli(store_root: Path, cli_env: dict[str, str]) -> Cli:
    return Cli(store_root, cli_env)
