"""The OCI bundle of one container: ``config.json`` from the image config and the spec.

``render_config`` is pure: it merges the image config with the spec the way Podman does
(``command`` replaces ENTRYPOINT and drops CMD, ``args`` replaces CMD; ``env`` overrides
the image's Env by name; ``user``/``workingDir`` override USER/WORKDIR) and adds Podman's
defaults (capability set, masked and read-only paths, the containers-common seccomp
profile). ``write_bundle`` does the I/O: resolves user names against the image's own
/etc/passwd, prepares volumes, and writes the bundle atomically.

The root filesystem is an overlay of the image's layer directories plus a per-bundle
``upper``/``work`` pair. The runtime mounts it itself, inside the container's mount
namespace (annotation ``org.pycontainers.rootfs.overlay``): the mount exists only as long
as the container does, so no stop path, crash or kill -9 can leak it onto the host.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycontainers.reconciler.errors import ReconcilerError
from pycontainers.reconciler.layout import (
    APPLIED,
    AppliedRecord,
    EnginePaths,
    remove_tree,
    temp_bundle_dir,
    write_atomic,
)
from pycontainers.reconciler.spec import ContainerSpec
from pycontainers.runtime import specgen

OVERLAY_ANNOTATION = "org.pycontainers.rootfs.overlay"
NAME_ANNOTATION = "org.pycontainers.name"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# containers.conf(5) default_capabilities, as Podman 4 grants them.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = (
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
# The containers-common default profile, as Podman applies it, to every container
# (PYCONTAINERS_SECCOMP=0 leaves it out, e.g. to tell a seccomp denial from an
# application bug).
# overlayfs refuses mount data longer than a page.
MAX_MOUNT_DATA = 4095


class BundleError(ReconcilerError):
    """A bundle cannot be made from this image and spec (no command, unknown user, ...)."""


@dataclass(frozen=True)
class Credentials:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class RootfsPlan:
    """Where the container's root comes from: lower layers (bottom first) plus upper/work."""

    lower: tuple[str, ...]
    upper: str
    work: str
    mountpoint: str

    def mount_data(self) -> str:
        # overlayfs wants the top layer first in lowerdir
        data = (
            f"lowerdir={':'.join(reversed(self.lower))},upperdir={self.upper},workdir={self.work}"
        )
        if len(data) > MAX_MOUNT_DATA:
            raise BundleError(
                f"image has too many layers for one overlay mount ({len(self.lower)} layers, "
                f"{len(data)} bytes of mount options)"
            )
        return data


def signal_number(name: str) -> int:
    if name.startswith("SIGRTMIN+"):
        return int(signal.SIGRTMIN) + int(name.removeprefix("SIGRTMIN+"))
    if name.startswith("SIGRTMAX-"):
        return int(signal.SIGRTMAX) - int(name.removeprefix("SIGRTMAX-"))
    return int(signal.Signals[name])


def process_args(spec: ContainerSpec, image: Mapping[str, Any], name: str) -> list[str]:
    """Podman's rule: ``command`` replaces ENTRYPOINT and drops CMD; ``args`` replaces CMD."""
    entrypoint = list(spec.command) if spec.command is not None else _strs(image, "Entrypoint")
    if spec.args is not None:
        cmd = list(spec.args)
    elif spec.command is not None:
        cmd = []
    else:
        cmd = _strs(image, "Cmd")
    args = entrypoint + cmd
    if not args:
        raise BundleError(
            f"container {name}: no command: the image has no ENTRYPOINT or CMD and the spec "
            "sets neither command nor args"
        )
    return args


def merged_env(
    spec: ContainerSpec, image: Mapping[str, Any], env_files: Mapping[str, str], hostname: str
) -> list[str]:
    """Image Env, then env files, then ``env``; later ones win by name, order kept."""
    merged: dict[str, str] = {}
    for item in _strs(image, "Env"):
        key, _, value = item.partition("=")
        merged[key] = value
    merged.setdefault("PATH", DEFAULT_PATH)
    merged.update(env_files)
    merged.update(spec.env)
    merged.setdefault("HOSTNAME", hostname)
    merged["container"] = "pycontainers"
    return [f"{k}={v}" for k, v in merged.items()]


def capability_sets(spec: ContainerSpec, uid: int) -> dict[str, list[str]]:
    """Podman's default set with the spec's drop/add; a non-root user gets only bounding."""
    caps = set(DEFAULT_CAPABILITIES)
    drop, add = set(spec.capabilities.drop), set(spec.capabilities.add)
    if "ALL" in drop:
        caps.clear()
    caps -= drop
    if "ALL" in add:
        from pycontainers.reconciler.quantities import CAPABILITIES

        caps |= set(CAPABILITIES)
    caps |= add - {"ALL"}
    ordered = sorted(caps)
    granted = ordered if uid == 0 else []
    return {
        "bounding": ordered,
        "effective": list(granted),
        "permitted": list(granted),
        "inheritable": [],
        "ambient": [],
    }


