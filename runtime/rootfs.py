"""The container's root filesystem: mounts, device nodes, pivot_root, masked/readonly paths.

Runs in the container's init, in its new mount namespace, before execve. Every mount
destination is resolved component by component inside the rootfs with O_PATH fds, and
the mount goes onto ``/proc/self/fd/N`` of the resolved fd (runc's fix for
CVE-2021-30465), so a symlink in the image can neither redirect a mount onto the host
nor be swapped in between the check and the mount.
"""

from __future__ import annotations

import errno
import os
import stat

from pycontainers.runtime import libc, mountopts
from pycontainers.runtime.config import Config, Device, Mount
from pycontainers.runtime.errors import MountError, SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MAX_SYMLINKS = 40
# Mount data ("lowerdir=...,upperdir=...,workdir=...") of an overlay to mount on root.path.
OVERLAY_ANNOTATION = "org.pycontainers.rootfs.overlay"
_O_PATH_DIR = os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW
_O_PATH = os.O_PATH | os.O_CLOEXEC
_BENEATH = libc.RESOLVE_BENEATH | libc.RESOLVE_NO_MAGICLINKS

# runc's default devices (runtime-spec "Default Devices"), created as nodes in /dev.
DEFAULT_DEVICES = (
    Device("/dev/null", "c", 1, 3, 0o666, 0, 0),
    Device("/dev/zero", "c", 1, 5, 0o666, 0, 0),
    Device("/dev/full", "c", 1, 7, 0o666, 0, 0),
    Device("/dev/random", "c", 1, 8, 0o666, 0, 0),
    Device("/dev/urandom", "c", 1, 9, 0o666, 0, 0),
    Device("/dev/tty", "c", 5, 0, 0o666, 0, 0),
)
DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def open_in_root(rootfd: int, path: str, *, create: str | None = None, mode: int = 0o755) -> int:
    """An O_PATH fd for ``path`` resolved inside the directory ``rootfd``.

    Symlinks are followed as the container will see them: an absolute target restarts
    at the rootfs, not at the host's /. A ``..`` that would climb above the rootfs is an
    error (an image that does this is hostile or broken). ``create`` is "dir" or "file"
    to create missing components (parents are always directories).

    The kernel resolves the common case in one openat2(RESOLVE_BENEATH) call, which
    refuses (EXDEV) anything that could leave ``rootfd``; what it refuses or cannot find
    (absolute symlinks, ``..`` at the top, missing parents) is walked component by
    component, which also decides what is an error.
    """
    rel = "/".join(_split(path)) or "."
    fd = libc.openat2_raw(rootfd, rel, _O_PATH, _BENEATH)
    if fd >= 0:
        return fd
    if fd == -errno.ENOENT and create is not None and rel != ".":
        fd = _create_last(rootfd, rel, create, mode)
        if fd >= 0:
            return fd
    return _walk_in_root(rootfd, path, create, mode)


def _create_last(rootfd: int, rel: str, create: str, mode: int) -> int:
    """Only the last component missing: create it beside its resolved parent."""
    parent, _, name = rel.rpartition("/")
    if name == "..":
        return -1
    pfd = libc.openat2_raw(rootfd, parent or ".", _O_PATH | os.O_DIRECTORY, _BENEATH)
    if pfd < 0:
        return pfd
    try:
        if create == "file":
            flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            os.close(os.open(name, flags, 0o644, dir_fd=pfd))
        else:
            os.mkdir(name, mode, dir_fd=pfd)
    except OSError:
        return -1  # a dangling symlink, a race: the walk sorts it out
    finally:
        os.close(pfd)
    return libc.openat2_raw(rootfd, rel, _O_PATH, _BENEATH)


def _walk_in_root(rootfd: int, path: str, create: str | None, mode: int) -> int:
    parts = _split(path)
    stack = [os.dup(rootfd)]
    links = 0
    try:
        while parts:
            name = parts.pop(0)
            if name == "..":
                if len(stack) == 1:
                    raise MountError(
                        "resolve", path, 0, "escapes the rootfs through '..' or a symlink"
                    )
                os.close(stack.pop())
                continue
            cur = stack[-1]
            try:
                st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                if create is None:
                    raise
                if not parts and create == "file":
                    os.close(
                        os.open(
                            name,
                            os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                            0o644,
                            dir_fd=cur,
                        )
                    )
                else:
                    os.mkdir(name, mode, dir_fd=cur)
                st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise MountError("resolve", path, errno.ELOOP)
                target = os.readlink(name, dir_fd=cur)
                if target.startswith("/"):
                    for fd in stack[1:]:
                        os.close(fd)
                    del stack[1:]
                parts[:0] = _split(target)
                continue
            if parts and not stat.S_ISDIR(st.st_mode):
                raise MountError("resolve", path, errno.ENOTDIR)
            stack.append(os.open(name, _O_PATH_DIR, dir_fd=cur))
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


