"""Cgroup limits on the real kernel, as root: OOM kill, fork bomb, CPU files, kill, destroy.

This host is hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified), so the limits are
tested on v1; the cgroup2 paths (leaf move, controller enabling, cgroup.kill/freeze,
delegation) are tested on the unified mount, whose only controller is hugetlb. Processes run
under a "driver" child that is a child subreaper: everything forked in a test is reaped
there, and pytest's own children are never touched.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycontainers.runtime import cgroup_devices, cgroups
from pycontainers.runtime.cgroups import UNIFIED, CgroupLimitError, CgroupManager, manager_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .conftest import BundleFactory, Runtime

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root"),
]

PR_SET_CHILD_SUBREAPER = 36
UNIFIED_MOUNT = "/sys/fs/cgroup/unified"


def _subreaper() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _reap_all() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def in_driver(scenario: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``scenario`` in a forked subreaper; return its result (or raise its traceback)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(r)
            _subreaper()
            try:
                result: dict[str, Any] = {"ok": scenario()}
            except BaseException:
                result = {"error": traceback.format_exc()}
            _reap_all()
            os.write(w, json.dumps(result).encode())
        except BaseException:
            code = 70
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data or b'{"error": "driver died"}')
    if "error" in result:
        pytest.fail("scenario failed in the driver:\n" + result["error"])
    return dict(result["ok"])


def spawn_in(manager: CgroupManager, body: Callable[[], int]) -> int:
    """Fork a process that joins the cgroup and runs ``body``; return its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 70
        try:
            manager.add_pid(os.getpid())
            code = body()
        finally:
            os._exit(code)
    return pid


@pytest.fixture
def container() -> Iterator[CgroupManager]:
    """A fresh container cgroup below the test's own cgroups; removed even on failure."""
    name = f"pyc-test-{uuid.uuid4().hex[:8]}"
    manager = manager_for(name, name, rootless=False)
    manager.create()
    try:
        yield manager
    finally:
        manager.destroy()
        assert [d for d in manager.paths().values() if os.path.exists(d)] == []


def read(directory: str, name: str) -> str:
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


def test_one_directory_per_writable_hierarchy(container: CgroupManager) -> None:
    paths = container.paths()
    assert {"memory", "pids", "cpu", UNIFIED} <= set(paths)
    assert all(os.path.isdir(d) for d in paths.values())
    rebuilt = CgroupManager.from_paths(json.loads(json.dumps(paths)))
    assert rebuilt.paths() == paths


def test_memory_limit_oom_kills_a_process_allocating_past_it(container: CgroupManager) -> None:
    limit = 32 << 20
    container.apply({"memory": {"limit": limit, "swap": limit}})
    assert read(container.paths()["memory"], "memory.limit_in_bytes") == str(limit)

    def scenario() -> dict[str, Any]:
        def hog() -> int:
            data = b"x" * (256 << 20)  # touches every page
            return len(data) & 1

        pid = spawn_in(container, hog)
        _, status = os.waitpid(pid, 0)
        return {
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "oom_kills": container.oom_kill_count(),
        }

    result = in_driver(scenario)
    assert result["signal"] == signal.SIGKILL
    assert result["oom_kills"] >= 1


def test_pids_limit_stops_a_fork_bomb(container: CgroupManager) -> None:
    container.apply({"pids": {"limit": 8}})
    assert read(container.paths()["pids"], "pids.max") == "8"

    def scenario() -> dict[str, Any]:
        r, w = os.pipe()

        def bomb() -> int:
            forked = refused = 0
            for _ in range(64):  # bounded: a real bomb would not stop
                try:
                    pid = os.fork()
                except BlockingIOError:
                    refused += 1
                    continue
                if pid == 0:
                    signal.pause()
                    os._exit(0)
                forked += 1
            os.write(w, json.dumps([forked, refused]).encode())
            signal.pause()
            return 0

        spawn_in(container, bomb)
        os.close(w)
        forked, refused = json.loads(os.read(r, 100))
        inside = len(container.pids())
        container.kill_all(signal.SIGKILL)
        _reap_all()
        return {"forked": forked, "refused": refused, "inside": inside}

    result = in_driver(scenario)
    assert result["forked"] == 7  # the bomb itself is the 8th task
    assert result["refused"] == 64 - 7
    assert result["inside"] == 8
    assert container.pids() == []