def _strs(image: Mapping[str, Any], key: str) -> list[str]:
    value = image.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def _default_mounts(network: str) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        *specgen.dev_mounts(),
    ]
    if network == "none":
        sysfs: dict[str, Any] = {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        }
    else:  # sysfs can be mounted only from a network namespace of our own: bind the host's
        sysfs = {
            "destination": "/sys",
            "type": "bind",
            "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
        }
    mounts.append(sysfs)
    return mounts


def spec_mounts(spec: ContainerSpec, paths: EnginePaths) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in spec.mounts:
        ro = ["ro"] if m.read_only else []
        if m.type == "bind":
            out.append(
                {
                    "destination": m.target,
                    "type": "bind",
                    "source": m.source,
                    "options": ["rbind", "nosuid", "nodev", *ro],
                }
            )
        elif m.type == "volume":
            out.append(
                {
                    "destination": m.target,
                    "type": "bind",
                    "source": str(paths.volume_dir(m.source)),
                    "options": ["rbind", "nosuid", "nodev", *ro],
                }
            )
        else:
            options = ["nosuid", "nodev", *ro]
            if m.size is not None:
                options.append(f"size={m.size}")
            options.append(f"mode={m.mode:o}" if m.mode is not None else "mode=1777")
            out.append(
                {"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": options}
            )
    return out