class _Resolved:
    """Context manager: the resolved fd of a destination, closed afterwards."""

    def __init__(self, rootfd: int, path: str, create: str | None = None) -> None:
        try:
            self.fd = open_in_root(rootfd, path, create=create)
        except OSError as exc:
            raise MountError("resolve", path, exc.errno or 0, "inside the rootfs") from exc
        self.target = fd_path(self.fd)

    def __enter__(self) -> _Resolved:
        return self

    def __exit__(self, *_: object) -> None:
        os.close(self.fd)


def _remount_bind(rootfd: int, dest: str, flags: int) -> None:
    with _Resolved(rootfd, dest) as r:
        # Repeat the mount's current flags (the kernel refuses to drop locked ones), except
        # read-only: like runc, the options decide that (a bind copies the source's flags).
        keep = mountopts.flags_from_statvfs(os.statvfs(r.target).f_flag) & ~libc.MS_RDONLY
        flags |= keep
        libc.mount(None, r.target, None, libc.MS_BIND | libc.MS_REMOUNT | flags, None, dest)


def _set_propagation(rootfd: int, dest: str, propagation: list[int]) -> None:
    if not propagation:
        return
    with _Resolved(rootfd, dest) as r:
        for flag in propagation:
            libc.mount(None, r.target, None, flag, None, dest)


def mount_one(
    rootfd: int,
    m: Mount,
    bundle: str,
    host_cgroups: dict[str, str] | None = None,
    before_cgroup_mount: Callable[[], None] | None = None,
) -> None:
    opts = mountopts.parse(m.options, m.type)
    if m.type == "cgroup":
        if before_cgroup_mount is not None:
            before_cgroup_mount()
        _mount_cgroup(rootfd, m, opts, host_cgroups or own_cgroups())
        return
    if opts.is_bind:
        source = m.source if m.source.startswith("/") else os.path.join(bundle, m.source)
        try:
            is_dir = stat.S_ISDIR(os.stat(source).st_mode)
        except OSError as exc:
            raise MountError("bind", source, exc.errno or 0, f"source of {m.destination}") from exc
        with _Resolved(rootfd, m.destination, "dir" if is_dir else "file") as r:
            libc.mount(
                source,
                r.target,
                None,
                opts.flags & (libc.MS_BIND | libc.MS_REC),
                None,
                m.destination,
            )
        extra = opts.flags & ~(libc.MS_BIND | libc.MS_REC | libc.MS_REMOUNT)
        if extra:
            _remount_bind(rootfd, m.destination, extra)
    else:
        with _Resolved(rootfd, m.destination, "dir") as r:
            try:
                libc.mount(m.source, r.target, m.type, opts.flags, opts.data or None, m.destination)
            except MountError as exc:
                # sysfs can only be mounted in a network namespace we own; runc then
                # binds the host's /sys instead.
                if m.type != "sysfs" or exc.errno != errno.EPERM:
                    raise
                libc.mount("/sys", r.target, None, libc.MS_BIND | libc.MS_REC, None, m.destination)
                _remount_bind(rootfd, m.destination, opts.flags & ~libc.MS_REMOUNT)
    _set_propagation(rootfd, m.destination, opts.propagation)


def own_cgroups() -> dict[str, str]:
    """hierarchy name (controllers or name=) -> this process's cgroup path in it.

    Read it before unsharing the cgroup namespace: inside a new one every path is "/",
    while the bind mounts of the cgroup mount need the host's view.
    """
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            out[names] = path
    return out


