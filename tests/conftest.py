"""Session fixtures shared by every part's tests: systemd, registry, images, leak guard.

Each is real (see the README's testing section): a booted systemd 252, Debian's
docker-registry on 127.0.0.1, images built with umoci and skopeo, and the real kernel.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import leaks
from harness.images import FixtureImages
from harness.images import build as build_images
from harness.registry import Registry
from harness.sandbox import Sandbox, free_uid

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # Children of this session inherit the marker; the leak guard finds stragglers by it.
    os.environ.setdefault(leaks.MARKER, uuid.uuid4().hex)


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools {missing}: run `make test`, which installs them")


@pytest.fixture(scope="session", autouse=True)
def leak_guard() -> Iterator[None]:
    """Fails the session if tests leave mounts, processes, netns or cgroups behind."""
    before = leaks.Snapshot.take()
    yield
    after = leaks.Snapshot.take()
    found = leaks.leaks(before, after, leaks.marked_processes(os.environ[leaks.MARKER]))
    if found:
        pytest.fail("the tests left things behind:\n  " + "\n  ".join(found), pytrace=False)


@pytest.fixture(scope="session")
def sandbox_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host directory the systemd sandbox sees at the same path (read-write)."""
    path = tmp_path_factory.mktemp("sbx-work")
    path.chmod(0o777)
    return path


@pytest.fixture(scope="session")
def systemd(tmp_path_factory: pytest.TempPathFactory, sandbox_workdir: Path) -> Iterator[Sandbox]:
    """A booted throwaway systemd with an unprivileged test user whose user manager runs.

    The checkout and ``sandbox_workdir`` are bound in at their host paths, so tests can
    run the project (its .venv) inside the guest.
    """
    _need("systemd-nspawn", "nsenter", "busctl")
    if os.geteuid() != 0:
        pytest.skip("the systemd sandbox needs root")
    sbx = Sandbox(
        state_dir=tmp_path_factory.mktemp("sbx-state"),
        binds=[str(REPO), str(sandbox_workdir)],
        user_uid=free_uid(),
    )
    sbx.start()
    try:
        yield sbx
    finally:
        sbx.stop()


def _registry(mode: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    _need("docker-registry", "htpasswd")
    reg = Registry(mode=mode, workdir=tmp_path_factory.mktemp(f"registry-{mode}"))
    reg.start()
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Anonymous docker-registry on 127.0.0.1 (session-wide: use distinct repo names)."""
    yield from _registry("plain", tmp_path_factory)


@pytest.fixture(scope="session")
def registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """docker-registry with htpasswd basic auth (``.username``/``.password``)."""
    yield from _registry("basic", tmp_path_factory)


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """docker-registry with bearer-token auth; ``.token_issuer`` is the token server."""
    yield from _registry("token", tmp_path_factory)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> FixtureImages:
    """Fixture images in an OCI layout: busybox, busybox-arm64, multi (index), layered."""
    _need("umoci", "skopeo", "busybox")
    return build_images(tmp_path_factory.mktemp("images"))
