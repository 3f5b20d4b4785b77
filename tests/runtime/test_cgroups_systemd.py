"""Cgroups inside a real systemd unit with Delegate=yes, in the systemd-nspawn sandbox.

There the v1 controller hierarchies are read-only (nspawn binds them so), and the unit's
name=systemd and cgroup2 subtrees are delegated: the manager must group the container
inside the unit, warn once about the read-only controllers, and refuse a limit it cannot
apply with a clear error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.sandbox import Sandbox

pytestmark = [pytest.mark.root, pytest.mark.systemd]

REPO = Path(__file__).resolve().parents[2]

IN_UNIT = r"""
import json, logging, os, signal, sys
from pycontainers.runtime.cgroups import CgroupLimitError, manager_for, parse_proc_cgroup
logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(message)s")
with open("/proc/self/cgroup") as f:
    own = parse_proc_cgroup(f.read())
out = {"own": own}
out["absolute"] = manager_for("/machine/abs", "abs", rootless=False).paths()
m = manager_for(None, "ctr", rootless=False)
m.create()
try:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        m.add_pid(os.getpid())
        os.write(w, b"in")
        signal.pause()
        os._exit(0)
    os.read(r, 2)
    with open(f"/proc/{pid}/cgroup") as f:
        out["child"] = parse_proc_cgroup(f.read())
    out["paths"] = m.paths()
    try:
        m.apply({"pids": {"limit": 5}})
    except CgroupLimitError as exc:
        out["error"] = str(exc)
    m.apply({"devices": [{"allow": False, "access": "rwm"}]})
    m.kill_all(signal.SIGKILL)
    out["status"] = os.waitpid(pid, 0)[1]
finally:
    m.destroy()
out["left"] = [d for d in m.paths().values() if os.path.exists(d)]
print(json.dumps(out))
"""


def test_container_cgroup_is_made_inside_the_delegated_unit(systemd: Sandbox) -> None:
    proc = systemd.exec(
        "systemd-run", "--quiet", "--wait", "--pipe", "--collect", "-p", "Delegate=yes",
        "--unit=pyc-cgroup-test.service", f"--setenv=PYTHONPATH={REPO}",
        sys.executable, "-c", IN_UNIT,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    unit = "/system.slice/pyc-cgroup-test.service"
    assert out["own"]["name=systemd"] == unit
    assert out["child"]["name=systemd"] == f"{unit}/ctr"
    assert set(out["paths"]) == {"name=systemd", "unified"}
    assert out["paths"]["name=systemd"] == f"/sys/fs/cgroup/systemd{unit}/ctr"
    assert out["absolute"]["name=systemd"] == f"/sys/fs/cgroup/systemd{unit}/machine/abs"
    assert "linux.resources needs cgroup controllers pids" in out["error"]
    assert "read-only file system" in out["error"]
    assert out["status"] == 9  # SIGKILL
    assert out["left"] == []
    assert proc.stderr.count("cannot be written (read-only file system)") == 1