def test_cpu_quota_period_shares_and_cpuset_are_in_the_files(container: CgroupManager) -> None:
    container.apply(
        {"cpu": {"shares": 512, "quota": 25000, "period": 50000, "cpus": "0", "mems": "0"}}
    )
    cpu = container.paths()["cpu"]
    assert read(cpu, "cpu.cfs_quota_us") == "25000"
    assert read(cpu, "cpu.cfs_period_us") == "50000"
    assert read(cpu, "cpu.shares") == "512"
    cpuset = container.paths()["cpuset"]
    assert read(cpuset, "cpuset.cpus") == "0"
    assert read(cpuset, "cpuset.mems") == "0"


def test_kill_all_reaches_every_process_and_destroy_removes_the_dirs(
    container: CgroupManager,
) -> None:
    def scenario() -> dict[str, Any]:
        r, w = os.pipe()

        def family() -> int:
            for _ in range(3):
                if os.fork() == 0:
                    signal.pause()
                    os._exit(0)
            os.write(w, b"ready")
            signal.pause()
            return 0

        spawn_in(container, family)
        os.close(w)
        os.read(r, 5)
        before = len(container.pids())
        frozen = container.freeze()
        events = read(container.paths()[UNIFIED], "cgroup.events")
        container.thaw()
        container.kill_all(signal.SIGKILL)
        _reap_all()
        return {"before": before, "after": container.pids(), "frozen": frozen, "events": events}

    result = in_driver(scenario)
    assert result["before"] == 4
    assert result["frozen"] is True and "frozen 1" in result["events"]
    assert result["after"] == []
    paths = container.paths()
    container.destroy()
    assert [d for d in paths.values() if os.path.exists(d)] == []


def test_destroy_kills_what_is_still_running() -> None:
    name = f"pyc-test-{uuid.uuid4().hex[:8]}"
    manager = manager_for(name, name, rootless=False)
    manager.create()
    try:

        def scenario() -> dict[str, Any]:
            pid = spawn_in(manager, lambda: signal.pause() or 0)
            while pid not in manager.pids():
                os.sched_yield()
            manager.destroy()
            _, status = os.waitpid(pid, 0)
            return {"signal": os.WTERMSIG(status)}

        assert in_driver(scenario)["signal"] == signal.SIGKILL
        assert not manager.exists()
    finally:
        manager.destroy()


@pytest.fixture
def unified_parent() -> Iterator[str]:
    """A cgroup2 directory standing for a delegated unit; removed with all below it."""
    path = os.path.join(UNIFIED_MOUNT, f"pyc-test-{uuid.uuid4().hex[:8]}")
    systemd = path.replace(UNIFIED_MOUNT, "/sys/fs/cgroup/systemd")
    control = os.path.join(UNIFIED_MOUNT, "cgroup.subtree_control")
    enabled_before = read(UNIFIED_MOUNT, "cgroup.subtree_control").split()
    os.mkdir(path)
    os.mkdir(systemd)
    try:
        yield path
    finally:
        for top in (path, systemd):
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
                os.rmdir(dirpath)
        if "hugetlb" not in enabled_before:
            with open(control, "w") as f:
                f.write("-hugetlb")


def join(cgroup_dir: str) -> None:
    with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def test_v2_enabling_a_controller_moves_the_caller_into_a_leaf(unified_parent: str) -> None:
    """cgroup v2's no-internal-processes rule, on the real cgroup2 mount (controller hugetlb)."""
    if "hugetlb" not in read(UNIFIED_MOUNT, "cgroup.controllers").split():
        pytest.skip("the cgroup2 mount has no hugetlb controller to enable")

    def scenario() -> dict[str, Any]:
        join(unified_parent)
        manager = manager_for(None, "ctr", rootless=False)
        manager.create()
        try:
            manager.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]})
            with open("/proc/self/cgroup") as f:
                own = cgroups.parse_proc_cgroup(f.read())[UNIFIED]
            return {
                "dir": manager.paths()[UNIFIED],
                "own": own,
                "max": read(manager.paths()[UNIFIED], "hugetlb.2MB.max"),
                "parent_procs": read(unified_parent, "cgroup.procs"),
            }
        finally:
            manager.destroy()
            join(UNIFIED_MOUNT)

    result = in_driver(scenario)
    name = os.path.basename(unified_parent)
    assert result["dir"] == f"{unified_parent}/ctr"
    assert result["own"] == f"/{name}/{cgroups.LEAF_NAME}"
    assert result["max"] == str(4 << 21)
    assert result["parent_procs"] == ""


