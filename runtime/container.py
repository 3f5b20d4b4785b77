"""The lifecycle verbs: create, start, kill, delete, and run (= create + start + wait).

Each verb loads the state, checks the status predicate (``can_start`` ...), acts, and
saves atomically. ``create`` forks the init directly when it can (``_launch_init``: one
Python fork, the runtime's cgroup work overlapping the init's setup) and like runc's
nsexec otherwise (``_launch_via_intermediate``: an intermediate child enters the
namespaces, a new PID namespace only applies to children, and forks the init).
"""

from __future__ import annotations

import errno
import os
import time

from pycontainers.runtime import cgroup_prewarm, state
from pycontainers.runtime import config as configmod
from pycontainers.runtime import jsonfast as json
from pycontainers.runtime.channel import Channel, Gate
from pycontainers.runtime.errors import (
    TRACE,
    ConfigError,
    ContainerExists,
    IncorrectStatus,
    OciRuntimeError,
    StateError,
    SyscallError,
    describe,
)
from pycontainers.runtime.state import ContainerState, ContainerStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontainers.runtime.cgroups import CgroupManager
    from pycontainers.runtime.console import ConsoleSocket

# setns order: the user namespace first (it owns the others), mount last (after it the
# other namespace paths may no longer be reachable).
_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")
STOP_TIMEOUT = 10.0
# SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGWINCH (same numbers on x86_64
# and aarch64): what a foreground `run` passes on to the container, as runc does.
FORWARDED_SIGNALS = (1, 2, 3, 10, 12, 15, 28)


class CgroupSetupError(OciRuntimeError):
    pass


class CreateOptions:
    __slots__ = (
        "console_socket",
        "listen_fds",
        "no_pivot",
        "pid_file",
        "preserve_fds",
        "release_on_exit",
        "seccomp_cache",
        "start_now",
        "subreaper",
    )

    def __init__(
        self,
        pid_file: str | None = None,
        console_socket: str | None = None,
        no_pivot: bool = False,
        preserve_fds: int = 0,
    ) -> None:
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.preserve_fds = preserve_fds
        self.listen_fds = 0  # systemd's socket-activation fds, passed before preserve_fds
        # compiled seccomp programs, under --root (only root can write there)
        self.seccomp_cache: str | None = None
        self.subreaper = False  # become the init's parent when the intermediate exits
        # the init starts its program once this process has exited (see _hand_off)
        self.release_on_exit = False
        # the init starts its program as soon as the state is saved (foreground run: no
        # exec.fifo, no separate `start`; see _create)
        self.start_now = False


def _cgroup_manager(
    cfg: configmod.Config, st: ContainerState, launch: _Launch, limits: bool
) -> CgroupManager:
    """Create the container's cgroups (and with ``limits``, apply them too).

    The "creating" state names them before the first mkdir, and ``launch`` holds the
    manager from then on: a failure from here on removes whatever was made.
    """
    from pycontainers.runtime import cgroups

    try:
        manager = cgroups.manager_for(cfg.cgroups_path, st.id, rootless=os.geteuid() != 0)
        launch.manager = manager
        _save_creating(st, manager.paths())
        manager.create()
    except cgroups.CgroupError as exc:
        raise CgroupSetupError(f"cgroup: {exc}") from exc
    if manager.paths():
        # the directories exist (a mkdir waits for the lock the warm-up holds): warm the
        # attach lock now, if it is not warming yet (see cgroup_prewarm)
        cgroup_prewarm.start()
    if limits:
        _apply_limits(manager, cfg)
    return manager


def _apply_limits(manager: CgroupManager, cfg: configmod.Config) -> None:
    """linux.resources and the device rules: before the container's program runs."""
    from pycontainers.runtime import cgroups

    linux = cfg.raw.get("linux")
    devices = linux.get("devices") if isinstance(linux, dict) else None
    try:
        manager.apply(cfg.resources, devices if isinstance(devices, list) else ())
    except cgroups.CgroupError as exc:
        raise CgroupSetupError(f"cgroup: {exc}") from exc


def _remove_empty_cgroups(st: ContainerState) -> dict[str, str]:
    """Fast path of delete: rmdir the container's cgroups that are empty leaves.

    A stopped container's cgroups usually are, and then there is no need to load the
    cgroup part at all (its import costs more than the rest of `delete`). Returns the
    directories still there (busy, or with children): the cgroup manager's destroy()
    takes those over.
    """
    paths = st.data.get("cgroup_paths")
    left: dict[str, str] = {}
    if not isinstance(paths, dict):
        return left
    for key, directory in paths.items():
        try:
            os.rmdir(str(directory))
        except FileNotFoundError:
            continue
        except OSError:
            left[str(key)] = str(directory)
    return left


