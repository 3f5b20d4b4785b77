"""An unprivileged user runs a container (`spec --rootless`): root inside, the user outside.

The user is a uid with no passwd entry, entered with setpriv; it has no /etc/subuid
range, so the config maps just its own uid and gid (what `spec --rootless` writes). Its
cgroup access is none here, which the runtime reports once and goes on (as Podman does).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.sandbox import free_uid

pytestmark = pytest.mark.root

RUNTIME = str(Path(sys.executable).parent / "pycontainers-runtime")
PROBE = (
    "id; cat /proc/self/uid_map; hostname; ls /dev | tr '\\n' ' '; echo;"
    " grep CapEff /proc/self/status"
)


class User:
    def __init__(self, uid: int, home: Path) -> None:
        self.uid = uid
        self.home = home
        self.run_dir = home / "run"

    def __call__(self, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = ["PATH=/usr/bin:/bin", f"XDG_RUNTIME_DIR={self.run_dir}", f"HOME={self.home}"]
        return subprocess.run(
            ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
             "env", "-i", *env, *argv],
            capture_output=True, text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL,
        )  # fmt: skip


@pytest.fixture
def user(rootfs_factory: Callable[[Path], Path]) -> Iterator[User]:
    uid = free_uid(4789)
    home = Path(tempfile.mkdtemp(prefix="pyc-rt-rootless-"))
    try:
        home.chmod(0o755)
        rootfs_factory(home / "bundle" / "rootfs")
        (home / "run").mkdir(mode=0o700)
        for dirpath, dirnames, filenames in os.walk(home):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, uid, uid)
        yield User(uid, home)
    finally:
        for runtime in (RUNTIME, "runc"):
            for cid in ("rl-ours", "rl-runc", "rl-detached"):
                User(uid, home)(runtime, "delete", "--force", cid)
        shutil.rmtree(home)


def _rootless_bundle(user: User, edit: Callable[[dict[str, Any]], None]) -> Path:
    bundle = user.home / "bundle"
    done = user(RUNTIME, "spec", "--rootless", "--bundle", str(bundle))
    assert done.returncode == 0, done.stderr
    config = bundle / "config.json"
    cfg = json.loads(config.read_text())
    cfg["process"]["terminal"] = False
    cfg["linux"].pop("seccomp", None)
    edit(cfg)
    config.write_text(json.dumps(cfg))
    return bundle


def test_rootless_run_matches_runc(user: User) -> None:
    bundle = _rootless_bundle(user, lambda c: c["process"].update(args=["sh", "-c", PROBE]))
    mine = user(RUNTIME, "run", "--bundle", str(bundle), "rl-ours")
    theirs = user("runc", "--root", str(user.run_dir / "runc"), "run", "--bundle",
                  str(bundle), "rl-runc")  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs.stdout
    ident, mapping = mine.stdout.split("\n")[:2]
    assert ident == "uid=0 gid=0"
    assert mapping.split() == ["0", str(user.uid), "1"]
    assert "cgroup" in mine.stderr  # the one warning: no cgroup for this user


def test_rootless_container_is_the_user_outside(user: User) -> None:
    bundle = _rootless_bundle(user, lambda c: c["process"].update(args=["sleep", "60"]))
    log = user.home / "detached.log"
    log.touch()
    os.chown(log, user.uid, user.uid)
    done = user("sh", "-c", f"exec {RUNTIME} run --detach --bundle {bundle} rl-detached "
                f">>{log} 2>&1")  # fmt: skip
    assert done.returncode == 0, log.read_text()
    state = json.loads(user(RUNTIME, "state", "rl-detached").stdout)
    assert state["status"] == "running"
    with open(f"/proc/{state['pid']}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == [str(user.uid)] * 4
    assert (user.run_dir / "pycontainers-runtime" / "rl-detached").is_dir()  # XDG state
    inside = user(RUNTIME, "exec", "rl-detached", "sh", "-c", "id -u; cat /proc/1/comm")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.split() == ["0", "sleep"]
    assert user(RUNTIME, "delete", "--force", "rl-detached").returncode == 0
    assert not (user.run_dir / "pycontainers-runtime" / "rl-detached").exists()