def test_absolute_cgroups_path_stays_inside_a_delegated_cgroup(unified_parent: str) -> None:
    systemd_dir = unified_parent.replace(UNIFIED_MOUNT, "/sys/fs/cgroup/systemd")
    os.setxattr(systemd_dir, "trusted.delegate", b"1")

    def scenario() -> dict[str, Any]:
        join(unified_parent)
        join(systemd_dir)
        try:
            manager = manager_for("/machine/ctr", "ctr", rootless=False)
            return {"paths": manager.paths()}
        finally:
            join(UNIFIED_MOUNT)
            join("/sys/fs/cgroup/systemd")

    paths = in_driver(scenario)["paths"]
    assert paths["name=systemd"] == f"{systemd_dir}/machine/ctr"
    assert paths[UNIFIED] == f"{unified_parent}/machine/ctr"
    assert paths["pids"] == "/sys/fs/cgroup/pids/machine/ctr"  # not delegated there


NSPAWN_VIEW = r"""
set -e
for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
  # a per-mount read-only flag on a bind: the shared superblock stays read-write
  mount --bind /sys/fs/cgroup/$c /sys/fs/cgroup/$c
  mount -o remount,bind,ro /sys/fs/cgroup/$c
done
exec "$@"
"""

READ_ONLY_SCENARIO = r"""
import json, logging, sys
from pycontainers.runtime.cgroups import manager_for, CgroupLimitError
logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(message)s")
out = {}
m = manager_for(sys.argv[1], sys.argv[1], rootless=False)
out["keys"] = sorted(m.paths())
m.create()
try:
    m.apply({"pids": {"limit": 10}})
except CgroupLimitError as exc:
    out["error"] = str(exc)
m.apply({})
m.destroy()
out["left"] = [d for d in m.paths().values() if __import__("os").path.exists(d)]
print(json.dumps(out))
"""


def test_read_only_v1_controllers_warn_once_and_refuse_demanded_limits() -> None:
    """The systemd-nspawn situation, made with read-only binds in a private mount namespace."""
    name = f"pyc-test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", NSPAWN_VIEW, "sh",
         sys.executable, "-c", READ_ONLY_SCENARIO, name],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["keys"] == ["name=systemd", UNIFIED]
    assert "linux.resources needs cgroup controllers pids" in out["error"]
    assert "pids: read-only file system" in out["error"]
    assert out["left"] == []
    assert proc.stderr.count("cannot be written (read-only file system)") == 1


def test_rootless_limits_without_a_controller_are_a_warning_not_an_error() -> None:
    manager = CgroupManager({}, rootless=True, skipped={"pids": "permission denied"})
    manager.apply({"pids": {"limit": 10}})  # warns, as Podman does on cgroup v1
    with pytest.raises(CgroupLimitError, match="pids"):
        CgroupManager({}, rootless=False, skipped={"pids": "not writable"}).apply(
            {"pids": {"limit": 10}}
        )


def test_memory_and_swap_limits_can_be_raised_and_lowered(container: CgroupManager) -> None:
    """v1 refuses memsw below the limit at every step; the write order must follow."""
    memory = container.paths()["memory"]
    for limit, swap in ((64 << 20, 128 << 20), (256 << 20, 512 << 20), (32 << 20, 32 << 20)):
        container.apply({"memory": {"limit": limit, "swap": swap}})
        assert read(memory, "memory.limit_in_bytes") == str(limit)
        if os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes")):
            assert read(memory, "memory.memsw.limit_in_bytes") == str(swap)


PURE_V2_VIEW = r"""
set -e
# the host's cgroup2 hierarchy alone at /sys/fs/cgroup, as on a pure v2 host; same superblock
# options as the host mount so that nothing changes for the host
mount -t cgroup2 -o "$PYC_V2_OPTIONS" cgroup2 /sys/fs/cgroup
exec "$@"
"""

PURE_V2_SCENARIO = r"""
import json, os, signal, sys
from pycontainers.runtime.cgroups import CgroupLimitError, detect_layout, manager_for
out = {"mode": detect_layout().mode}
m = manager_for(sys.argv[1], sys.argv[1], rootless=False)
out["paths"] = m.paths()
m.create()
try:
    m.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 21}]})
    out["hugetlb"] = open(os.path.join(m.paths()["unified"], "hugetlb.2MB.max")).read().strip()
    try:
        m.apply({"pids": {"limit": 5}})
    except CgroupLimitError as exc:
        out["pids_error"] = str(exc)
    pid = os.fork()
    if pid == 0:
        m.add_pid(os.getpid())
        signal.pause()
        os._exit(0)
    while pid not in m.pids():
        os.sched_yield()
    out["frozen"] = m.freeze()
    out["events"] = open(os.path.join(m.paths()["unified"], "cgroup.events")).read().split()
    m.thaw()
    out["oom"] = m.oom_kill_count()
    m.kill_all(signal.SIGKILL)
    out["status"] = os.waitpid(pid, 0)[1]
finally:
    m.destroy()
out["left"] = os.path.exists(m.paths()["unified"])
print(json.dumps(out))
"""