def _mount_cgroup(rootfd: int, m: Mount, opts: mountopts.MountOptions, own: dict[str, str]) -> None:
    """cgroup2 when the host is pure v2; on v1/hybrid, runc's layout of bind mounts.

    On v1 runc mounts a tmpfs at the destination and bind-mounts, per hierarchy, the
    container's own cgroup directory of the host hierarchy under it.
    """
    flags = opts.flags & ~(libc.MS_BIND | libc.MS_REC | libc.MS_REMOUNT)
    if _fs_type("/sys/fs/cgroup") == "cgroup2":
        with _Resolved(rootfd, m.destination, "dir") as r:
            try:
                libc.mount("cgroup2", r.target, "cgroup2", flags, None, m.destination)
            except MountError:
                host = "/sys/fs/cgroup" + own.get("", "/")
                libc.mount(host, r.target, None, libc.MS_BIND | libc.MS_REC, None, m.destination)
                _remount_bind(rootfd, m.destination, flags)
        return
    with _Resolved(rootfd, m.destination, "dir") as r:
        libc.mount("tmpfs", r.target, "tmpfs", flags & ~libc.MS_RDONLY, "mode=755", m.destination)
    for mountpoint, fstype, super_opts in _host_cgroup_mounts():
        name = os.path.basename(mountpoint)
        key = "" if fstype == "cgroup2" else _hierarchy_key(super_opts, own)
        sub = own.get(key, "/") if key is not None else "/"
        dest = f"{m.destination}/{name}"
        with _Resolved(rootfd, dest, "dir") as r:
            libc.mount(mountpoint + sub, r.target, None, libc.MS_BIND | libc.MS_REC, None, dest)
        _remount_bind(rootfd, dest, flags | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
    # runc leaves the tmpfs itself writable (only the hierarchies are read-only); so do we.


def _hierarchy_key(super_opts: str, own: dict[str, str]) -> str | None:
    words = set(super_opts.split(","))
    for key in own:
        if key and set(key.split(",")) <= words:
            return key
    return None


def _fs_type(path: str) -> str:
    best, fstype = "", ""
    for fields in _mount_table():
        point = fields[4]
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, fstype = point, fields[fields.index("-") + 1]
    return fstype


def _host_cgroup_mounts() -> list[tuple[str, str, str]]:
    """Visible cgroup mounts: a later mount on or above a path hides the earlier ones."""
    visible: dict[str, tuple[str, str, str]] = {}
    for fields in _mount_table():
        point = fields[4]
        for hidden in [p for p in visible if p == point or p.startswith(point + "/")]:
            del visible[hidden]
        sep = fields.index("-")
        fstype = fields[sep + 1]
        if fstype in ("cgroup", "cgroup2") and point.startswith("/sys/fs/cgroup/"):
            visible[point] = (point, fstype, fields[sep + 3])
    return list(visible.values())


# /proc/self/mountinfo, split, as the runtime read it just before forking the init
_snapshot: list[list[str]] = []


def snapshot_mounts() -> None:
    """Read the mount table for the init, before the fork: a new mount namespace starts
    as a copy of it, and the questions asked of it (the rootfs's parent mount, the
    cgroup hierarchies) concern mounts the init's setup does not change. Parsing it
    in the parent is cheaper than in the child, whose every object is a page copy."""
    _snapshot[:] = _read_mountinfo()


def forget_mounts() -> None:
    _snapshot.clear()


def _read_mountinfo() -> list[list[str]]:
    with open("/proc/self/mountinfo") as f:
        return [line.split() for line in f]


def _mount_table() -> list[list[str]]:
    return _snapshot or _read_mountinfo()


def make_device(rootfd: int, dev: Device, *, bind: bool = False) -> None:
    """mknod the node; in a user namespace (no mknod there) bind-mount the host's node."""
    parent, name = os.path.split(dev.path)
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    mode = (dev.file_mode if dev.file_mode is not None else 0o666) | kinds[dev.type]
    with _Resolved(rootfd, parent, "dir") as r:
        if bind:
            try:
                os.close(
                    os.open(
                        name,
                        os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                        0o600,
                        dir_fd=r.fd,
                    )
                )
            except OSError as exc:
                raise SyscallError("create", dev.path, exc.errno or 0) from exc
            with _Resolved(rootfd, dev.path) as node:
                libc.mount(dev.path, node.target, None, libc.MS_BIND, None, dev.path)
            return
        try:
            os.mknod(name, mode, os.makedev(dev.major, dev.minor), dir_fd=r.fd)
        except FileExistsError:
            return
        except OSError as exc:
            raise SyscallError("mknod", dev.path, exc.errno or 0) from exc
        os.chown(name, dev.uid or 0, dev.gid or 0, dir_fd=r.fd, follow_symlinks=False)


def _symlink(rootfd: int, target: str, link: str) -> None:
    parent, name = os.path.split(link)
    with _Resolved(rootfd, parent, "dir") as r:
        try:  # noqa: SIM105 (contextlib costs import time)
            os.symlink(target, name, dir_fd=r.fd)
        except FileExistsError:
            pass


def _setup_ptmx(rootfd: int) -> None:
    """/dev/ptmx -> pts/ptmx, so ptys come from the container's own devpts instance."""
    with _Resolved(rootfd, "/dev", "dir") as r:
        try:  # noqa: SIM105 (contextlib costs import time)
            os.unlink("ptmx", dir_fd=r.fd)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=r.fd)


def _parent_mount(path: str) -> str:
    best = "/"
    for fields in _mount_table():
        point = fields[4]
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best = point
    return best


