"""The container's init before execve: namespaces' contents, rootfs, credentials.

Runs in the forked child that is PID 1 of the new PID namespace. It reports to the
runtime over a pipe (one line per message, see ``channel``) and then blocks opening
``exec.fifo`` for writing until ``start`` opens it for reading (runc's design), so the
container is fully set up when ``create`` returns and starts with one cheap wake-up. A
foreground ``run`` has no fifo: the init execs once the runtime has saved the state
("commit now"), and the runtime sees the execve as the EOF of the pipe.
"""

from __future__ import annotations

import os

from pycontainers.runtime import capabilities, channel, libc, rootfs
from pycontainers.runtime.channel import ChannelClosed
from pycontainers.runtime.config import Config, Process
from pycontainers.runtime.errors import (
    TRACE,
    ExecError,
    OciRuntimeError,
    SyscallError,
    describe,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontainers.runtime.console import ConsoleSocket

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# binfmt_script follows at most this many interpreters (BINPRM_MAX_RECURSION is 4)
_MAX_INTERPRETERS = 5


def _executable_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


# The host's python running the runtime, taken when this module is imported: on the host,
# before any namespace change (the container may have no /proc of its own to name it).
RUNTIME_EXECUTABLE = _executable_id("/proc/self/exe")


def refuse_runtime_executable(program: str) -> None:
    """Never let the container's program be the runtime's own executable (CVE-2019-5736).

    At execve, /proc/self/exe still names the host's python: a program (or a script's
    ``#!`` interpreter, or a symlink to either) that is /proc/self/exe or /proc/PID/exe
    of a runtime process would run the host binary inside the container, where any
    container process could open it through /proc/PID/exe and, once it is no longer
    busy, overwrite it. Checked through the interpreter chain, before the credentials
    change (an execute-only script is readable then). A container process racing an
    ``exec`` could still swap the file between this check and execve: a residual risk,
    which runc closes by running from a sealed copy of its binary.
    """
    path = program
    for _ in range(_MAX_INTERPRETERS):
        found = _executable_id(path)
        if found is None:
            return  # execve fails on its own
        if found == RUNTIME_EXECUTABLE:
            raise ExecError(
                f'exec: "{program}": {path} is the runtime\'s own executable'
                " (refused: it would run the host's interpreter in the container)"
            )
        try:
            with open(path, "rb") as f:
                head = f.read(256)
        except OSError:
            return
        words = head[2:].split(b"\n", 1)[0].split() if head.startswith(b"#!") else []
        if not words:
            return
        path = os.fsdecode(words[0])


def find_executable(name: str, env: list[str]) -> str:
    """exec.LookPath as runc does it, inside the container (after pivot_root)."""
    if "/" in name:
        candidates = [name]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    denied = False
    for candidate in candidates:
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000:
            if os.access(candidate, os.X_OK):
                return candidate
            denied = True
    if denied:
        raise ExecError(f'exec: "{name}": permission denied')
    if "/" in name:
        raise ExecError(f'exec: "{name}": stat {name}: no such file or directory')
    raise ExecError(f'exec: "{name}": executable file not found in $PATH')


def with_home(env: list[str], uid: int) -> list[str]:
    """runc adds HOME from the container's /etc/passwd (else /) when the config has none."""
    if any(e.startswith("HOME=") for e in env):
        return env
    home = "/"
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.split(":")
                if len(fields) > 5 and fields[2] == str(uid):
                    home = fields[5]
                    break
    except OSError:
        pass
    return [*env, f"HOME={home}"]


def apply_rlimits(process: Process) -> None:
    if not process.rlimits:
        return
    import resource

    for rl in process.rlimits:
        which = getattr(resource, rl.type, None)
        if not isinstance(which, int):
            raise SyscallError("setrlimit", rl.type, 0, "unknown rlimit type")
        inf = resource.RLIM_INFINITY
        soft = inf if rl.soft >= 2**64 - 1 else rl.soft
        hard = inf if rl.hard >= 2**64 - 1 else rl.hard
        try:
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError) as exc:
            raise SyscallError(
                "setrlimit", rl.type, getattr(exc, "errno", 0) or 0, f"process.rlimits: {exc}"
            ) from exc


def set_oom_score_adj(value: int) -> None:
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as exc:
        detail = "process.oomScoreAdj"
        if exc.errno == 13:  # EACCES: lowering the score takes CAP_SYS_RESOURCE
            detail += f" {value} is below the current score, which only root may lower"
        raise SyscallError("write", "/proc/self/oom_score_adj", exc.errno or 0, detail) from exc