def test_pure_v2_code_paths_on_the_real_cgroup2_hierarchy() -> None:
    """A private mount namespace shows only cgroup2 at /sys/fs/cgroup (hugetlb is its one
    controller here); everything else cgroup2 offers is exercised: leaf dirs, subtree_control,
    cgroup.freeze, cgroup.kill, and a clear error for limits of controllers it lacks."""
    if "hugetlb" not in read(UNIFIED_MOUNT, "cgroup.controllers").split():
        pytest.skip("the cgroup2 mount has no hugetlb controller")
    layout = {h.key: h for h in cgroups.detect_layout().hierarchies}
    with open("/proc/self/mountinfo") as f:
        line = next(x for x in f if f" {UNIFIED_MOUNT} " in x)
    options = ",".join(o for o in line.split(" - ")[1].split()[2].split(",") if o != "rw")
    assert UNIFIED in layout
    enabled_before = read(UNIFIED_MOUNT, "cgroup.subtree_control").split()
    name = f"pyc-test-{uuid.uuid4().hex[:8]}"
    try:
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", PURE_V2_VIEW, "sh",
             sys.executable, "-c", PURE_V2_SCENARIO, name],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "PYC_V2_OPTIONS": options or "rw"},
        )  # fmt: skip
    finally:
        if os.path.isdir(os.path.join(UNIFIED_MOUNT, name)):
            os.rmdir(os.path.join(UNIFIED_MOUNT, name))
        if "hugetlb" not in enabled_before:
            with open(os.path.join(UNIFIED_MOUNT, "cgroup.subtree_control"), "w") as f:
                f.write("-hugetlb")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["mode"] == "unified"
    assert out["paths"] == {UNIFIED: f"/sys/fs/cgroup/{name}"}
    assert out["hugetlb"] == str(2 << 21)
    assert "needs cgroup controllers pids" in out["pids_error"]
    assert out["frozen"] is True
    assert out["events"][out["events"].index("frozen") + 1] == "1"
    assert out["oom"] == 0
    assert out["status"] == signal.SIGKILL
    assert out["left"] is False


ROOTLESS_SCENARIO = r"""
import json, logging, sys
from pycontainers.runtime.cgroups import manager_for
logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(message)s")
m = manager_for(None, "ctr", rootless=True)
m.create()
m.apply({"pids": {"limit": 5}, "memory": {"limit": 1 << 26}})
m.apply({"pids": {"limit": 6}})
print(json.dumps({"paths": m.paths(), "pids": m.pids(), "oom": m.oom_kill_count()}))
m.destroy()
"""


def test_rootless_on_v1_warns_once_and_goes_on() -> None:
    """An ordinary user (nobody) on this hybrid host can write no cgroup: Podman's behaviour."""
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-c", ROOTLESS_SCENARIO],
        capture_output=True, text=True, timeout=60, check=False, cwd="/",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"paths": {}, "pids": [], "oom": 0}
    assert proc.stderr.count("WARNING") == 2, proc.stderr
    assert "no cgroup hierarchy is available to this user (permission denied)" in proc.stderr
    assert "controllers memory, pids are not available to this user" in proc.stderr


def test_block_io_weight_and_a_file_this_kernel_lacks(container: CgroupManager) -> None:
    blkio = container.paths()["blkio"]
    container.apply({"blockIO": {"weight": 500}})
    weight_file = "blkio.weight" if os.path.exists(f"{blkio}/blkio.weight") else "blkio.bfq.weight"
    assert read(blkio, weight_file).split()[-1] == "500"
    if os.path.exists(f"{blkio}/blkio.leaf_weight"):
        pytest.skip("this kernel has blkio.leaf_weight (CFQ)")
    with pytest.raises(CgroupLimitError, match=r"cannot set blkio\.leaf_weight to '200'"):
        container.apply({"blockIO": {"leafWeight": 200}})


