"""``exec``: run another process inside a running container (runc exec).

Joins the init's namespaces (setns on /proc/PID/ns/*), its cgroup, then forks once more so
the process is inside the PID namespace, and sets it up like the init's own process.
"""

from __future__ import annotations

import os

from pycontainers.runtime import cgroup_prewarm, libc, state
from pycontainers.runtime import config as configmod
from pycontainers.runtime import jsonfast as json
from pycontainers.runtime.channel import Channel
from pycontainers.runtime.errors import (
    TRACE,
    ConfigError,
    IncorrectStatus,
    OciRuntimeError,
    describe,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontainers.runtime.cli import Args

_NS_ORDER = (("user", libc.CLONE_NEWUSER), ("ipc", libc.CLONE_NEWIPC),
             ("uts", libc.CLONE_NEWUTS), ("net", libc.CLONE_NEWNET),
             ("pid", libc.CLONE_NEWPID), ("cgroup", libc.CLONE_NEWCGROUP),
             ("time", libc.CLONE_NEWTIME), ("mnt", libc.CLONE_NEWNS))  # fmt: skip


def process_for(st: state.ContainerState, a: Args) -> configmod.Process:
    """--process FILE, or the container's own process with ARGS and overrides."""
    path = a.get("process")
    if path:
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read())
        except (OSError, ValueError) as exc:
            raise ConfigError(path, "", str(exc)) from exc
        return configmod.parse_process(doc, path)
    base = st.config.get("process")
    doc = dict(base) if isinstance(base, dict) else {}
    if len(a.positional) < 2:
        raise ConfigError("exec", "args", "give a command after the container id, or --process")
    doc["args"] = a.positional[1:]
    doc["terminal"] = a.flag("tty")
    env = a.options.get("env")
    if isinstance(env, list):
        doc["env"] = [*(doc.get("env") or []), *env]
    if a.get("cwd"):
        doc["cwd"] = a.get("cwd")
    user = a.get("user")
    if user:
        uid, _, gid = user.partition(":")
        doc["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    return configmod.parse_process(doc, "exec")


def _join(pid: int) -> None:
    for name, flag in _NS_ORDER:
        path = f"/proc/{pid}/ns/{name}"
        try:
            if os.readlink(path) == os.readlink(f"/proc/self/ns/{name}"):
                continue
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            libc.setns(fd, flag, path)
        finally:
            os.close(fd)


def exec_in(root: str, container_id: str, a: Args) -> int:
    from pycontainers.runtime import container, init

    st = state.load(root, container_id)
    status = st.status()
    if not status.can_exec():
        raise IncorrectStatus(container_id, status.value, "exec in")
    process = process_for(st, a)
    if process.terminal and not a.get("console-socket"):
        raise ConfigError("exec", "process.terminal", "--tty needs --console-socket")
    cfg = configmod.parse(st.config, st.bundle, os.path.join(st.bundle, "config.json"))
    manager = container._cgroup_from_state(st)
    detach = a.flag("detach")
    from pycontainers.runtime.cli import preserve_fds

    keep = preserve_fds(a)
    if not detach:
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    parent, child = Channel.pair()
    middle = os.fork()
    if middle != 0:
        cgroup_prewarm.stop()
    if middle == 0:
        parent.close()
        code = 1
        try:
            if manager is not None:
                manager.add_pid(os.getpid())
            # Not dumpable while we are the host's python inside the container's PID
            # namespace: its processes cannot open our /proc/PID/exe (CVE-2019-5736
            # class) or ptrace us. execve of the program makes it dumpable again.
            libc.prctl(libc.PR_SET_DUMPABLE, 0)
            init.preload(cfg, process)
            compiled = init.prepare_seccomp(cfg, None)
            console = None
            if process.terminal:
                from pycontainers.runtime.console import ConsoleSocket

                console = ConsoleSocket.connect(str(a.get("console-socket")))
            _join(st.pid)
            pid = os.fork()
            if pid == 0:
                try:
                    if console is not None:
                        os.setsid()
                        console.attach(process, mount_console=False)
                    program, env, rest = init.prepare_process(cfg, process, compiled)
                    # the channel stays open (O_CLOEXEC): a failing execve still reports
                    init.exec_process(process, program, env, rest, keep)
                except BaseException as exc:
                    child.send_error(describe(exc))
                finally:
                    os._exit(1)
            child.send("pid", str(pid))
            code = 0
        except BaseException as exc:
            child.send_error(describe(exc))
        finally:
            os._exit(code)
    child.close()
    try:
        msg = parent.recv()
        container._reap(middle)
        if msg is None or msg[0] != "pid":
            raise OciRuntimeError(json.loads(msg[1]) if msg else "exec: setup failed")
        pid = int(msg[1])
        if TRACE:
            TRACE[0](f"exec {container_id}: process {pid} in the namespaces of {st.pid}")
        # The exec'd program closes the child end (O_CLOEXEC); an error arrives instead.
        late = parent.recv()
        if late is not None and late[0] == "error":
            container._reap(pid)
            raise OciRuntimeError(json.loads(late[1]))
    finally:
        parent.close()
    if TRACE:
        TRACE[0](f"exec {container_id}: process {pid} exec'd {process.args[0]}")
    if a.get("pid-file"):
        container._write_pid_file(str(a.get("pid-file")), pid)
    if detach:
        return 0
    _, wait_status = os.waitpid(pid, 0)
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status)
    return 128 + os.WTERMSIG(wait_status)
