"""Lifecycle hooks (order, state on stdin, failure, timeout) and the systemd hand-off."""

from __future__ import annotations

import array
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.util import eventually

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .conftest import BundleFactory, Runtime

pytestmark = pytest.mark.root


def _hook(script: str, timeout: int | None = None) -> dict[str, Any]:
    hook: dict[str, Any] = {"path": "/bin/sh", "args": ["sh", "-c", script]}
    if timeout is not None:
        hook["timeout"] = timeout
    return hook


def test_hooks_run_in_order_with_the_state_on_stdin(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    out = tmp_path / "hooks"
    out.mkdir()

    def edit(cfg: dict[str, Any]) -> None:
        cfg["mounts"].append(
            {"destination": "/hookout", "type": "bind", "source": str(out), "options": ["rbind"]}
        )
        host = {k: [_hook(f"cat > {out}/{k}; echo {k} >> {out}/order")]
                for k in ("prestart", "createRuntime", "createContainer", "poststart",
                          "poststop")}  # fmt: skip
        # startContainer runs inside the container, after pivot_root: a path in the rootfs
        host["startContainer"] = [
            _hook("cat > /hookout/startContainer; echo startContainer >> /hookout/order")
        ]
        cfg["hooks"] = host

    cid, done = ours.create(make_bundle(["true"], edit))
    assert done.returncode == 0, done.stderr
    order = (out / "order").read_text().split()
    assert order == ["prestart", "createRuntime", "createContainer"]
    pid = ours.state(cid)["pid"]
    for kind in order:
        doc = json.loads((out / kind).read_text())
        assert (doc["id"], doc["pid"], doc["bundle"]) == (cid, pid, done.args[-2])
    ours("start", cid, check=True)
    eventually(lambda: ours.state(cid)["status"] == "stopped", what="stopped")
    ours("delete", cid, check=True)
    order = (out / "order").read_text().split()
    assert order[3:] == ["startContainer", "poststart", "poststop"]
    assert json.loads((out / "startContainer").read_text())["id"] == cid
    assert json.loads((out / "poststop").read_text())["status"] == "stopped"


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (_hook("echo boom >&2; exit 4"), "hook prestart[0] /bin/sh: exited with status 4: boom"),
        (_hook("sleep 5", timeout=1), "hook prestart[0] /bin/sh: timed out after 1s"),
    ],
)
def test_failing_prestart_hook_fails_create_and_cleans_up(
    ours: Runtime, make_bundle: BundleFactory, hook: dict[str, Any], message: str
) -> None:
    bundle = make_bundle(["true"], lambda cfg: cfg.update(hooks={"prestart": [hook]}))
    cid, done = ours.create(bundle)
    assert done.returncode == 1
    assert message in done.stderr
    assert not (ours.root / cid).exists()


def _receive_notifications(sock: socket.socket) -> tuple[list[bytes], list[int]]:
    messages: list[bytes] = []
    fds: list[int] = []
    while not any(m.startswith(b"BARRIER=1") for m in messages):
        fd_size = array.array("i").itemsize
        data, ancdata, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(4 * fd_size))
        messages.append(data)
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += array.array("i", payload[: len(payload) - len(payload) % fd_size])
    return messages, fds


