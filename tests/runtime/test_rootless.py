"""An unprivileged user runs a container (`spec --rootless`): root inside, the user outside.

The user is a uid with no passwd entry, entered with setpriv; it has no /etc/subuid
range, so the config maps just its own uid and gid (what `spec --rootless` writes). Its
cgroup access is none here, which the runtime reports once and goes on (as Podman does).
For ranges, the user gets a passwd entry and /etc/subuid, /etc/subgid lines in private
copies bound over the host's files in a mount namespace of its own (the setuid
newuidmap/newgidmap read them there), so the host's /etc is never touched.
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

    @property
    def subid_start(self) -> int:
        return 100000 + self.uid * 65536  # the sandbox's formula: clear of any real range

    def __call__(
        self, *argv: str, cwd: Path | None = None, subids: bool = False
    ) -> subprocess.CompletedProcess[str]:
        env = ["PATH=/usr/bin:/bin", f"XDG_RUNTIME_DIR={self.run_dir}", f"HOME={self.home}"]
        command = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                   "env", "-i", *env, *argv]  # fmt: skip
        if subids:
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                       self._bind_subids() + ' exec "$@"', "sh", *command]  # fmt: skip
        return subprocess.run(
            command, capture_output=True, text=True, timeout=60, cwd=cwd,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def _bind_subids(self) -> str:
        etc = self.home / "etc"
        etc.mkdir(exist_ok=True)
        name = f"pyc-rl-{self.uid}"
        (etc / "passwd").write_text(
            Path("/etc/passwd").read_text() + f"{name}:x:{self.uid}:{self.uid}::/:/bin/sh\n"
        )
        for f in ("subuid", "subgid"):
            (etc / f).write_text(f"{name}:{self.subid_start}:65536\n")
        return "".join(f"mount --bind {etc / f} /etc/{f};" for f in ("passwd", "subuid", "subgid"))


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
            for cid in ("rl-ours", "rl-runc", "rl-detached", "rl-range", "rl-overlay"):
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


def test_a_subordinate_range_is_mapped_through_newuidmap(user: User) -> None:
    """Beyond its own id the user may map only its /etc/subuid range, which takes the
    setuid newuidmap/newgidmap: container uid 1000 is a subordinate id on the host."""

    def ranges(cfg: dict[str, Any]) -> None:
        maps = [{"containerID": 0, "hostID": user.uid, "size": 1},
                {"containerID": 1, "hostID": user.subid_start, "size": 65536}]  # fmt: skip
        cfg["linux"]["uidMappings"] = cfg["linux"]["gidMappings"] = maps
        cfg["root"]["readonly"] = False
        for caps in cfg["process"]["capabilities"].values():
            caps.append("CAP_CHOWN")
        cfg["process"]["args"] = [
            "sh", "-c", "id -u; cat /proc/self/uid_map; touch /tmp/f; chown 1000:1002 /tmp/f",
        ]  # fmt: skip

    bundle = _rootless_bundle(user, ranges)
    done = user(RUNTIME, "run", "--bundle", str(bundle), "rl-range", subids=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "0"
    assert [line.split() for line in lines[1:]] == [
        ["0", str(user.uid), "1"], ["1", str(user.subid_start), "65536"],
    ]  # fmt: skip
    made = (bundle / "rootfs" / "tmp" / "f").stat()
    assert (made.st_uid, made.st_gid) == (user.subid_start + 999, user.subid_start + 1001)
    # exec as a container uid of the range: a subordinate uid on the host
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["args"] = ["sleep", "60"]
    (bundle / "config.json").write_text(json.dumps(cfg))
    log = user.home / "range.log"
    started = user("sh", "-c", f"exec {RUNTIME} run --detach --bundle {bundle} rl-range"
                   f" >>{log} 2>&1", subids=True)  # fmt: skip
    assert started.returncode == 0, log.read_text() if log.exists() else started.stderr
    # (the detached process keeps its stdio: a file, not the pipes run() would wait on)
    inside = user("sh", "-c", f"exec {RUNTIME} exec --user 1000:1000 --detach --pid-file"
                  f" {user.home / 'exec.pid'} rl-range sleep 30 >>{log} 2>&1")  # fmt: skip
    assert inside.returncode == 0, log.read_text()
    with open(f"/proc/{(user.home / 'exec.pid').read_text()}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == [str(user.subid_start + 999)] * 4
    assert user(RUNTIME, "delete", "--force", "rl-range").returncode == 0
    # without the entries, newuidmap refuses and the error says where to look
    refused = user(RUNTIME, "run", "--bundle", str(bundle), "rl-range")
    assert refused.returncode != 0
    assert "newuidmap" in refused.stderr and "/etc/subuid" in refused.stderr


def test_overlay_rootfs_reads_user_xattr_markers(user: User) -> None:
    """The engine's overlay rootfs, mounted by the user in its user namespace: with
    ``userxattr`` the layer's opaque marker (``user.overlay.opaque``, what the rootless
    layer store writes) hides the lower layer's directory; writes land in the upper dir
    as the user's files."""
    layers = user.home / "layers"
    lower, top, upper, work, mountpoint = (layers / n for n in ("l1", "l2", "up", "work", "mnt"))
    shutil.move(user.home / "bundle" / "rootfs", lower)
    for d in (lower / "d", top / "d", upper, work, mountpoint):
        d.mkdir(parents=True)
    (lower / "d" / "a").touch()
    (top / "d" / "b").touch()
    os.setxattr(top / "d", "user.overlay.opaque", b"y")
    for dirpath, dirnames, filenames in os.walk(layers):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, user.uid, user.uid)

    def overlay(cfg: dict[str, Any]) -> None:
        cfg["root"] = {"path": str(mountpoint), "readonly": False}
        cfg["annotations"] = {
            "org.pycontainers.rootfs.overlay": f"lowerdir={top}:{lower},upperdir={upper},"
            f"workdir={work}"
        }
        cfg["process"]["args"] = ["sh", "-c", "ls /d; echo x > /written"]

    bundle = _rootless_bundle(user, overlay)
    done = user(RUNTIME, "run", "--bundle", str(bundle), "rl-overlay")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["b"]
    assert (upper / "written").stat().st_uid == user.uid
    assert not os.listdir(mountpoint)  # the overlay lived in the container's namespace only


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("user", {"uid": 1000, "gid": 1000}, "process.user: the uid or gid is not mapped"),
        ("oomScoreAdj", -500, "process.oomScoreAdj -500 is below the current score"),
        ("rlimits", [{"type": "RLIMIT_NOFILE", "hard": 10**7, "soft": 1024}], "process.rlimits"),
    ],
)
def test_what_a_user_cannot_do_is_a_clear_error(
    user: User, field: str, value: object, message: str
) -> None:
    bundle = _rootless_bundle(user, lambda c: c["process"].update({field: value, "args": ["true"]}))
    done = user(RUNTIME, "run", "--bundle", str(bundle), "rl-ours")
    assert done.returncode != 0
    assert message in done.stderr.splitlines()[-1]
    assert not (user.run_dir / "pycontainers-runtime" / "rl-ours").exists()


def test_spec_rootless_runs_out_of_the_box_with_its_seccomp_profile(user: User) -> None:
    """Only terminal is switched off (no console socket here); the default seccomp profile
    loads under the user's no_new_privs."""
    bundle = user.home / "bundle"
    assert user(RUNTIME, "spec", "--rootless", "--bundle", str(bundle)).returncode == 0
    cfg = json.loads((bundle / "config.json").read_text())
    assert cfg["linux"]["seccomp"]["defaultAction"]
    cfg["process"].update(
        terminal=False, args=["sh", "-c", "id -u; grep Seccomp: /proc/self/status"]
    )
    (bundle / "config.json").write_text(json.dumps(cfg))
    done = user(RUNTIME, "run", "--bundle", str(bundle), "rl-ours")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "0\nSeccomp:\t2\n"