def _cgroup_from_state(
    st: ContainerState, paths: dict[str, str] | None = None
) -> CgroupManager | None:
    if paths is None:
        saved = st.data.get("cgroup_paths")
        paths = saved if isinstance(saved, dict) else {}
    if not paths:
        return None
    from pycontainers.runtime import cgroups

    return cgroups.CgroupManager.from_paths(paths, rootless=os.geteuid() != 0)


def _write_id_maps(pid: int, cfg: configmod.Config) -> None:
    """Write the child's uid/gid maps from the parent namespace (user_namespaces(7)).

    As root: directly. Unprivileged: a map of just our own uid/gid directly too (after
    denying setgroups, which the kernel requires then), anything larger through the
    setuid helpers newuidmap/newgidmap and the user's /etc/subuid and /etc/subgid.
    """
    uid_maps, gid_maps = cfg.uid_mappings, cfg.gid_mappings
    own = (
        len(uid_maps) == 1 and uid_maps[0].host_id == os.geteuid() and uid_maps[0].size == 1
        and len(gid_maps) <= 1
        and all(m.host_id == os.getegid() and m.size == 1 for m in gid_maps)
    )  # fmt: skip
    if os.geteuid() != 0 and not own:
        _newidmap("newuidmap", pid, uid_maps)
        _newidmap("newgidmap", pid, gid_maps)
        return
    name = ""
    try:
        if os.geteuid() != 0 and gid_maps:
            name = "setgroups"
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
            if not maps:
                continue
            text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
    except OSError as exc:
        raise SyscallError("write", f"/proc/{pid}/{name}", exc.errno or 0) from exc


def _newidmap(tool: str, pid: int, maps: list[configmod.IdMapping]) -> None:
    if not maps:
        return
    import subprocess

    argv = [tool, str(pid)]
    for m in maps:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SyscallError("exec", tool, exc.errno or 0, "install uidmap") from exc
    if done.returncode != 0:
        raise OciRuntimeError(
            f"{tool} {pid}: {done.stderr.strip() or f'exit status {done.returncode}'}"
            " (are the ranges in /etc/subuid and /etc/subgid?)"
        )


def _host_id(maps: list[configmod.IdMapping], container_id: int) -> int:
    """The host id that ``container_id`` maps to (-1 = unchanged, for chown)."""
    for m in maps:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    return -1


def _namespace_flags() -> dict[str, int]:
    from pycontainers.runtime import libc

    return {
        "pid": libc.CLONE_NEWPID,
        "network": libc.CLONE_NEWNET,
        "mount": libc.CLONE_NEWNS,
        "ipc": libc.CLONE_NEWIPC,
        "uts": libc.CLONE_NEWUTS,
        "user": libc.CLONE_NEWUSER,
        "cgroup": libc.CLONE_NEWCGROUP,
        "time": libc.CLONE_NEWTIME,
    }


def _enter_namespaces(
    cfg: configmod.Config,
    ch: Channel,
    *,
    pid_done: bool = False,
    await_cgroup: bool = False,
    cgroups_made: Gate | None = None,
) -> None:
    """Join the namespaces given by path, then unshare the new ones.

    In the intermediate child; or in the init itself when the runtime forked it
    directly (``pid_done``: the runtime already chose its PID namespace). With
    ``await_cgroup``, the new cgroup namespace comes last, once the runtime says the init
    is in its cgroups ("placed"): the namespace's root is the cgroup it is in then.
    """
    # libc (ctypes) is imported where it is used: start, state, kill and delete need none
    from pycontainers.runtime import libc

    flag_of = _namespace_flags()
    joins = []
    for kind in _JOIN_ORDER:
        if pid_done and kind == "pid":
            continue
        ns = cfg.namespace(kind)
        if ns is not None and ns.path:
            try:
                joins.append((os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC), kind, ns.path))
            except OSError as exc:
                raise SyscallError(
                    "open namespace", ns.path, exc.errno or 0, f"linux.namespaces {kind}"
                ) from exc
    for fd, kind, path in joins:
        libc.setns(fd, flag_of[kind], path)
        os.close(fd)
    new = [ns.type for ns in cfg.namespaces if not ns.path]
    if "user" in new:
        libc.unshare(libc.CLONE_NEWUSER)
        ch.send("userns")
        ch.expect("go")
    if cfg.namespace("user") is not None:
        # Become the namespace's root: our host ids are not mapped in it, and files
        # created with unmapped ids fail with EOVERFLOW (user_namespaces(7)).
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    flags = 0
    for kind in new:
        if kind != "user" and not (pid_done and kind == "pid"):
            flags |= flag_of[kind]
    if await_cgroup:
        flags &= ~libc.CLONE_NEWCGROUP
    if flags:
        libc.unshare(flags)
    if await_cgroup:
        if cgroups_made is not None:
            cgroups_made()
        ch.send("place")
        ch.expect("placed")
        libc.unshare(libc.CLONE_NEWCGROUP)