def check_cwd_inside(cwd: str) -> None:
    """Refuse a cwd outside the container's root (CVE-2024-21626).

    A cwd such as /proc/self/fd/N follows an fd still open in this process, which may be
    a host directory the caller leaked to the runtime. getcwd(2) then has no path below
    our root and returns "(unreachable)/..." (glibc: ENOENT), as runc checks.
    """
    try:
        where = os.getcwd()
    except OSError:
        where = ""
    if not where.startswith("/"):
        raise SyscallError(
            "chdir", cwd, 0, "process.cwd: the directory is outside the container's root"
        )


def prepare_process(
    cfg: Config, process: Process, compiled: object | None
) -> tuple[str, list[str], object | None]:
    """cwd, rlimits, oom score, credentials; returns the resolved program, its env and
    the seccomp filter still to be loaded at execve (None once it is in)."""
    try:
        os.makedirs(process.cwd, 0o755, exist_ok=True)
        os.chdir(process.cwd)
    except OSError as exc:
        raise SyscallError("chdir", process.cwd, exc.errno or 0, "process.cwd") from exc
    check_cwd_inside(process.cwd)
    apply_rlimits(process)
    if process.oom_score_adj is not None:
        set_oom_score_adj(process.oom_score_adj)
    env = with_home(process.env, process.user.uid)
    program = find_executable(process.args[0], env)
    # still with every capability: an execute-only script's #! line is readable
    refuse_runtime_executable(program)
    masks = None
    if process.capabilities is not None:
        masks = capabilities.to_masks(process.capabilities)
    if compiled is not None and not process.no_new_privileges:
        # Without no_new_privs, seccomp(2) needs CAP_SYS_ADMIN, which the drop below may
        # take away: install the filter now, as runc does. The profile must then allow
        # what follows (setresuid, capset, execve), also as with runc.
        load_seccomp(compiled)
        compiled = None
    capabilities.switch_credentials(process.user, masks)
    if process.no_new_privileges:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    return program, env, compiled


class SeccompSetupError(OciRuntimeError):
    pass


def prepare_seccomp(cfg: Config, cache_dir: str | None) -> object | None:
    """The seccomp part's first half, while the host's files are visible (before
    pivot_root or setns): load libseccomp and compile ``linux.seccomp``."""
    if cfg.seccomp is None:
        return None
    try:
        from pycontainers.runtime import seccomp
    except ImportError as exc:
        raise SeccompSetupError(f"seccomp is not available: {exc}") from exc
    try:
        return seccomp.prepare_filter(cfg.seccomp, cache_dir=cache_dir)
    except Exception as exc:
        raise SeccompSetupError(f"linux.seccomp: {exc}") from exc


def load_seccomp(compiled: object | None) -> None:
    """The second half: install the filter, the last step before execve (after
    no_new_privs), so the runtime's own setup is never filtered."""
    if compiled is None:
        return
    from pycontainers.runtime import seccomp

    assert isinstance(compiled, seccomp.CompiledFilter)
    try:
        seccomp.load_compiled(compiled)
    except Exception as exc:
        raise SeccompSetupError(f"linux.seccomp: {exc}") from exc


def exec_process(
    process: Process, program: str, env: list[str], compiled: object | None, preserve_fds: int = 0
) -> None:
    """The last steps: umask, signal dispositions, fds, seccomp, execve.

    Every fd from 3 on is closed at execve except the ``--preserve-fds`` ones (3, 4, ...
    as the caller passed them to the runtime, runc's convention).
    """
    umask = process.user.umask
    os.umask(0o022 if umask is None else umask)
    libc.reset_signals()
    for fd in range(3, 3 + preserve_fds):
        os.set_inheritable(fd, True)
    libc.close_range_cloexec(3 + preserve_fds)
    load_seccomp(compiled)
    try:
        os.execve(program, process.args, dict(e.split("=", 1) for e in env if "=" in e))
    except OSError as exc:
        raise ExecError(f'exec: "{process.args[0]}": {exc.strerror or exc}'.lower()) from exc


def preload(cfg: Config, process: Process) -> None:
    """Import now what the steps after pivot_root need: the host's Python library is not
    reachable from inside the new root."""
    if process.rlimits:
        __import__("resource")
    if cfg.hooks:
        __import__("pycontainers.runtime.hooks")
        __import__("subprocess")


