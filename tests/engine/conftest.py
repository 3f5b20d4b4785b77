"""Fixtures for the engine's end-to-end tests (helpers in ``engine_testkit``)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from engine_testkit import IMAGE, PYC, REGISTRY_PORT, REPO, EngineEnv

from harness.sandbox import Sandbox


@pytest.fixture(scope="session")
def engine_session(systemd: Sandbox, sandbox_workdir: Path) -> Iterator[EngineEnv]:
    """Image built on the host, registry started in the guest, image pushed (once)."""
    work = sandbox_workdir / "engine"
    work.mkdir()
    work.chmod(0o755)
    subprocess.run(
        ["bash", str(REPO / "packaging/demo/build-busybox.sh"), str(work / "oci")],
        check=True,
        capture_output=True,
    )
    registry = work / "registry"
    systemd.exec(
        "bash", str(REPO / "packaging/demo/registry.sh"), "start", str(registry), str(REGISTRY_PORT)
    )
    env = EngineEnv(systemd, work)
    systemd.exec(
        PYC, "--root", str(env.root), "image", "copy", "-q", f"oci:{work / 'oci'}:busybox",
        f"docker://{IMAGE}", timeout=120,
    )  # fmt: skip
    try:
        yield env
    finally:
        env.cleanup()
        systemd.exec(
            "bash",
            str(REPO / "packaging/demo/registry.sh"),
            "stop",
            str(registry),
            str(REGISTRY_PORT),
            check=False,
        )


@pytest.fixture
def engine(engine_session: EngineEnv) -> Iterator[EngineEnv]:
    engine_session.cleanup()
    yield engine_session
    engine_session.cleanup()


@pytest.fixture
def spec_dir(engine: EngineEnv) -> Path:
    path = engine.work / f"specs-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    path.chmod(0o755)
    return path


@pytest.fixture
def write_spec() -> Callable[..., Path]:
    """Write a file atomically (rename), as editors and git checkouts do."""

    def write(path: Path, text: str) -> Path:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
        tmp.write_text(text)
        tmp.rename(path)
        return path

    return write