def _child_main(
    cfg: configmod.Config,
    ch: Channel,
    parent: Channel,
    container_id: str,
    fifo: str | None,
    opts: CreateOptions,
    manager: CgroupManager | None,
    placed: CgroupManager | None,
) -> None:
    """The intermediate child (see _launch_via_intermediate); exits, never returns.

    It moves itself into ``manager``'s cgroups; ``placed`` are the cgroups the runtime
    moves the init into instead (see create).
    """
    parent.close()
    code = 1
    try:
        if manager is not None:
            manager.add_pid(os.getpid())
        console = None
        if opts.console_socket:
            from pycontainers.runtime.console import ConsoleSocket

            console = ConsoleSocket.connect(opts.console_socket)
        # Opened here, before any namespace change: the state directory is private to the
        # host's root, and a user-namespaced init could not reach it by path.
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC) if fifo else -1
        from pycontainers.runtime import rootfs

        host_cgroups = rootfs.own_cgroups()  # the host's view, before a new cgroup namespace
        if placed is not None:
            host_cgroups = placed.as_proc_cgroup(host_cgroups)  # where the runtime moves init
        rootless = os.geteuid() != 0  # before we become the user namespace's root
        runtime_pidfd = -1
        if opts.release_on_exit:
            # a handle on the runtime that the init can wait on from inside its new PID
            # namespace, where the runtime's pid means nothing (see _hand_off)
            try:  # noqa: SIM105 (contextlib costs import time)
                runtime_pidfd = os.pidfd_open(os.getppid())
            except OSError:
                pass  # before Linux 5.3: the init waits for the channel's EOF only
        _enter_namespaces(cfg, ch)
        if TRACE:
            TRACE[0](f"intermediate: namespaces {' '.join(ns.type for ns in cfg.namespaces)}")
        pid = os.fork()
        if pid == 0:
            _become_init(cfg, ch, fifo_fd, console, opts, host_cgroups, rootless, runtime_pidfd)
        ch.send("pid", str(pid))
        code = 0
    except BaseException as exc:
        ch.send_error(describe(exc))
    finally:
        os._exit(code)


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        _wait_gone(pid, None, STOP_TIMEOUT)


def _wait_gone(pid: int, start_time: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        now = state.process_start_time(pid)
        if now is None or (start_time is not None and now != start_time):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)


def create(root: str, container_id: str, bundle: str, opts: CreateOptions) -> ContainerState:
    """Set up the container and leave its init waiting for `start`; prints nothing."""
    return _create(root, container_id, bundle, opts)[0]


class _Launch:
    """What a create has started so far: what a failure must undo."""

    __slots__ = ("channel", "init_pid", "manager", "middle")

    def __init__(self) -> None:
        self.init_pid = 0
        self.middle = 0
        self.manager: CgroupManager | None = None
        self.channel: Channel | None = None