def run(
    cfg: Config,
    ch: channel.Channel,
    fifo: int,
    no_pivot: bool,
    console: ConsoleSocket | None,
    seccomp_cache: str | None = None,
    preserve_fds: int = 0,
    listen_fds: int = 0,
    host_cgroups: dict[str, str] | None = None,
    rootless: bool = False,
    runtime_pidfd: int = -1,
    cgroups_made: channel.Gate | None = None,
) -> None:
    """Set up the container and exec its process; never returns (raises on failure).

    ``cgroups_made``: the runtime's word that the container's cgroup directories exist,
    awaited before a cgroup mount binds them. The runtime has called ``preload`` before
    forking us."""
    process = cfg.process
    assert process is not None
    os.setsid()
    # hooks run while we are still the host's python: keep /proc/1/exe closed to them
    libc.prctl(libc.PR_SET_DUMPABLE, 0)
    compiled = prepare_seccomp(cfg, seccomp_cache)
    if cfg.namespace("uts") is not None:
        if cfg.hostname:
            libc.sethostname(cfg.hostname)
        if cfg.domainname:
            libc.setdomainname(cfg.domainname)
    os.umask(0)

    def before_pivot() -> None:
        if cfg.hooks:
            # The runtime runs prestart/createRuntime hooks in its namespaces now, and
            # answers with the state the container's own hooks get on stdin.
            ch.send("hooks")
            ch.expect("go")
        if cfg.hooks.get("createContainer"):
            from pycontainers.runtime import hooks

            hooks.run_hooks("createContainer", cfg.hooks["createContainer"], ch.state)

    rootfs.prepare(
        cfg,
        before_pivot=before_pivot,
        no_pivot=no_pivot,
        host_cgroups=host_cgroups,
        rootless=rootless,
        before_cgroup_mount=cgroups_made,
    )
    rootfs.finish(cfg)
    if TRACE:
        TRACE[0](f"init: rootfs {cfg.root_path} is / ({'chroot' if no_pivot else 'pivot_root'})")
    if console is not None:
        console.attach(process)
    program, env, compiled = prepare_process(cfg, process, compiled)
    if listen_fds:
        env = [*env, f"LISTEN_FDS={listen_fds}", "LISTEN_PID=1"]
    if TRACE:
        TRACE[0](f"init: ready to exec {program}")
    ch.send("ready")
    # Only once the runtime has saved the state may we wait on the fifo: if it dies
    # before that (EOF here), nobody could ever start or delete this container.
    try:
        mode = ch.expect("commit")
    except ChannelClosed:
        raise OciRuntimeError(
            "the runtime exited before it saved the container's state: the init gives up"
        ) from None
    wake = -1
    if mode == "exit":
        # `run --detach` under systemd: we start once the runtime has exited (EOF), so
        # our program cannot end before systemd has taken us as the unit's main process
        ch.recv()
        ch.close()
        if runtime_pidfd >= 0:
            # EOF comes as the runtime closes its files on the way out; it leaves the
            # unit's cgroup only later, when its pidfd turns readable
            poller = __import__("select").poll()
            poller.register(runtime_pidfd, 1)  # POLLIN
            poller.poll()
            os.close(runtime_pidfd)
    elif mode == "now":
        # foreground `run`: no `start` comes; the runtime learns of the execve from the
        # EOF of our end of the channel (O_CLOEXEC), or of a failure from its message
        ch.close_read()
    else:
        ch.close()
        # Blocks until `start` opens the fifo for reading (or the container is deleted).
        # The write end stays open until execve closes it (O_CLOEXEC): `start` reads to
        # EOF, so poststart hooks run only once the container's program is running.
        wake = os.open(f"/proc/self/fd/{fifo}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(wake, b"0")
    if fifo >= 0:
        os.close(fifo)
    if TRACE:
        TRACE[0]("init: started")
    try:
        if cfg.hooks.get("startContainer"):
            from pycontainers.runtime import hooks

            hooks.run_hooks("startContainer", cfg.hooks["startContainer"], ch.state)
        exec_process(process, program, env, compiled, listen_fds + preserve_fds)
    except BaseException as exc:
        # The setup channel is closed by now (but with "now"): `start` gets the failure
        # through the fifo (without a `start`, or if it is gone, our stderr has it: the
        # container's, which is the caller's, or the unit's journal).
        if mode == "now":
            ch.send_error(describe(exc))
        else:
            report_late_failure(wake, describe(exc))
        os._exit(1)


def report_late_failure(wake: int, message: str) -> None:
    if wake >= 0:
        # exec_process gave SIGPIPE its default back: a reader gone must not kill us
        _signal = __import__("_signal")
        _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
        try:
            os.write(wake, b"E" + message.encode(errors="replace")[:3000])
            return
        except OSError:
            pass
    channel.report_on_stderr(message)
