"""Fixtures for the runtime-core tests: a busybox rootfs, bundles, and runtime drivers.

The rootfs is Debian's static busybox plus its applet symlinks; bundles start from the
runtime's own ``spec`` (runc's default config) with ``terminal: false``. ``ours`` drives
pycontainers-runtime and ``runc`` drives Debian's runc, each with a private ``--root``;
both force-delete every container a test created, even when the test fails.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycontainers.runtime import specgen

VENV_BIN = Path(sys.executable).parent
OURS = str(VENV_BIN / "pycontainers-runtime")

pytestmark = pytest.mark.root


def build_rootfs(dest: Path) -> Path:
    (dest / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", dest / "bin" / "busybox")
    applets = subprocess.run(
        ["/bin/busybox", "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = dest / applet  # relative names such as usr/bin/env: never the host's paths
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (dest / d).mkdir(exist_ok=True)
    return dest


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("the runtime tests need root")
    return build_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="session")
def rootfs_factory(busybox_rootfs: Path) -> Callable[[Path], Path]:
    """build_rootfs(dest): a fresh busybox rootfs at ``dest`` (for tests' own places)."""
    return build_rootfs


def base_config(rootfs: Path, args: list[str]) -> dict[str, Any]:
    cfg = specgen.default_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["root"] = {"path": str(rootfs), "readonly": True}
    # `runc spec` writes no seccomp profile: keep the bundles identical to runc's default
    cfg["linux"].pop("seccomp", None)
    return cfg


BundleFactory = Callable[..., Path]


@pytest.fixture
def make_bundle(tmp_path: Path, busybox_rootfs: Path) -> BundleFactory:
    """make_bundle(args, edit=fn(cfg), rootfs=path) -> a bundle directory."""
    count = 0

    def make(
        args: list[str],
        edit: Callable[[dict[str, Any]], None] | None = None,
        rootfs: Path | None = None,
    ) -> Path:
        nonlocal count
        count += 1
        bundle = tmp_path / f"bundle{count}"
        bundle.mkdir()
        cfg = base_config(rootfs or busybox_rootfs, args)
        if edit is not None:
            edit(cfg)
        (bundle / "config.json").write_text(json.dumps(cfg, indent=1))
        return bundle

    return make


@pytest.fixture
def private_rootfs(tmp_path: Path, busybox_rootfs: Path) -> Path:
    """A fresh rootfs a test may change (symlinks planted, files added).

    Built anew, never copied from the shared one: containers without a /dev mount get
    their device nodes in the shared rootfs, and copying /dev/zero or /dev/full as a
    file never ends.
    """
    return build_rootfs(tmp_path / "private-rootfs")


class Runtime:
    """One OCI runtime CLI with its own state root; remembers containers to clean up."""

    def __init__(self, name: str, argv: list[str], root: Path, workdir: Path) -> None:
        self.name = name
        self.argv = argv
        self.root = root
        self.workdir = workdir
        self.ids: list[str] = []

    def new_id(self, prefix: str = "t") -> str:
        cid = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.ids.append(cid)
        return cid

    def __call__(
        self, *args: str, check: bool = False, timeout: float = 30, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(
            [*self.argv, "--root", str(self.root), *args],
            text=True,
            check=check,
            timeout=timeout,
            **kw,
        )

    def run(
        self, bundle: Path, cid: str | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Foreground run: the container's stdout/stderr are captured, its status returned."""
        return self("run", "--bundle", str(bundle), cid or self.new_id(), **kw)

    def create(
        self, bundle: Path, cid: str | None = None, *extra: str
    ) -> tuple[str, subprocess.CompletedProcess[str]]:
        """create with the container's stdio in files (it outlives the create command)."""
        cid = cid or self.new_id()
        out = self.workdir / f"{self.name}-{cid}.out"
        err = self.workdir / f"{self.name}-{cid}.err"
        with out.open("w") as o, err.open("w") as e:
            done = subprocess.run(
                [*self.argv, "--root", str(self.root), "create", "--bundle", str(bundle),
                 *extra, cid],
                stdin=subprocess.DEVNULL, stdout=o, stderr=e, text=True, timeout=30,
            )  # fmt: skip
        done.stdout = out.read_text()
        done.stderr = err.read_text()
        return cid, done

    def output(self, cid: str) -> str:
        return (self.workdir / f"{self.name}-{cid}.out").read_text()

    def state(self, cid: str) -> dict[str, Any]:
        done = self("state", cid, check=True)
        doc: dict[str, Any] = json.loads(done.stdout)
        return doc

    def cleanup(self) -> list[str]:
        problems = []
        for cid in self.ids:
            done = self("delete", "--force", cid)
            if done.returncode != 0 and "does not exist" not in done.stderr + done.stdout:
                problems.append(f"{self.name} delete --force {cid}: {done.stderr.strip()}")
        return problems


def _runtime(name: str, argv: list[str], tmp_path: Path) -> Iterator[Runtime]:
    root = tmp_path / f"{name}-state"
    rt = Runtime(name, argv, root, tmp_path)
    try:
        yield rt
    finally:
        problems = rt.cleanup()
        # dot entries are the runtime's own (.seccomp-cache), not containers
        left = sorted(e for e in os.listdir(root) if not e.startswith(".")) if root.is_dir() else []
        assert not problems, problems
        assert not left, f"{name} left state behind: {left}"


@pytest.fixture
def ours(tmp_path: Path) -> Iterator[Runtime]:
    yield from _runtime("ours", [OURS], tmp_path)


@pytest.fixture
def runc(tmp_path: Path) -> Iterator[Runtime]:
    if shutil.which("runc") is None:
        pytest.fail("runc is missing: run `make test`, which installs it")
    yield from _runtime("runc", ["runc"], tmp_path)


def mounts_under(path: Path) -> list[str]:
    """Host mount points at or below ``path`` (as this process sees them)."""
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def edit_process(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["process"].update(copy.deepcopy(fields))

    return edit