def overlay_data(data: str, rootless: bool) -> str:
    """An unprivileged user's overlay reads and writes its opaque/redirect markers as
    ``user.overlay.*`` xattrs (``userxattr``): ``trusted.*`` needs CAP_SYS_ADMIN in the
    initial user namespace. The rootless layer store writes them that way."""
    if rootless and "userxattr" not in data.split(","):
        return f"{data},userxattr" if data else "userxattr"
    return data


def prepare(
    cfg: Config,
    *,
    before_pivot: Callable[[], None],
    no_pivot: bool,
    host_cgroups: dict[str, str] | None = None,
    rootless: bool = False,
    before_cgroup_mount: Callable[[], None] | None = None,
) -> None:
    """Everything up to and including pivot_root (runc's prepareRootfs).

    ``before_cgroup_mount`` runs before a cgroup mount binds the container's cgroup
    directories (the runtime may still be making them)."""
    rootfs = cfg.root_path
    if not os.path.isdir(rootfs):
        raise MountError("rootfs", rootfs, errno.ENOENT, "root.path")
    propagation = mountopts.PROPAGATION.get(
        cfg.rootfs_propagation or "", libc.MS_SLAVE | libc.MS_REC
    )
    # Slave (by default) before anything else: our mounts must never propagate to the host.
    libc.mount(None, "/", None, propagation, None)
    # pivot_root(2) refuses a new root whose parent mount is shared.
    libc.mount(None, _parent_mount(rootfs), None, libc.MS_PRIVATE, None)
    overlay = cfg.annotations.get(OVERLAY_ANNOTATION)
    if overlay is not None:
        # The engine's image rootfs: overlayfs mounted here, in the container's own mount
        # namespace, so it vanishes with the container and never shows on the host.
        libc.mount("overlay", rootfs, "overlay", 0, overlay_data(overlay, rootless))
    else:
        libc.mount(rootfs, rootfs, None, libc.MS_BIND | libc.MS_REC, None)
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for m in cfg.mounts:
            mount_one(rootfd, m, cfg.bundle, host_cgroups, before_cgroup_mount)
        dev_is_mounted = any(os.path.normpath(m.destination) == "/dev" for m in cfg.mounts)
        in_userns = cfg.namespace("user") is not None
        for dev in (*DEFAULT_DEVICES, *cfg.devices):
            make_device(rootfd, dev, bind=in_userns)
        if dev_is_mounted:
            for target, link in DEV_SYMLINKS:
                _symlink(rootfd, target, link)
            if os.path.exists("/proc/kcore"):
                _symlink(rootfd, "/proc/kcore", "/dev/core")
            _setup_ptmx(rootfd)
    finally:
        os.close(rootfd)
    before_pivot()
    os.chdir(rootfs)
    if no_pivot:
        libc.mount(rootfs, "/", None, libc.MS_MOVE, None)
        os.chroot(".")
    else:
        # pivot_root(".", ".") stacks the old root on top of the new one; detaching it
        # then leaves the new root alone (runc's pivotRoot; see pivot_root(2) NOTES).
        # The cwd still names the new root, so step onto the old root by fd first: the
        # rslave (our unmount must not propagate to the host) is for the old tree only,
        # not for the container's mounts and their configured propagation.
        old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.pivot_root(".", ".")
            os.fchdir(old_root)
        finally:
            os.close(old_root)
        libc.mount(None, ".", None, libc.MS_SLAVE | libc.MS_REC, None)
        libc.umount2(".", libc.MNT_DETACH)
    os.chdir("/")


def finish(cfg: Config) -> None:
    """After pivot_root: sysctls, read-only root, masked and read-only paths."""
    for key, value in cfg.sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            raise SyscallError("write sysctl", key, exc.errno or 0) from exc
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if cfg.root_readonly:
            _remount_bind(rootfd, "/", libc.MS_RDONLY)
        for path in cfg.readonly_paths:
            try:
                with _Resolved(rootfd, path) as r:
                    libc.mount(r.target, r.target, None, libc.MS_BIND | libc.MS_REC, None, path)
            except MountError as exc:
                if exc.errno == errno.ENOENT:
                    continue
                raise
            _remount_bind(rootfd, path, libc.MS_RDONLY)
        for path in cfg.masked_paths:
            try:
                r = _Resolved(rootfd, path)
            except MountError as exc:
                if exc.errno == errno.ENOENT:
                    continue
                raise
            with r:
                if stat.S_ISDIR(os.stat(r.target).st_mode):
                    libc.mount("tmpfs", r.target, "tmpfs", libc.MS_RDONLY, None, path)
                else:
                    libc.mount("/dev/null", r.target, None, libc.MS_BIND, None, path)
    finally:
        os.close(rootfd)
