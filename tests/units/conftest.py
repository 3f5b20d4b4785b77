"""Fixtures for the units tests: a bus target into the systemd sandbox, bundles, clean-up.

Until the built-in runtime can run a bundle, ``stand_in_runtime.py`` plays its part in the
unit: same command line, same MAINPID/READY hand-off, no namespaces (see its docstring).
The busybox end-to-end tests use the real ``pycontainers-runtime``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.sandbox import Sandbox
from pycontainers.units.bus import BusTarget
from pycontainers.units.model import RestartPolicy, RuntimeCommand, UnitSpec, default_runtime_path

HERE = Path(__file__).resolve().parent
STAND_IN = str(HERE / "stand_in_runtime.py")
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def system_bus(systemd: Sandbox) -> BusTarget:
    return BusTarget("system", systemd.bus_address, "the test sandbox's bus")


def _stop_all(systemd: Sandbox, user: bool) -> None:
    systemd.systemctl("stop", "pycontainers-*.service", user=user)
    systemd.systemctl("reset-failed", "pycontainers-*.service", user=user)


@pytest.fixture
def clean_units(systemd: Sandbox) -> Iterator[None]:
    """Every test leaves no pycontainers unit behind, in the system or the user manager."""
    yield
    _stop_all(systemd, user=False)
    _stop_all(systemd, user=True)


@pytest.fixture
def name() -> str:
    """A container name unique to the test (units of one session share one manager)."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_bundle(sandbox_workdir: Path) -> Callable[..., str]:
    """A bundle dir visible inside the guest whose config.json runs ``args``."""

    def make(*args: str) -> str:
        bundle = sandbox_workdir / f"bundle-{uuid.uuid4().hex[:8]}"
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps({"process": {"args": list(args)}}))
        os.chmod(bundle, 0o755)
        return str(bundle)

    return make


@pytest.fixture
def make_spec(make_bundle: Callable[..., str]) -> Callable[..., UnitSpec]:
    """A UnitSpec for the stand-in runtime running ``args`` (default: a long sleep)."""

    def make(container: str, *args: str, **overrides: Any) -> UnitSpec:
        spec = UnitSpec(
            container=container,
            bundle=make_bundle(*(args or ("/bin/sleep", "600"))),
            spec_hash="h-" + container,
            image_digest=DIGEST,
            runtime=RuntimeCommand(path=STAND_IN),
            restart=RestartPolicy("no"),
            stop_timeout_sec=5,
        )
        return replace(spec, **overrides)

    return make


class Guest:
    """Reading the guest's view: its processes by cgroup, and its journal."""

    def __init__(self, systemd: Sandbox) -> None:
        self.systemd = systemd

    def processes(self, cgroup: str) -> dict[int, str]:
        """pid -> comm of every process in a cgroup subtree (name=systemd hierarchy)."""
        script = (
            f'for f in $(find /sys/fs/cgroup/systemd{cgroup} -name cgroup.procs); do cat "$f"; done'
        )
        procs = {}
        for pid in self.systemd.exec("sh", "-c", script).stdout.split():
            comm = self.systemd.exec("cat", f"/proc/{pid}/comm", check=False).stdout.strip()
            procs[int(pid)] = comm
        return procs

    def journal(self, *match: str) -> str:
        return self.systemd.exec("journalctl", "--no-pager", "-o", "cat", *match).stdout

    def comm(self, pid: int) -> str:
        return self.systemd.exec("cat", f"/proc/{pid}/comm").stdout.strip()


@pytest.fixture
def guest(systemd: Sandbox) -> Guest:
    return Guest(systemd)


def build_rootfs(dest: Path) -> Path:
    (dest / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", dest / "bin" / "busybox")
    applets = subprocess.run(
        ["/bin/busybox", "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = dest / applet
        if link.name != "busybox" and not (link.exists() or link.is_symlink()):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (dest / d).mkdir(exist_ok=True)
    return dest


@pytest.fixture(scope="session")
def busybox_rootfs(sandbox_workdir: Path) -> Path:
    if not os.access(default_runtime_path(), os.X_OK):
        pytest.skip(f"{default_runtime_path()} is not installed")
    return build_rootfs(sandbox_workdir / "busybox-rootfs")


@pytest.fixture
def busybox_bundle(sandbox_workdir: Path, busybox_rootfs: Path) -> Callable[..., str]:
    """A busybox bundle running ``sh -c script``, config.json from ``runc spec``.

    ``rootless_uid``: ``runc spec --rootless`` (a user namespace mapping root to that uid).
    """

    def make(script: str, rootless_uid: int | None = None) -> str:
        bundle = sandbox_workdir / f"bb-{uuid.uuid4().hex[:8]}"
        bundle.mkdir()
        rootless = [] if rootless_uid is None else ["--rootless"]
        subprocess.run(["runc", "spec", *rootless, "--bundle", str(bundle)], check=True)
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["terminal"] = False
        config["process"]["args"] = ["sh", "-c", script]
        config["root"] = {"path": str(busybox_rootfs), "readonly": True}
        if rootless_uid is not None:
            mapping = [{"containerID": 0, "hostID": rootless_uid, "size": 1}]
            config["linux"]["uidMappings"] = mapping
            config["linux"]["gidMappings"] = mapping
        (bundle / "config.json").write_text(json.dumps(config))
        bundle.chmod(0o755)
        (bundle / "config.json").chmod(0o644)
        return str(bundle)

    return make