def _create(
    root: str, container_id: str, bundle: str, opts: CreateOptions
) -> tuple[ContainerState, Channel | None]:
    """create; with ``opts.start_now`` also returns the setup channel, whose EOF says the
    init has exec'd its program (an ``error`` message instead: it failed)."""
    cfg = configmod.load(bundle)
    if cfg.process is None:
        raise ConfigError(
            os.path.join(cfg.bundle, "config.json"), "process", "is required to create a container"
        )
    if not state.valid_id(container_id):
        raise StateError(f"invalid container id {container_id!r}: use letters, digits, _+-.")
    if cfg.process.terminal and not opts.console_socket:
        raise ConfigError(
            os.path.join(cfg.bundle, "config.json"), "process.terminal", "needs --console-socket"
        )
    if cfg.hooks.get("poststart"):
        opts.release_on_exit = False  # they run once the program runs: `start` waits for that
    direct = cfg.namespace("user") is None and not opts.release_on_exit
    if direct and os.geteuid() == 0:
        # as early as can be: the cgroups are made after the fork, while the wait goes on
        # (through an intermediate child they are made first, and the warm-up after them)
        cgroup_prewarm.start()
    os.makedirs(root, 0o700, exist_ok=True)
    if cfg.seccomp is not None and opts.seccomp_cache is None and os.geteuid() == 0:
        opts.seccomp_cache = os.path.join(root, ".seccomp-cache")
        os.makedirs(opts.seccomp_cache, 0o700, exist_ok=True)
    st = ContainerState(root, container_id, {})
    try:
        os.mkdir(st.dir, 0o700)
    except FileExistsError:
        raise ContainerExists(container_id) from None
    mode = "now" if opts.start_now else "exit" if opts.release_on_exit else ""
    launch = _Launch()
    try:
        fifo = None
        if not mode:
            fifo = st.fifo
            old_umask = os.umask(0)
            try:
                os.mkfifo(fifo, 0o622)
            finally:
                os.umask(old_umask)
            if cfg.namespace("user") is not None:
                os.chown(fifo, _host_id(cfg.uid_mappings, 0), _host_id(cfg.gid_mappings, 0))
        st.data = {
            "id": container_id,
            "pid": 0,
            "bundle": cfg.bundle,
            "rootfs": cfg.root_path,
            "created": state.timestamp(),
            "owner": "",
            "config": cfg.raw,
        }
        if direct:
            _launch_init(cfg, st, fifo, opts, launch)
        else:
            _launch_via_intermediate(cfg, st, fifo, opts, launch)
        parent = launch.channel
        assert parent is not None
        try:
            init_pid = _setup_dialogue(parent, launch.middle, cfg, st, launch)
            if "_PYCONTAINERS_RUNTIME_DIE_BEFORE_COMMIT" in os.environ:
                os.kill(os.getpid(), 9)  # tests: a create killed between ready and commit
            if opts.pid_file:
                st.data["pid_file"] = os.path.abspath(opts.pid_file)
            st.save()
            if opts.pid_file:
                _write_pid_file(opts.pid_file, init_pid)
            # the init waits for this before it blocks on the fifo (see init.run); with
            # "exit" it then waits until our end of the channel closes, at our exit; with
            # "now" it execs at once
            parent.send("commit", mode)
            if TRACE:
                TRACE[0](f"create {container_id}: state saved, init {init_pid} ({mode or 'fifo'})")
        finally:
            if not mode or launch.init_pid == 0:
                parent.close()
            elif mode == "now":
                parent.close_write()
            if launch.middle:
                _reap(launch.middle)
    except BaseException:
        if launch.channel is not None:
            launch.channel.close()
        if launch.init_pid:
            _kill_and_reap(launch.init_pid)
        _remove_state(st, launch.manager)
        raise
    return st, parent if mode == "now" else None


def _save_creating(st: ContainerState, cgroup_paths: dict[str, str]) -> None:
    """What a create killed from here on leaves must be deletable: the cgroups' places,
    and "creating" until the full state replaces it."""
    st.data["cgroup_paths"] = cgroup_paths
    creating = {
        "id": st.id,
        "creating": True,
        "bundle": st.data["bundle"],
        "cgroup_paths": cgroup_paths,
    }
    ContainerState(st.root, st.id, creating).save()


