"""Failures after the setup channel is closed (between `start`'s wake-up and execve, or
an exec'd process's execve) reach the caller: one error line, a non-zero exit, and the
--log file in the chosen format; a runtime killed before the state is saved leaves no
init waiting behind; --debug logs the steps and costs nothing when off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.util import eventually

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .conftest import BundleFactory, Runtime

pytestmark = pytest.mark.root

# ENOEXEC: executable mode bits and a regular file pass the lookup at create time, the
# kernel refuses it only at execve
NOT_A_PROGRAM = b"\x00\x01 not an executable format\n" * 4


@pytest.fixture
def garbage_rootfs(private_rootfs: Path) -> Path:
    prog = private_rootfs / "bin" / "garbage"
    prog.write_bytes(NOT_A_PROGRAM)
    prog.chmod(0o755)
    return private_rootfs


def test_exec_reports_a_failed_execve(
    ours: Runtime, make_bundle: BundleFactory, garbage_rootfs: Path
) -> None:
    cid, done = ours.create(make_bundle(["sleep", "60"], rootfs=garbage_rootfs))
    assert done.returncode == 0, done.stderr
    ours("start", cid, check=True)
    for detach in ([], ["--detach"]):
        done = ours("exec", *detach, cid, "/bin/garbage")
        assert done.returncode == 1, detach
        assert done.stderr == 'pycontainers-runtime: exec: "/bin/garbage": exec format error\n'
    assert ours.state(cid)["status"] == "running"


@pytest.mark.parametrize("verb", [("run",), ("run", "--detach")])
def test_run_reports_a_failed_execve_in_the_log(
    ours: Runtime,
    make_bundle: BundleFactory,
    garbage_rootfs: Path,
    tmp_path: Path,
    verb: tuple[str, ...],
) -> None:
    log = tmp_path / "runtime.log"
    cid = ours.new_id()
    bundle = make_bundle(["/bin/garbage"], rootfs=garbage_rootfs)
    done = ours("--log", str(log), "--log-format", "json", *verb, "--bundle", str(bundle), cid)
    assert done.returncode == 1
    message = 'exec: "/bin/garbage": exec format error'
    for text in (done.stderr, log.read_text()):
        entries = [json.loads(line) for line in text.splitlines()]
        assert [(e["level"], e["msg"]) for e in entries] == [("error", message)]
    assert not (ours.root / cid).exists()


def test_start_reports_a_program_made_unrunnable_after_create(
    ours: Runtime, make_bundle: BundleFactory, private_rootfs: Path
) -> None:
    prog = private_rootfs / "bin" / "prog"
    prog.write_bytes(Path("/bin/busybox").read_bytes())
    prog.chmod(0o755)
    cid, done = ours.create(make_bundle(["/bin/prog", "true"], rootfs=private_rootfs))
    assert done.returncode == 0, done.stderr
    prog.write_bytes(NOT_A_PROGRAM)
    started = ours("start", cid)
    assert started.returncode == 1
    assert started.stderr == 'pycontainers-runtime: exec: "/bin/prog": exec format error\n'


def _processes_marked(mark: str) -> list[int]:
    """Processes whose environment has ``mark`` (a forked runtime child keeps the
    runtime's environment until it execs the container's program)."""
    found = []
    needle = mark.encode() + b"\0"
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_init_exits_when_the_runtime_dies_before_saving_the_state(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """The test knob SIGKILLs create between the init's `ready` and the state's commit."""
    cid = ours.new_id()
    bundle = make_bundle(["sleep", "60"])
    mark = f"PYC_TEST_CREATE={cid}"
    env = dict(os.environ, _PYCONTAINERS_RUNTIME_DIE_BEFORE_COMMIT="1", PYC_TEST_CREATE=cid)
    errors = tmp_path / "stderr"
    try:
        # stdio in files: a pipe would stay open as long as a blocked init holds it
        with errors.open("w") as err:
            done = subprocess.run(
                [*ours.argv, "--root", str(ours.root), "create", "--bundle", str(bundle), cid],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, timeout=30, check=False,
            )  # fmt: skip
        assert done.returncode == -signal.SIGKILL
        eventually(lambda: not _processes_marked(mark), what="the init exited")
        # the init says why, on the stderr it shares with the dead runtime
        assert errors.read_text() == (
            "pycontainers-runtime: the runtime exited before it saved the container's state:"
            " the init gives up\n"
        )
        # what the dead create left is deletable (and the fixture checks nothing is left)
        assert ours.state(cid)["status"] == "creating"
        ours("delete", cid, check=True)
    finally:
        for pid in _processes_marked(mark):
            os.kill(pid, signal.SIGKILL)
    assert not (ours.root / cid).exists()


def test_init_exits_when_the_runtime_dies_during_a_prestart_hook(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """A real hook kills the runtime (its parent) while the init waits for the hooks."""
    cid = ours.new_id()
    mark = f"PYC_TEST_CREATE={cid}"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}
    bundle = make_bundle(["sleep", "60"], lambda cfg: cfg.update(hooks={"prestart": [hook]}))
    try:
        done = subprocess.run(
            [*ours.argv, "--root", str(ours.root), "create", "--bundle", str(bundle), cid],
            env=dict(os.environ, PYC_TEST_CREATE=cid), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == -signal.SIGKILL
        eventually(lambda: not _processes_marked(mark), what="the init exited")
        assert ours.state(cid)["status"] == "creating"
        ours("delete", cid, check=True)
    finally:
        for pid in _processes_marked(mark):
            os.kill(pid, signal.SIGKILL)
    assert not (ours.root / cid).exists()


def test_debug_logs_the_steps_only_when_asked(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    bundle = make_bundle(["true"])
    quiet_log = tmp_path / "quiet.log"
    done = ours("--log", str(quiet_log), "run", "--bundle", str(bundle), ours.new_id())
    assert (done.returncode, done.stderr) == (0, "")
    assert not quiet_log.exists() or quiet_log.read_text() == ""
    log = tmp_path / "debug.log"
    cid = ours.new_id()
    done = ours(
        "--debug", "--log", str(log), "--log-format", "json", "run", "--bundle", str(bundle), cid
    )
    assert (done.returncode, done.stderr) == (0, "")
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries and {e["level"] for e in entries} == {"debug"}
    text = "\n".join(e["msg"] for e in entries)
    for step in ("config", "init pid", "ready", "state saved", "exec", "exited", "deleted"):
        assert step in text, text
    # without --log, the same lines go to stderr
    done = ours("--debug", "run", "--bundle", str(bundle), ours.new_id())
    assert done.returncode == 0
    assert 'level=debug msg="' in done.stderr and "init pid" in done.stderr


def test_without_debug_the_logger_is_not_even_imported(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    bundle = make_bundle(["true"])
    python = [sys.executable, "-X", "importtime", "-m", "pycontainers.runtime"]
    imported = {}
    for debug in ([], ["--debug"]):
        done = subprocess.run(
            [*python, *debug, "--root", str(ours.root), "run", "--bundle", str(bundle),
             ours.new_id()],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        imported[bool(debug)] = "pycontainers.runtime.debuglog" in done.stderr
    assert imported == {False: False, True: True}


def test_a_seccomp_profile_refusing_execve_is_reported(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    """The filter goes in right before execve (noNewPrivileges): its refusal of execve
    itself is the last possible failure, and still reaches `run`'s caller."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["process"]["noNewPrivileges"] = True
        cfg["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["execve", "execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ],
        }

    done = ours.run(make_bundle(["true"], edit))
    assert done.returncode == 1
    assert done.stderr == 'pycontainers-runtime: exec: "true": operation not permitted\n'