def test_v1_freezer_and_kill_without_cgroup2(container: CgroupManager) -> None:
    """The legacy (v1-only) path: no cgroup.kill, no cgroup.freeze; freezer.state instead."""
    legacy = CgroupManager.from_paths({k: v for k, v in container.paths().items() if k != UNIFIED})

    def scenario() -> dict[str, Any]:
        r, w = os.pipe()

        def sleeper() -> int:
            os.write(w, b"in")
            signal.pause()
            return 0

        pid = spawn_in(container, sleeper)
        os.read(r, 2)
        frozen = legacy.freeze()
        state = read(legacy.paths()["freezer"], "freezer.state")
        legacy.kill_all(signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        return {
            "frozen": frozen,
            "state": state,
            "thawed": read(legacy.paths()["freezer"], "freezer.state"),
            "signal": os.WTERMSIG(status),
        }

    result = in_driver(scenario)
    assert result == {"frozen": True, "state": "FROZEN", "thawed": "THAWED", "signal": 9}


def _open_errno(path: str) -> int:
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        return exc.errno or 0
    return 0


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # runc's default: deny everything, then the standard nodes (added by apply)
        ([{"allow": False, "access": "rwm"}], {"null": 0, "kmsg": 1, "loop0": 1, "mknod": 0}),
        # allow everything, then deny reading /dev/kmsg (the last matching rule wins; the
        # standard nodes are appended after the config's rules, as runc does)
        (
            [
                {"allow": True, "access": "rwm"},
                {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "r"},
            ],
            {"null": 0, "kmsg": 1, "loop0": 0, "mknod": 0},
        ),
    ],
)
def test_device_rules_on_cgroup2_are_enforced_by_an_ebpf_filter(
    container: CgroupManager, tmp_path: Path, rules: list[dict[str, Any]], expected: dict[str, int]
) -> None:
    """No devices controller on cgroup2: the rules become a BPF_CGROUP_DEVICE program."""
    v2_only = CgroupManager.from_paths({UNIFIED: container.paths()[UNIFIED]})
    v2_only.apply({"devices": rules})

    def scenario() -> dict[str, Any]:
        r, w = os.pipe()

        def probe() -> int:
            node = tmp_path / "kmsg-node"
            try:
                os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(1, 11))
                made = 0
            except OSError as exc:
                made = exc.errno or 0
            answers = {
                "null": _open_errno("/dev/null"),
                "kmsg": _open_errno("/dev/kmsg"),
                "loop0": _open_errno("/dev/loop0"),
                "mknod": made,
            }
            os.write(w, json.dumps(answers).encode())
            return 0

        pid = spawn_in(container, probe)
        os.close(w)
        data = os.read(r, 1000)
        os.waitpid(pid, 0)
        return dict(json.loads(data))

    result = in_driver(scenario)
    assert result == {k: errno.EPERM if v else 0 for k, v in expected.items()}


@pytest.mark.parametrize(
    "rules",
    [
        [],
        [{"allow": False, "access": "rwm"}],
        [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "b", "major": 7, "access": "r"},
        ],
        [
            {"allow": True, "access": "rwm"},
            {"allow": False, "type": "c", "minor": 0, "access": "mw"},
        ],
    ],
)
def test_every_device_program_passes_the_kernel_verifier(
    container: CgroupManager, rules: list[dict[str, Any]]
) -> None:
    cgroup_devices.attach_device_program(
        container.paths()[UNIFIED], cgroup_devices.device_program(rules)
    )


@pytest.mark.parametrize("cgroupns", [False, True])
def test_run_on_a_pure_v2_view_like_runc(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory, cgroupns: bool
) -> None:
    """The whole run (directories made after the fork, the init moved while it sets up,
    a cgroup2 mount inside, removal at delete) in the view a pure v2 host gives: the
    host's cgroup2 hierarchy alone at /sys/fs/cgroup, in a private mount namespace."""
    with open("/proc/self/mountinfo") as f:
        line = next(x for x in f if f" {UNIFIED_MOUNT} " in x)
    options = ",".join(o for o in line.split(" - ")[1].split()[2].split(",") if o != "rw")

    def edit(cfg: dict[str, Any]) -> None:
        if cgroupns:
            cfg["linux"]["namespaces"].append({"type": "cgroup"})

    probe = "grep '^0::' /proc/self/cgroup; ls /sys/fs/cgroup | grep -c '^cgroup\\.'"
    bundle = make_bundle(["sh", "-c", probe], edit)
    lines = {}
    for rt in (ours, runc):
        cid = rt.new_id()
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", PURE_V2_VIEW, "sh",
             *rt.argv, "--root", str(rt.root), "run", "--bundle", str(bundle), cid],
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYC_V2_OPTIONS": options or "rw"},
        )  # fmt: skip
        assert proc.returncode == 0, f"{rt.name}: {proc.stderr}"
        lines[rt.name] = proc.stdout.replace(cid, "ID").split("\n")
        assert not os.path.exists(os.path.join(UNIFIED_MOUNT, cid)), rt.name
    assert lines["ours"] == lines["runc"]
    assert lines["ours"][0] == ("0::/" if cgroupns else "0::/ID")
    assert int(lines["ours"][1]) > 3  # a cgroup2 filesystem inside: cgroup.procs, ...
