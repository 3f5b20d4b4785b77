"""Namespaces (new and joined by path), exec into a running container, console socket."""

from __future__ import annotations

import array
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.util import eventually

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .conftest import BundleFactory, Runtime

pytestmark = pytest.mark.root


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pyc-rt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_joins_a_network_namespace_by_path_and_creates_the_others(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory, netns: str
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = netns
        cfg["linux"]["namespaces"].append({"type": "cgroup"})

    probe = (
        "stat -L -c %i /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts; cat /proc/1/cgroup"
    )
    bundle = make_bundle(["sh", "-c", probe], edit)
    mine = ours.run(bundle)
    assert mine.returncode == 0, mine.stderr
    net, ipc, uts, *cgroup_lines = mine.stdout.split("\n")
    assert int(net) == os.stat(netns).st_ino
    assert int(ipc) != os.stat("/proc/self/ns/ipc").st_ino
    assert int(uts) != os.stat("/proc/self/ns/uts").st_ino
    # in a new cgroup namespace the init's own cgroups are the namespace roots
    assert all(line.endswith(":/") for line in cgroup_lines if line)
    theirs = runc.run(bundle)
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout.split("\n")[0] == net
    assert theirs.stdout.split("\n")[3:] == mine.stdout.split("\n")[3:]


def test_joining_a_missing_namespace_path_is_a_clear_error(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"][1]["path"] = "/run/netns/does-not-exist"

    cid, done = ours.create(make_bundle(["true"], edit))
    assert done.returncode == 1
    assert "open namespace `/run/netns/does-not-exist`: no such file or directory" in done.stderr
    assert not (ours.root / cid).exists()


def test_exec_joins_the_running_container(ours: Runtime, make_bundle: BundleFactory) -> None:
    bundle = make_bundle(["sleep", "60"], lambda cfg: cfg.update(hostname="inside"))
    cid, _ = ours.create(bundle)
    ours("start", cid, check=True)
    init = ours.state(cid)["pid"]
    done = ours("exec", cid, "sh", "-c", "hostname; cat /proc/1/comm; echo $$")
    assert done.returncode == 0, done.stderr
    hostname, comm, pid = done.stdout.split()
    assert (hostname, comm) == ("inside", "sleep")
    assert int(pid) > 1  # a new process in the container's PID namespace
    assert ours("exec", cid, "sh", "-c", "exit 5").returncode == 5
    env = ours("exec", "--env", "X=y", "--cwd", "/tmp", cid, "sh", "-c", 'echo "$X $(pwd)"')
    assert env.stdout == "y /tmp\n"
    missing = ours("exec", cid, "nope")
    assert missing.returncode == 1
    assert 'exec: "nope": executable file not found in $PATH' in missing.stderr
    assert init == ours.state(cid)["pid"]


def test_exec_into_a_stopped_container_is_refused(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    cid, _ = ours.create(make_bundle(["true"]))
    ours("start", cid, check=True)
    eventually(lambda: ours.state(cid)["status"] == "stopped", what="stopped")
    done = ours("exec", cid, "true")
    assert done.returncode == 1
    assert "it is stopped" in done.stderr


def _receive_fd(server: socket.socket) -> tuple[bytes, int]:
    conn, _ = server.accept()
    with conn:
        fd_size = array.array("i").itemsize
        data, ancdata, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fd_size))
        fds = array.array("i")
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:fd_size])
        return data, fds[0]


def _read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the slave side is closed
            break
        if not chunk:
            break
        out += chunk
    return out