def render_config(
    *,
    name: str,
    spec: ContainerSpec,
    image: Mapping[str, Any],
    rootfs: RootfsPlan,
    paths: EnginePaths,
    user: Credentials,
    env_files: Mapping[str, str] | None = None,
    seccomp: Mapping[str, Any] | None = None,
    etc_files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The config.json document (pure: everything it needs is passed in)."""
    hostname = spec.hostname or name
    caps = capability_sets(spec, user.uid)
    cwd = spec.working_dir or str(image.get("WorkingDir") or "") or "/"
    process: dict[str, Any] = {
        "terminal": False,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": process_args(spec, image, name),
        "env": merged_env(spec, image, env_files or {}, hostname),
        "cwd": cwd,
        "capabilities": caps,
        "noNewPrivileges": spec.no_new_privileges,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = list(user.additional_gids)
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if spec.network == "none":
        namespaces.append({"type": "network"})
    # Memory, CPU and task limits are the unit's (MemoryMax=, CPUQuota=, TasksMax=):
    # systemd owns the cgroup and the container's sub-cgroup lies inside it, as with
    # Podman's systemd cgroup manager. Repeating them here would make the runtime demand
    # writable controllers that a delegated v1/hybrid subtree does not have.
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources,
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    }
    if spec.sysctls:
        linux["sysctl"] = dict(spec.sysctls)
    if seccomp is not None:
        linux["seccomp"] = dict(seccomp)
    mounts = _default_mounts(spec.network)
    targets = {m.target for m in spec.mounts}
    for target, source in sorted((etc_files or {}).items()):
        if target not in targets:
            mounts.append(
                {
                    "destination": target,
                    "type": "bind",
                    "source": source,
                    "options": ["rbind", "nosuid", "nodev", "noexec"],
                }
            )
    mounts.extend(spec_mounts(spec, paths))
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs.mountpoint, "readonly": spec.read_only_root_filesystem},
        "hostname": hostname,
        "mounts": mounts,
        "annotations": {OVERLAY_ANNOTATION: rootfs.mount_data(), NAME_ANNOTATION: name},
        "linux": linux,
    }


# -- I/O: reading the image's files, volumes, writing the bundle -------------------------


def read_image_file(layers: Sequence[Path], path: str) -> bytes | None:
    """A file as the merged overlay would show it (top layer first; whiteouts hide it)."""
    rel = path.lstrip("/")
    for layer in reversed(layers):
        candidate = layer / rel
        try:
            st = os.lstat(candidate)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # overlayfs whiteout
            return None
        if stat.S_ISREG(st.st_mode):
            try:
                return candidate.read_bytes()
            except OSError:
                return None
        return None
    return None


def _table(data: bytes | None) -> list[list[str]]:
    if not data:
        return []
    rows = []
    for line in data.decode(errors="replace").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve_user(
    user: str | None, group: str | None, layers: Sequence[Path], name: str
) -> Credentials:
    """Names and ids against the image's /etc/passwd and /etc/group (as Podman resolves them)."""
    passwd = _table(read_image_file(layers, "/etc/passwd"))
    groups = _table(read_image_file(layers, "/etc/group"))
    user_text, _, group_from_user = (user or "").partition(":")
    group_text = group or group_from_user
    uid, gid, login = 0, 0, "root"
    if user_text:
        if user_text.isdigit():
            uid = int(user_text)
            row = next((r for r in passwd if len(r) > 3 and r[2] == user_text), None)
            gid = int(row[3]) if row and row[3].isdigit() else uid if not passwd else 0
            login = row[0] if row else ""
            if row is None:
                gid = uid
        else:
            row = next((r for r in passwd if len(r) > 3 and r[0] == user_text), None)
            if row is None or not row[2].isdigit():
                raise BundleError(
                    f"container {name}: user {user_text!r} is not in the image's /etc/passwd"
                )
            uid, gid, login = int(row[2]), int(row[3]) if row[3].isdigit() else 0, user_text
    if group_text:
        if group_text.isdigit():
            gid = int(group_text)
        else:
            grow = next((r for r in groups if len(r) > 2 and r[0] == group_text), None)
            if grow is None or not grow[2].isdigit():
                raise BundleError(
                    f"container {name}: group {group_text!r} is not in the image's /etc/group"
                )
            gid = int(grow[2])
    extra = tuple(
        sorted(
            {
                int(r[2])
                for r in groups
                if len(r) > 3 and r[2].isdigit() and login and login in r[3].split(",")
            }
            - {gid}
        )
    )
    return Credentials(uid, gid, extra)


def read_env_files(files: Sequence[str], name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for path in files:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise BundleError(f"container {name}: env file {path}: {exc.strerror}") from exc
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not key:
                raise BundleError(f"container {name}: env file {path}:{number}: expected KEY=value")
            env[key.strip()] = value
    return env


def ensure_volumes(spec: ContainerSpec, paths: EnginePaths, user: Credentials) -> None:
    """A new volume belongs to the container's user (Podman chowns fresh volumes too)."""
    for m in spec.mounts:
        if m.type != "volume":
            continue
        data = paths.volume_dir(m.source)
        if data.is_dir():
            continue
        data.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data.mkdir(mode=0o755)
        os.chown(data, user.uid, user.gid)
    for m in spec.mounts:
        if m.type == "bind" and not os.path.exists(m.source):
            raise BundleError(f"bind mount source {m.source} does not exist")


def default_seccomp(caps: Sequence[str]) -> dict[str, Any] | None:
    """The containers-common profile, unless PYCONTAINERS_SECCOMP=0."""
    if os.environ.get("PYCONTAINERS_SECCOMP", "") == "0":
        return None
    try:
        from pycontainers.runtime.seccomp import default_profile
    except ImportError:
        return None
    return default_profile(caps)


def _etc_files(bundle: Path, tmp: Path, hostname: str, network: str) -> dict[str, str]:
    """/etc/hostname and /etc/hosts of the container (Podman writes them per container)."""
    (tmp / "hostname").write_text(hostname + "\n")
    hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.1.1\t{hostname}\n"
    (tmp / "hosts").write_text(hosts)
    files = {"/etc/hostname": str(bundle / "hostname"), "/etc/hosts": str(bundle / "hosts")}
    if network == "host" and os.path.isfile("/etc/resolv.conf"):
        (tmp / "resolv.conf").write_bytes(Path("/etc/resolv.conf").read_bytes())
        files["/etc/resolv.conf"] = str(bundle / "resolv.conf")
    return files


def write_bundle(
    paths: EnginePaths,
    record: AppliedRecord,
    spec: ContainerSpec,
    image_config: Mapping[str, Any],
    layers: Sequence[Path],
) -> Path:
    """The bundle of ``record``, written once (temp dir + rename); reused when complete."""
    final = paths.bundle_dir(record.name, record.spec_hash, record.image_digest)
    if (final / APPLIED).is_file():
        return final
    if final.exists():  # a half-written bundle from a crash that beat the rename: redo it
        remove_tree(final)
    user = resolve_user(spec.user, spec.group, layers, record.name)
    env_files = read_env_files(spec.env_files, record.name)
    ensure_volumes(spec, paths, user)
    tmp = temp_bundle_dir(paths, record.name, final)
    try:
        for sub in ("rootfs", "upper", "work"):
            (tmp / sub).mkdir(mode=0o755)
        rootfs = RootfsPlan(
            lower=tuple(str(p) for p in layers),
            upper=str(final / "upper"),
            work=str(final / "work"),
            mountpoint=str(final / "rootfs"),
        )
        hostname = spec.hostname or record.name
        caps = capability_sets(spec, user.uid)["bounding"]
        config = render_config(
            name=record.name,
            spec=spec,
            image=image_config,
            rootfs=rootfs,
            paths=paths,
            user=user,
            env_files=env_files,
            seccomp=default_seccomp(caps),
            etc_files=_etc_files(final, tmp, hostname, spec.network),
        )
        write_atomic(tmp / "config.json", json.dumps(config, indent=1).encode())
        write_atomic(tmp / APPLIED, json.dumps(record.to_json(), indent=1).encode())
        os.chmod(tmp, 0o711)
        os.rename(tmp, final)
    except BaseException:
        remove_tree(tmp)
        raise
    return final