def _launch_init(
    cfg: configmod.Config,
    st: ContainerState,
    fifo: str | None,
    opts: CreateOptions,
    launch: _Launch,
) -> None:
    """Fork the init directly (no user namespace): one Python fork, not runc's two.

    A new PID namespace applies to children only, so this process unshares it (or joins
    one by path) just for the fork and then returns to its own; the init enters the other
    namespaces itself. The cgroup directories are made and limited, and the init moved
    into them, while the init sets up its namespaces and mounts (it waits for "made"
    only before it binds the directories, or before it asks to be placed in them to
    unshare a new cgroup namespace): the kernel's wait on a first cgroup attach (see
    cgroup_prewarm, started before the config was read) and the cgroup work overlap the
    init's work on the other CPU.
    """
    from pycontainers.runtime import init, libc, rootfs

    # What the init needs, imported before the fork: in the child every new object and
    # refcount lands on copy-on-write pages, which makes imports there several times slower.
    assert cfg.process is not None
    init.preload(cfg, cfg.process)
    rootfs.snapshot_mounts()
    ns = cfg.namespace("cgroup")
    await_cgroup = ns is not None and not ns.path
    made = await_cgroup or any(m.type == "cgroup" for m in cfg.mounts)
    pidns = cfg.namespace("pid")
    own_pidns = -1
    parent, child = Channel.pair()
    launch.channel = parent
    if TRACE:
        TRACE[0](f"create {st.id}: config {cfg.bundle}/config.json")
    if pidns is not None:
        own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if pidns is not None and pidns.path:
            try:
                target = os.open(pidns.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise SyscallError(
                    "open namespace", pidns.path, exc.errno or 0, "linux.namespaces pid"
                ) from exc
            try:
                libc.setns(target, libc.CLONE_NEWPID, pidns.path)
            finally:
                os.close(target)
        elif pidns is not None:
            libc.unshare(libc.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            host_cgroups: dict[str, str] = {}  # filled in by "made"
            gate = Gate(child, "made", made, host_cgroups)
            _init_main(cfg, child, parent, fifo, opts, host_cgroups, await_cgroup, gate)
    finally:
        rootfs.forget_mounts()
        if own_pidns >= 0:
            libc.setns(own_pidns, libc.CLONE_NEWPID, "/proc/self/ns/pid")
            os.close(own_pidns)
    launch.init_pid = pid
    if TRACE:
        TRACE[0](f"create {st.id}: init pid {pid}")
    child.close()
    st.data["pid"] = pid
    st.data["pid_start"] = state.process_start_time(pid)
    manager = _cgroup_manager(cfg, st, launch, limits=False)
    if TRACE:
        TRACE[0](f"create {st.id}: cgroups {' '.join(sorted(set(manager.paths().values())))}")
    if made:
        # where the init will be, as its own /proc/self/cgroup will say (cgroup mounts)
        try:  # noqa: SIM105 (contextlib costs import time)
            parent.send("made", json.dumps(manager.as_proc_cgroup(rootfs.own_cgroups())))
        except BrokenPipeError:
            pass  # the init failed already: _setup_dialogue reads why
    _apply_limits(manager, cfg)
    try:
        _move_init(manager, pid)
    finally:
        cgroup_prewarm.stop()
    if TRACE:
        TRACE[0](f"create {st.id}: init {pid} moved into its cgroups")


def _init_main(
    cfg: configmod.Config,
    ch: Channel,
    parent: Channel,
    fifo: str | None,
    opts: CreateOptions,
    host_cgroups: dict[str, str],
    await_cgroup: bool,
    cgroups_made: Gate,
) -> None:
    """The init forked directly by the runtime; never returns."""
    parent.close()
    try:
        console = None
        if opts.console_socket:
            from pycontainers.runtime.console import ConsoleSocket

            console = ConsoleSocket.connect(opts.console_socket)
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC) if fifo else -1
        _enter_namespaces(
            cfg, ch, pid_done=True, await_cgroup=await_cgroup, cgroups_made=cgroups_made
        )
        if TRACE:
            TRACE[0](f"init: namespaces {' '.join(ns.type for ns in cfg.namespaces)}")
        _become_init(cfg, ch, fifo_fd, console, opts, host_cgroups, False, -1, cgroups_made)
    except BaseException as exc:
        ch.send_error(describe(exc))
    finally:
        os._exit(1)


def _become_init(
    cfg: configmod.Config,
    ch: Channel,
    fifo_fd: int,
    console: ConsoleSocket | None,
    opts: CreateOptions,
    host_cgroups: dict[str, str],
    rootless: bool,
    runtime_pidfd: int = -1,
    cgroups_made: Gate | None = None,
) -> None:
    """The init, in its namespaces: set up and exec (init.run), or report why not up the
    channel; exits, never returns."""
    try:
        from pycontainers.runtime import init

        init.run(
            cfg,
            ch,
            fifo_fd,
            opts.no_pivot,
            console,
            opts.seccomp_cache,
            opts.preserve_fds,
            opts.listen_fds,
            host_cgroups,
            rootless,
            runtime_pidfd,
            cgroups_made=cgroups_made,
        )
    except BaseException as exc:
        ch.send_error(describe(exc))
    finally:
        os._exit(1)


def _launch_via_intermediate(
    cfg: configmod.Config,
    st: ContainerState,
    fifo: str | None,
    opts: CreateOptions,
    launch: _Launch,
) -> None:
    """runc's way: an intermediate child enters or creates the namespaces (with a user
    namespace, the runtime writes its id maps) and forks the init into them.

    Needed with a user namespace (it must own the PID namespace), and for the systemd
    hand-off (see _hand_off): systemd watches a MAINPID as its own child only if it is
    one when told, and the init becomes systemd's child when the intermediate exits.
    """
    # Who moves into the cgroups: with a new cgroup namespace the intermediate child
    # itself, before unsharing (the namespace's root is the cgroup it is in then);
    # otherwise this process writes the limits and moves the init while the init sets
    # up its rootfs, so that work and the kernel's attach wait overlap it.
    ns = cfg.namespace("cgroup")
    child_moves = ns is not None and not ns.path
    manager = _cgroup_manager(cfg, st, launch, limits=child_moves)
    parent, child = Channel.pair()
    launch.channel = parent
    if TRACE:
        TRACE[0](
            f"create {st.id}: config {cfg.bundle}/config.json,"
            f" cgroups {' '.join(sorted(set(manager.paths().values())))}"
        )
    if opts.subreaper:
        from pycontainers.runtime import libc

        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    # as in _launch_init: what the children need, before the fork
    from pycontainers.runtime import init, rootfs

    assert cfg.process is not None
    init.preload(cfg, cfg.process)
    rootfs.snapshot_mounts()
    try:
        middle = os.fork()
        if middle == 0:
            _child_main(
                cfg,
                child,
                parent,
                st.id,
                fifo,
                opts,
                manager if child_moves else None,
                None if child_moves else manager,
            )
    finally:
        rootfs.forget_mounts()
    launch.middle = middle
    cgroup_prewarm.stop()
    child.close()


def _setup_dialogue(
    ch: Channel,
    middle: int,
    cfg: configmod.Config,
    st: ContainerState,
    launch: _Launch,
) -> int:
    """Serve the children's requests until the init reports ``ready``; returns its pid.

    Through an intermediate child (``middle``) the init's pid comes as a message; then,
    without a new cgroup namespace, its limits are applied and it is moved into its
    cgroups at once (an init forked directly is in them already). Either way that is
    before any request is served (hooks) and before ``ready``: until then the init
    only mounts, and it forks nothing.
    """
    init_pid = launch.init_pid
    ns = cfg.namespace("cgroup")
    we_move = middle and not (ns is not None and not ns.path)
    pending: list[str] = []
    while True:
        msg = ch.recv()
        if msg is None:
            raise OciRuntimeError("container init exited during setup without a message")
        kind, payload = msg
        if kind == "error":
            if init_pid:
                _kill_and_reap(init_pid)
                launch.init_pid = 0
            raise OciRuntimeError(json.loads(payload))
        if kind == "userns":
            if TRACE:
                TRACE[0](f"create {st.id}: writing the id maps of {middle}")
            _write_id_maps(middle, cfg)
            ch.send("go")
            continue
        if kind == "pid":
            init_pid = int(payload)
            launch.init_pid = init_pid
            if TRACE:
                TRACE[0](f"create {st.id}: init pid {init_pid}")
            st.data["pid"] = init_pid
            st.data["pid_start"] = state.process_start_time(init_pid)
            if we_move and launch.manager is not None:
                _apply_limits(launch.manager, cfg)
                _move_init(launch.manager, init_pid)
            continue
        if kind == "place":
            try:  # noqa: SIM105 (contextlib costs import time)
                ch.send("placed")
            except BrokenPipeError:
                pass  # the init failed: its message follows
        else:
            pending.append(kind)
        while init_pid and pending:
            kind = pending.pop(0)
            if kind == "hooks":
                from pycontainers.runtime import hooks

                doc = dict(st.oci_state(), status=ContainerStatus.CREATING.value, pid=init_pid)
                if TRACE:
                    TRACE[0](f"create {st.id}: prestart and createRuntime hooks")
                hooks.run_hooks("prestart", cfg.hooks.get("prestart", []), doc)
                hooks.run_hooks("createRuntime", cfg.hooks.get("createRuntime", []), doc)
                ch.send("go", json.dumps(dict(doc, status=ContainerStatus.CREATED.value)))
            elif kind == "ready":
                if TRACE:
                    TRACE[0](f"create {st.id}: init ready")
                return init_pid


def _move_init(manager: CgroupManager, pid: int) -> None:
    from pycontainers.runtime import cgroups

    try:
        manager.add_pid(pid)
    except cgroups.CgroupError as exc:
        if state.process_start_time(pid) is not None:
            raise CgroupSetupError(f"cgroup: {exc}") from exc
        # the init died during setup: its own error message follows on the channel


def _reap(pid: int) -> None:
    try:  # noqa: SIM105 (contextlib costs import time)
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _remove_state(st: ContainerState, manager: CgroupManager | None) -> None:
    if manager is not None:
        try:
            manager.destroy()
        except Exception as exc:
            raise CgroupSetupError(f"cgroup: {exc}") from exc
    pid_file = st.data.get("pid_file")
    if isinstance(pid_file, str):
        # only our own pid file: if someone rewrote it since, it is no longer ours
        try:
            with open(pid_file) as f:
                ours = f.read().strip() == str(st.pid)
            if ours:
                os.unlink(pid_file)
        except OSError:
            pass
    for name in os.listdir(st.dir) if os.path.isdir(st.dir) else ():
        os.unlink(os.path.join(st.dir, name))
    try:  # noqa: SIM105 (contextlib costs import time)
        os.rmdir(st.dir)
    except FileNotFoundError:
        pass


def start(root: str, container_id: str, notify: bool = True) -> ContainerState:
    """Release the init from exec.fifo; then poststart hooks and (with ``notify``) the
    systemd notification that makes the init the unit's main process."""
    st = state.load(root, container_id)
    status = st.status()
    if not status.can_start():
        raise IncorrectStatus(container_id, status.value, "start")
    try:
        fd = os.open(st.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise IncorrectStatus(container_id, "running", "start") from None
    try:
        import select

        poller = select.poll()
        poller.register(fd, select.POLLIN)
        woken = False
        received = b""
        while True:
            if poller.poll(100):
                data = os.read(fd, 4096)
                if data:
                    woken = True
                    received += data
                    continue
                if woken:
                    break  # EOF: the init exec'd the program (or died trying)
            if not st.init_alive():
                if woken:
                    break
                raise OciRuntimeError(f"container {container_id!r}: init exited before start")
    finally:
        os.close(fd)
    try:  # noqa: SIM105 (contextlib costs import time)
        os.unlink(st.fifo)
    except FileNotFoundError:
        pass
    if received[1:2] == b"E":
        # the init failed between the wake-up and execve (startContainer hook, exec)
        raise OciRuntimeError(received[2:].decode(errors="replace"))
    if TRACE:
        TRACE[0](f"start {container_id}: init {st.pid} exec'd the program")
    _started(st, notify)
    return st


def _started(st: ContainerState, notify: bool) -> None:
    """After the program's execve: poststart hooks, then (with ``notify``) the systemd
    notification that makes the init the unit's main process."""
    poststart = _hooks_of(st, "poststart")
    if poststart:
        from pycontainers.runtime import hooks

        try:
            hooks.run_hooks("poststart", poststart, st.oci_state())
        except OciRuntimeError as exc:
            # runtime-spec: a failing poststart hook is logged, the container keeps running
            warn(f"{exc}")
    if notify:
        from pycontainers.runtime import notify as sd_notify

        if sd_notify.notify_started(st.pid) and TRACE:
            TRACE[0](f"start {st.id}: systemd told MAINPID={st.pid} READY=1")


def warn(message: str) -> None:
    os.write(2, f"pycontainers-runtime: warning: {message}\n".encode())


def _hooks_of(st: ContainerState, kind: str) -> list[configmod.Hook]:
    raw = st.config.get("hooks")
    if not isinstance(raw, dict) or not raw.get(kind):
        return []
    return configmod.parse(
        {"ociVersion": "", "root": {"path": "/"}, "hooks": {kind: raw[kind]}}, st.bundle
    ).hooks.get(kind, [])


def parse_signal(text: str) -> int:
    """``9``, ``KILL``, ``SIGKILL`` or ``sigkill``, as runc accepts them."""
    import signal

    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise OciRuntimeError(f"unknown signal {text!r}") from None


def container_pids(st: ContainerState) -> list[int]:
    """The container's processes: its cgroup, else everything in the init's PID namespace."""
    manager = _cgroup_from_state(st)
    if manager is not None and manager.exists():
        return manager.pids()
    if not st.init_alive():
        return []
    pids = [st.pid]
    try:
        ns = os.readlink(f"/proc/{st.pid}/ns/pid")
        host = os.readlink("/proc/self/ns/pid")
    except OSError:
        return pids
    if ns == host:
        return pids
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != st.pid:
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def kill(root: str, container_id: str, signum: int, all_processes: bool = False) -> None:
    st = state.load(root, container_id)
    status = st.status()
    if not status.can_kill():
        raise IncorrectStatus(container_id, status.value, "kill")
    targets = container_pids(st) if all_processes else [st.pid]
    if TRACE:
        TRACE[0](f"kill {container_id}: signal {signum} to {targets}")
    for pid in targets:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            continue
        except OSError as exc:
            raise SyscallError("kill", str(pid), exc.errno or errno.EPERM) from exc


def delete(root: str, container_id: str, force: bool = False) -> None:
    """Stop what is left (created: always; running: with --force), then remove everything."""
    _delete(state.load(root, container_id), force)


def _delete(st: ContainerState, force: bool) -> None:
    container_id = st.id
    status = st.status()
    if status is ContainerStatus.RUNNING and not force:
        raise IncorrectStatus(container_id, status.value, "delete (use --force)")
    if status in (ContainerStatus.CREATED, ContainerStatus.RUNNING):
        for pid in container_pids(st):
            try:  # noqa: SIM105 (contextlib costs import time)
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        try:  # noqa: SIM105 (contextlib costs import time)
            os.waitpid(st.pid, 0)
        except ChildProcessError:
            pass
        if not _wait_gone(st.pid, st.data.get("pid_start"), STOP_TIMEOUT):
            raise OciRuntimeError(f"container {container_id!r}: init {st.pid} did not die")
    manager = _cgroup_from_state(st, _remove_empty_cgroups(st))
    if TRACE:
        TRACE[0](f"delete {container_id}: was {status.value}, busy cgroups {manager is not None}")
    poststop = _hooks_of(st, "poststop")
    _remove_state(st, manager)
    if poststop:
        from pycontainers.runtime import hooks

        doc = dict(st.oci_state(), status=ContainerStatus.STOPPED.value, pid=0)
        try:
            hooks.run_hooks("poststop", poststop, doc)
        except OciRuntimeError as exc:
            # runtime-spec: a failing poststop hook is logged, the delete still succeeds
            warn(f"{exc}")


def run(root: str, container_id: str, bundle: str, opts: CreateOptions, detach: bool) -> int:
    """create + start; in the foreground, also wait (forwarding signals) and delete."""
    under_systemd = bool(os.environ.get("NOTIFY_SOCKET"))
    if detach:
        opts.release_on_exit = under_systemd  # create may say no (poststart hooks)
        st = create(root, container_id, bundle, opts)
        try:
            if opts.release_on_exit:
                _hand_off(st)
            else:
                start(root, container_id)
        except BaseException as exc:
            _delete_after_failure(root, container_id, exc)
            raise
        return 0
    # The init is our child, or with a user namespace the intermediate's: as a subreaper
    # we inherit it when the intermediate exits, so we can wait for it either way.
    opts.subreaper = True
    opts.start_now = True
    st, channel = _create(root, container_id, bundle, opts)
    try:
        # _signal, not signal: the latter builds IntEnums at import (milliseconds per start);
        # the interpreter loaded _signal at startup, and importlib would cost its own import
        _signal = __import__("_signal")

        def forward(signum: int, _frame: object) -> None:
            try:  # noqa: SIM105 (contextlib costs import time)
                os.kill(st.pid, signum)
            except ProcessLookupError:
                pass

        for sig in FORWARDED_SIGNALS:
            _signal.signal(sig, forward)
        assert channel is not None
        try:
            msg = channel.recv()  # EOF: the init exec'd its program
        finally:
            channel.close()
        if msg is not None and msg[0] == "error":
            raise OciRuntimeError(json.loads(msg[1]))
        if TRACE:
            TRACE[0](f"run {container_id}: init {st.pid} exec'd the program")
        # we stay the unit's main process (its exit status is the container's): READY only
        _started(st, notify=False)
        if under_systemd:
            from pycontainers.runtime import notify

            notify.notify_message("READY=1")
        while True:
            pid, status = os.waitpid(-1, 0)
            if pid == st.pid:
                break
        code = _exit_code(status)
        if TRACE:
            TRACE[0](f"run {container_id}: init {st.pid} exited, status {code}")
    except BaseException as exc:
        _delete_after_failure(root, container_id, exc)
        raise
    _delete(st, force=True)  # the state as create saved it: no need to read it back
    if TRACE:
        TRACE[0](f"run {container_id}: deleted")
    return code


def _exit_code(wait_status: int) -> int:
    """A shell's convention: the exit status, or 128 + the signal that killed it."""
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status)
    return 128 + os.WTERMSIG(wait_status)


def _hand_off(st: ContainerState) -> int:
    """``run --detach`` in a Type=notify unit: make the init the unit's main process.

    systemd takes a MAINPID only while it is alive (and with READY=1 checks that again),
    and watches properly (stop signal, exit status) only a child of its own. So the
    hand-off happens while the init, already systemd's child (the intermediate has
    exited), still waits: for the end of our setup channel, then for our pidfd, that
    is until this process has exited. Only then does it start its program, so the
    program cannot exit while systemd handles MAINPID and READY, and we are gone before
    systemd may have to clean up after it. READY therefore comes a few milliseconds
    before the execve, and a failure there (startContainer hook, execve) ends the unit
    after it was active, with the message on the init's stderr (the unit's journal).
    """
    from pycontainers.runtime import notify

    notify.notify_started(st.pid)
    # no `start` will come (and there is no exec.fifo): the state says running already
    if TRACE:
        TRACE[0](f"run {st.id}: systemd told MAINPID={st.pid} READY=1; the init starts at our exit")
    return 0


def _delete_after_failure(root: str, container_id: str, failure: BaseException) -> None:
    """Clean up after a failed start without hiding why it failed."""
    try:
        delete(root, container_id, force=True)
    except Exception as exc:
        warn(f"cleaning up after the failure ({failure}): {describe(exc)}")