def test_run_detach_notifies_systemd_with_the_init_as_main_pid(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """What a Type=notify unit sees: MAINPID=<init>, READY=1, then a barrier.

    The receiving end is a plain datagram socket standing in for systemd's notify socket
    (the real unit is exercised by the units part's end-to-end tests).
    """
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    cid = ours.new_id()
    env = dict(os.environ, NOTIFY_SOCKET=str(path))
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [*ours.argv, "--root", str(ours.root), "run", "--detach", "--bundle",
         str(make_bundle(["sleep", "60"])), cid],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        messages, fds = _receive_notifications(sock)
        assert proc.poll() is None  # waits for the barrier before exiting
        for fd in fds:
            os.close(fd)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
        sock.close()
        log.close()
    assert len(fds) == 1
    fields = dict(line.split("=", 1) for line in messages[0].decode().splitlines())
    state = ours.state(cid)
    assert fields == {"MAINPID": str(state["pid"]), "READY": "1"}
    assert state["status"] == "running"
    # the main PID is the container's program itself, no Python process in between
    assert os.readlink(f"/proc/{state['pid']}/exe").endswith("/bin/busybox")


def test_failing_start_container_hook_fails_start(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    bundle = make_bundle(
        ["sleep", "60"],
        lambda cfg: cfg.update(hooks={"startContainer": [_hook("echo nope >&2; exit 2")]}),
    )
    cid, done = ours.create(bundle)
    assert done.returncode == 0, done.stderr
    started = ours("start", cid)
    assert started.returncode == 1
    assert "hook startContainer[0] /bin/sh: exited with status 2: nope" in started.stderr
    eventually(lambda: ours.state(cid)["status"] == "stopped", what="stopped")


def test_foreground_run_runs_every_hook_in_order_from_the_hosts_namespaces(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """`run` forks the init itself (no intermediate, no exec.fifo): the hooks keep their
    order and state, and the runtime's own children (hooks) are back in the host's PID
    namespace after it made the container's, with the init already in its cgroups."""
    out = tmp_path / "hooks"
    out.mkdir()
    host_pidns = os.readlink("/proc/self/ns/pid")

    def edit(cfg: dict[str, Any]) -> None:
        cfg["mounts"].append(
            {"destination": "/hookout", "type": "bind", "source": str(out), "options": ["rbind"]}
        )
        probe = (
            "readlink /proc/self/ns/pid > {out}/{k}.pidns;"
            " pid=$(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/' {out}/{k});"
            " cat /proc/$pid/cgroup > {out}/{k}.cgroup 2>/dev/null"
        )
        hooks = {
            k: [_hook(f"cat > {out}/{k}; echo {k} >> {out}/order; " + probe.format(out=out, k=k))]
            for k in ("prestart", "createRuntime", "poststart", "poststop")
        }
        hooks["createContainer"] = [_hook(f"echo createContainer >> {out}/order")]
        hooks["startContainer"] = [_hook("echo startContainer >> /hookout/order")]
        cfg["hooks"] = hooks

    cid = ours.new_id()
    done = ours.run(make_bundle(["true"], edit), cid)
    assert done.returncode == 0, done.stderr
    assert (out / "order").read_text().split() == [
        "prestart", "createRuntime", "createContainer", "startContainer", "poststart",
        "poststop",
    ]  # fmt: skip
    for kind in ("prestart", "createRuntime", "poststart"):
        assert (out / f"{kind}.pidns").read_text().strip() == host_pidns, kind
        assert json.loads((out / kind).read_text())["id"] == cid
        assert f"/{cid}" in (out / f"{kind}.cgroup").read_text(), kind
    assert json.loads((out / "poststop").read_text())["status"] == "stopped"
    assert not (ours.root / cid).exists()


def test_run_joins_a_pid_namespace_by_path_like_runc(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory
) -> None:
    """The runtime enters a PID namespace given by path just for the init's fork."""
    sleeper, done = runc.create(make_bundle(["sleep", "60"]))
    assert done.returncode == 0, done.stderr
    runc("start", sleeper, check=True)
    target = f"/proc/{runc.state(sleeper)['pid']}/ns/pid"

    def edit(cfg: dict[str, Any]) -> None:
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = target

    probe = "readlink /proc/self/ns/pid; cat /proc/1/comm; echo $$"
    bundle = make_bundle(["sh", "-c", probe], edit)
    outputs = []
    for rt in (ours, runc):
        got = rt.run(bundle)
        assert got.returncode == 0, got.stderr
        outputs.append(got.stdout.split("\n"))
    assert outputs[0][0] == os.readlink(target) == outputs[1][0]
    assert outputs[0][1] == outputs[1][1] == "sleep"
    assert outputs[0][2] != "1" and outputs[1][2] != "1"  # not the namespace's init


def test_run_without_a_pid_namespace_like_runc(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory
) -> None:
    """No new PID namespace: the directly forked init is a host process, the runtime
    unshares nothing for the fork, and run still returns the program's status."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"] = [
            ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "pid"
        ]

    probe = "readlink /proc/self/ns/pid; [ $$ != 1 ] && echo not-one; exit 3"
    bundle = make_bundle(["sh", "-c", probe], edit)
    outputs = []
    for rt in (ours, runc):
        done = rt.run(bundle)
        assert done.returncode == 3, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == f"{os.readlink('/proc/self/ns/pid')}\nnot-one\n"


def test_run_with_a_new_cgroup_namespace_and_hooks(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """The init asks to be placed in its cgroups before it unshares a new cgroup
    namespace; a prestart hook still comes after that and sees it there."""
    out = tmp_path / "hook.cgroup"

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"].append({"type": "cgroup"})
        probe = f"pid=$(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); cat /proc/$pid/cgroup > {out}"
        cfg["hooks"] = {"prestart": [_hook(probe)]}

    cid = ours.new_id()
    done = ours.run(make_bundle(["cat", "/proc/self/cgroup"], edit), cid)
    assert done.returncode == 0, done.stderr
    inside = [line for line in done.stdout.splitlines() if line]
    assert inside and all(line.endswith(":/") for line in inside)
    seen_by_hook = out.read_text()
    assert f"/{cid}" in seen_by_hook