@pytest.mark.parametrize("which", ["ours", "runc"])
def test_console_socket_receives_the_pty_master(
    which: str, request: pytest.FixtureRequest, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    rt: Runtime = request.getfixturevalue(which)

    def edit(cfg: dict[str, Any]) -> None:
        cfg["process"]["terminal"] = True
        cfg["process"]["consoleSize"] = {"height": 24, "width": 99}

    bundle = make_bundle(["sh", "-c", "tty; stty size; echo done"], edit)
    sock_path = tmp_path / f"console-{which}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    server.settimeout(20)
    cid = rt.new_id()
    proc = subprocess.Popen(
        [*rt.argv, "--root", str(rt.root), "create", "--bundle", str(bundle),
         "--console-socket", str(sock_path), cid],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _, master = _receive_fd(server)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        rt("start", cid, check=True)
        output = _read_all(master).decode()
        os.close(master)
    finally:
        proc.kill()
        proc.wait()
        server.close()
    assert output.replace("\r\n", "\n") == "/dev/pts/0\n24 99\ndone\n"


def _userns(cfg: dict[str, Any]) -> None:
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.fixture
def traversable_rootfs(rootfs_factory: Callable[[Path], Path]) -> Iterator[Path]:
    """A rootfs copy whose parent directories a mapped (non-host-root) uid can traverse:
    pytest's own temporary directories are mode 0700, which the container's root could
    not pass (runc fails there too)."""
    base = Path(tempfile.mkdtemp(prefix="pyc-rt-userns-"))
    try:
        base.chmod(0o755)
        rootfs_factory(base / "rootfs")
        yield base / "rootfs"
    finally:
        shutil.rmtree(base)


def test_user_namespace_maps_root_to_an_unprivileged_host_uid(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory, traversable_rootfs: Path
) -> None:
    probe = "id; cat /proc/self/uid_map; ls -ln /dev/null | awk '{print $1, $5, $6}'"
    bundle = make_bundle(["sh", "-c", probe], _userns, rootfs=traversable_rootfs)
    mine, theirs = ours.run(bundle), runc.run(bundle)
    assert mine.returncode == 0, mine.stderr
    assert theirs.returncode == 0, theirs.stderr
    assert mine.stdout == theirs.stdout
    assert mine.stdout.split("\n")[0] == "uid=0 gid=0"
    cid, _ = ours.create(make_bundle(["true"], _userns, rootfs=traversable_rootfs))
    with open(f"/proc/{ours.state(cid)['pid']}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == ["100000"] * 4  # root inside, an unprivileged uid on the host


def test_exec_tty_hands_a_new_pty_to_the_console_socket(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    # (runc 1.1 keeps a foreground `exec --tty` pty to itself and never uses the socket,
    # so there is no oracle here)
    rt, which = ours, "ours"
    cid, _ = rt.create(make_bundle(["sleep", "60"]))
    rt("start", cid, check=True)
    sock_path = tmp_path / f"exec-{which}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    server.settimeout(20)
    proc = subprocess.Popen(
        [*rt.argv, "--root", str(rt.root), "exec", "--tty", "--console-socket", str(sock_path),
         cid, "sh", "-c", "tty; echo $$"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _, master = _receive_fd(server)
        output = _read_all(master).decode().replace("\r\n", "\n")
        os.close(master)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
        proc.wait()
        server.close()
    tty, pid = output.split()
    assert tty.startswith("/dev/pts/")
    assert int(pid) > 1


def test_waiting_init_hides_the_host_interpreter_from_the_container(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    """Until it execs, the init is the host's python inside the container's PID namespace:
    it is not dumpable, so container processes cannot open its /proc/1/exe (the
    CVE-2019-5736 route to overwrite the host's runtime binary)."""
    cid, _ = ours.create(make_bundle(["sleep", "60"]))
    probe = "readlink /proc/1/exe 2>/dev/null || echo denied; cat /proc/1/comm"
    before = ours("exec", cid, "sh", "-c", probe)
    assert before.returncode == 0, before.stderr
    assert before.stdout.split() == ["denied", "pycontainers-ru"]
    ours("start", cid, check=True)
    after = ours("exec", cid, "sh", "-c", probe)
    assert after.stdout.split() == ["/bin/busybox", "sleep"]


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_no_host_fd_reaches_the_container(
    verb: str, ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """An fd the caller leaked to the runtime (here a host directory, the CVE-2024-21626
    route) is closed at execve: the program sees only its stdio."""
    leaked = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(leaked, True)
    probe = ["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]
    try:
        if verb == "run":
            done = ours.run(make_bundle(probe), pass_fds=(leaked,))
        else:
            cid, _ = ours.create(make_bundle(["sleep", "60"]))
            ours("start", cid, check=True)
            done = ours("exec", cid, *probe, pass_fds=(leaked,))
    finally:
        os.close(leaked)
    assert done.returncode == 0, done.stderr
    # 0-2 are stdio, 3 is the directory `ls` itself opens
    assert done.stdout.split() == ["0", "1", "2", "3"]


def test_joins_a_user_namespace_by_path(
    ours: Runtime, make_bundle: BundleFactory, traversable_rootfs: Path
) -> None:
    first, _ = ours.create(make_bundle(["sleep", "60"], _userns, rootfs=traversable_rootfs))
    userns = f"/proc/{ours.state(first)['pid']}/ns/user"

    def join(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"].append({"type": "user", "path": userns})

    probe = "id; cat /proc/self/uid_map; stat -L -c %i /proc/self/ns/user"
    done = ours.run(make_bundle(["sh", "-c", probe], join, rootfs=traversable_rootfs))
    assert done.returncode == 0, done.stderr
    ident, mapping, inode = done.stdout.strip().split("\n")
    assert ident == "uid=0 gid=0"
    assert mapping.split() == ["0", "100000", "65536"]
    assert int(inode) == os.stat(userns).st_ino


@pytest.mark.parametrize("which", ["ours", "runc"])
def test_preserve_fds_passes_fd_3_on(
    which: str, request: pytest.FixtureRequest, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    rt: Runtime = request.getfixturevalue(which)
    bundle = make_bundle(["sh", "-c", "echo through-fd-3 >&3; ls /proc/self/fd | wc -l"])
    out = tmp_path / f"fd3-{which}"
    cmd = " ".join([*rt.argv, "--root", str(rt.root), "run", "--preserve-fds", "1",
                    "--bundle", str(bundle), rt.new_id()])  # fmt: skip
    done = subprocess.run(["sh", "-c", f"exec 3>{out}; exec {cmd}"], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "through-fd-3\n"
    assert done.stdout.strip() == "5"  # 0-2, the preserved 3, and ls's own directory fd


@pytest.mark.parametrize("which", ["ours", "runc"])
def test_socket_activation_fds_reach_the_container(
    which: str, request: pytest.FixtureRequest, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """LISTEN_FDS/LISTEN_PID naming the runtime (what a socket-activated unit gets)."""
    rt: Runtime = request.getfixturevalue(which)
    bundle = make_bundle(["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; echo via-listen-fd >&3"])
    out = tmp_path / f"listen-{which}"
    cmd = " ".join([*rt.argv, "--root", str(rt.root), "run", "--bundle", str(bundle),
                    rt.new_id()])  # fmt: skip
    script = f"exec 3>{out}; export LISTEN_FDS=1 LISTEN_PID=$$; exec {cmd}"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 1\n"
    assert out.read_text() == "via-listen-fd\n"


def test_exec_sees_what_runc_exec_sees(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory
) -> None:
    bundle = make_bundle(["sleep", "60"], lambda cfg: cfg.update(hostname="twin"))
    probe = ("id; hostname; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status;"
             " cat /proc/1/cmdline | tr '\\0' ' '; echo; pwd; echo $PATH")  # fmt: skip
    outputs = []
    for rt in (ours, runc):
        cid, _ = rt.create(bundle)
        rt("start", cid, check=True)
        done = rt("exec", "--user", "1000:1000", cid, "sh", "-c", probe)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].startswith("uid=1000 gid=1000\ntwin\n")


def test_exec_joins_namespaces_cgroup_and_seccomp_like_runc_exec(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory
) -> None:
    """Every namespace of the init (also cgroup), its cgroup in every hierarchy, and its
    seccomp filter (mkdir refused with EACCES) hold for an exec'd process too."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"].append({"type": "cgroup"})
        cfg["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
            ],
        }

    probe = (
        "for n in cgroup ipc mnt net pid uts; do"
        " [ $(readlink /proc/self/ns/$n) = $(readlink /proc/1/ns/$n) ] && echo $n joined; done;"
        ' [ "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" ] && echo cgroup same;'
        " grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1 | sed 's/.*: //'"
    )
    outputs = []
    for rt in (ours, runc):
        cid, _ = rt.create(make_bundle(["sleep", "60"], edit))
        rt("start", cid, check=True)
        done = rt("exec", cid, "sh", "-c", probe)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].split("\n") == [
        *(f"{n} joined" for n in ("cgroup", "ipc", "mnt", "net", "pid", "uts")),
        "cgroup same", "Seccomp:\t2", "Permission denied", "",
    ]  # fmt: skip
