"""create -> start -> kill -> delete, state, run, list: the runtime-spec lifecycle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from harness.util import eventually

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .conftest import BundleFactory, Runtime

pytestmark = pytest.mark.root


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_create_leaves_init_waiting_then_start_runs_it(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    bundle = make_bundle(["sh", "-c", "echo started; sleep 30"])
    pid_file = tmp_path / "pid"
    cid, done = ours.create(bundle, None, "--pid-file", str(pid_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # create prints nothing; the container has not run yet
    state = ours.state(cid)
    assert state["status"] == "created"
    assert state["pid"] == int(pid_file.read_text())
    assert _alive(state["pid"])
    assert state["bundle"] == str(bundle)
    assert ours.output(cid) == ""

    assert ours("start", cid).returncode == 0
    eventually(lambda: ours.output(cid) == "started\n", what="container output")
    assert ours.state(cid)["status"] == "running"

    again = ours("start", cid)
    assert again.returncode != 0
    assert "running" in again.stderr

    busy = ours("delete", cid)
    assert busy.returncode != 0 and "--force" in busy.stderr

    # TERM has no handler in the PID namespace's init: the kernel drops it (pid_namespaces(7))
    assert ours("kill", cid, "TERM").returncode == 0
    assert ours("kill", cid, "KILL").returncode == 0
    eventually(lambda: ours.state(cid)["status"] == "stopped", what="stopped")
    assert ours.state(cid)["pid"] == 0
    assert ours("delete", cid).returncode == 0
    assert not pid_file.exists()  # delete removes what create made, the pid file too
    gone = ours("state", cid)
    assert gone.returncode != 0
    assert "does not exist" in gone.stderr


def test_state_of_unknown_container_is_a_clear_error(ours: Runtime) -> None:
    done = ours("state", "nope")
    assert done.returncode == 1
    assert "container 'nope' does not exist" in done.stderr


def test_run_returns_the_exit_status(ours: Runtime, make_bundle: BundleFactory) -> None:
    done = ours.run(make_bundle(["sh", "-c", "echo out; echo err >&2; exit 3"]))
    assert done.returncode == 3
    assert done.stdout == "out\n"
    assert done.stderr == "err\n"


def _foreground(ours: Runtime, bundle: Path, cid: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ours.argv, "--root", str(ours.root), "run", "--bundle", str(bundle), cid],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def test_foreground_run_forwards_signals_to_the_container(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    bundle = make_bundle(["sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"])
    cid = ours.new_id()
    proc = _foreground(ours, bundle, cid)
    try:
        eventually(lambda: "sleep" in _children_cmdlines(ours.state(cid)["pid"]), what="trap")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 7


def test_run_reports_death_by_signal_as_128_plus_signal(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    cid = ours.new_id()
    proc = _foreground(ours, make_bundle(["sleep", "60"]), cid)
    try:
        eventually(lambda: ours.state(cid)["status"] == "running", what="running")
        assert ours("kill", cid, "KILL").returncode == 0
        proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + signal.SIGKILL


def test_run_removes_the_container_afterwards(ours: Runtime, make_bundle: BundleFactory) -> None:
    cid = ours.new_id()
    assert ours.run(make_bundle(["true"]), cid).returncode == 0
    assert ours("state", cid).returncode != 0


def test_kill_accepts_runc_signal_spellings(ours: Runtime, make_bundle: BundleFactory) -> None:
    bundle = make_bundle(["sh", "-c", "trap 'echo got-usr1' USR1; while :; do sleep 0.05; done"])
    cid, _ = ours.create(bundle)
    assert ours("start", cid).returncode == 0
    eventually(lambda: "sleep" in _children_cmdlines(ours.state(cid)["pid"]), what="trap set")
    assert ours("kill", cid, "SIGUSR1").returncode == 0
    eventually(lambda: "got-usr1" in ours.output(cid), what="USR1 handled")
    assert ours("kill", cid, "9").returncode == 0
    eventually(lambda: ours.state(cid)["status"] == "stopped", what="stopped")
    bad = ours("kill", cid, "KILL")
    assert bad.returncode != 0 and "stopped" in bad.stderr
    assert ours("delete", cid).returncode == 0


def _children_cmdlines(pid: int) -> str:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == pid:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        out.append(f.read().replace(b"\0", b" ").decode())
            except (OSError, ValueError):
                continue
    return " ".join(out)


def test_delete_of_created_container_kills_its_init(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    cid, _ = ours.create(make_bundle(["true"]))
    pid = ours.state(cid)["pid"]
    assert ours("delete", cid).returncode == 0
    eventually(lambda: not _alive(pid), what="init killed")


def test_delete_force_stops_a_running_container(ours: Runtime, make_bundle: BundleFactory) -> None:
    cid, _ = ours.create(make_bundle(["sleep", "60"]))
    ours("start", cid, check=True)
    pid = ours.state(cid)["pid"]
    assert ours("delete", "--force", cid).returncode == 0
    assert not _alive(pid)
    assert ours("state", cid).returncode != 0


def test_list_shows_containers_as_json_and_table(ours: Runtime, make_bundle: BundleFactory) -> None:
    cid, _ = ours.create(make_bundle(["true"]))
    listed = json.loads(ours("list", "--format", "json", check=True).stdout)
    assert [(c["id"], c["status"]) for c in listed] == [(cid, "created")]
    table = ours("list", check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "PID", "STATUS"]
    assert table[1].split()[:3] == [cid, str(listed[0]["pid"]), "created"]


def test_ps_lists_the_container_processes(ours: Runtime, make_bundle: BundleFactory) -> None:
    cid, _ = ours.create(make_bundle(["sh", "-c", "sleep 60 & wait"]))
    ours("start", cid, check=True)
    init = ours.state(cid)["pid"]
    pids = eventually(
        lambda: (p := json.loads(ours("ps", "--format", "json", cid).stdout)) and len(p) == 2 and p,
        what="two processes",
    )
    assert init in pids


def test_run_detach_returns_while_the_container_runs(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    cid = ours.new_id()
    out = tmp_path / "detached.out"
    with out.open("w") as f:
        done = ours("run", "--detach", "--bundle", str(make_bundle(["sleep", "60"])), cid,
                    stdout=f, capture_output=False, stderr=f)  # fmt: skip
    assert done.returncode == 0, out.read_text()
    assert ours.state(cid)["status"] == "running"


def test_no_pivot_moves_the_rootfs_onto_slash(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    bundle = make_bundle(["sh", "-c", "ls /; cat /proc/self/mountinfo | wc -l"])
    outputs = []
    for rt in (ours, runc):
        cid = rt.new_id()
        done = rt("run", "--no-pivot", "--bundle", str(bundle), cid)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.split())
    assert outputs[0][:-1] == outputs[1][:-1]
    assert "bin" in outputs[0]


def test_time_namespace(ours: Runtime, make_bundle: BundleFactory) -> None:
    def edit(cfg: dict[str, object]) -> None:
        cfg["linux"]["namespaces"].append({"type": "time"})  # type: ignore[index]

    done = ours.run(make_bundle(["stat", "-L", "-c", "%i", "/proc/self/ns/time"], edit))
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) != os.stat("/proc/self/ns/time").st_ino


def test_kill_all_signals_every_process_of_the_container(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    script = "trap 'echo usr1' USR1; sleep 60 & sleep 61 & while :; do wait; done"
    cid, _ = ours.create(make_bundle(["sh", "-c", script]))
    ours("start", cid, check=True)
    pids = eventually(
        lambda: (p := json.loads(ours("ps", "--format", "json", cid).stdout)) and len(p) == 3 and p,
        what="three processes",
    )
    assert ours("kill", "--all", cid, "USR1").returncode == 0
    init = ours.state(cid)["pid"]
    eventually(lambda: all(not _alive(p) for p in pids if p != init), what="sleeps killed")
    assert _alive(init)  # the init handles USR1; its children died of it


def test_a_second_create_with_the_same_id_is_refused(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    bundle = make_bundle(["true"])
    cid, first = ours.create(bundle)
    assert first.returncode == 0
    _, second = ours.create(bundle, cid)
    assert second.returncode == 1
    assert f"container '{cid}' already exists" in second.stderr
    assert ours.state(cid)["status"] == "created"  # the first one is untouched


def test_exec_detach_leaves_the_process_running(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    cid, _ = ours.create(make_bundle(["sleep", "60"]))
    ours("start", cid, check=True)
    pid_file = tmp_path / "exec.pid"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "capture_output": False}
    done = ours("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "30", **quiet)
    assert done.returncode == 0
    pid = int(pid_file.read_text())
    assert _alive(pid)
    assert pid in json.loads(ours("ps", "--format", "json", cid).stdout)


def test_delete_removes_nested_cgroups_the_container_made(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    cid, _ = ours.create(make_bundle(["true"]))
    with open(f"/proc/{ours.state(cid)['pid']}/cgroup") as f:
        pids_path = next(line.split(":", 2)[2].strip() for line in f if ":pids:" in line)
    own = Path("/sys/fs/cgroup/pids") / pids_path.lstrip("/")
    (own / "nested").mkdir()  # as a container managing its own sub-cgroups would
    ours("start", cid, check=True)
    eventually(lambda: ours.state(cid)["status"] == "stopped", what="stopped")
    assert ours("delete", cid).returncode == 0
    assert not own.exists()


def test_a_create_that_died_half_way_can_be_deleted(ours: Runtime) -> None:
    """A state directory without state.json (create was killed mid-way) shows as
    `creating` and `delete` clears it."""
    cid = ours.new_id()
    (ours.root / cid).mkdir(parents=True)
    assert ours.state(cid)["status"] == "creating"
    assert ours("delete", cid).returncode == 0
    assert not (ours.root / cid).exists()


def test_the_waiting_init_is_already_in_the_containers_cgroups(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    """The runtime moves the init while it sets up its rootfs; create returns only once
    it is in every hierarchy, and the runtime itself stayed where it was."""
    cid, _ = ours.create(make_bundle(["true"]))
    with open(f"/proc/{ours.state(cid)['pid']}/cgroup") as f:
        lines = f.read().splitlines()
    assert lines and all(line.endswith(f"/{cid}") for line in lines), lines
    with open("/proc/self/cgroup") as f:
        assert cid not in f.read()
