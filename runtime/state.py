"""Container status and the state directory kept under ``--root``.

The state lives in ``<root>/<id>/`` so that ``state``, ``kill`` and ``delete`` work from
any later process: ``state.json`` (written atomically) plus runc's ``exec.fifo``, whose
presence means "created but not started". The status is derived from the kernel each
time (is the init alive, and is it still the same process?), never trusted from disk.
"""

from __future__ import annotations

import os
import time

from pycontainers.runtime import jsonfast as json
from pycontainers.runtime.errors import ContainerNotFound, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

OCI_VERSION = "1.0.2-dev"
STATE_FILE = "state.json"
FIFO = "exec.fifo"


class ContainerStatus:
    """The lifecycle status (runtime-spec ``state.status``) with youki's predicates.

    Used like an ``enum.Enum``: four members compared by identity, ``.value`` is the
    spec's string. Not ``enum.Enum`` itself: importing enum (and the functools and
    collections it pulls in) costs about 3 ms on every container start.
    """

    __slots__ = ("value",)
    CREATING: ClassVar[ContainerStatus]  # the state directory exists, the init is being set up
    CREATED: ClassVar[ContainerStatus]  # the init waits on exec.fifo for `start`
    RUNNING: ClassVar[ContainerStatus]  # the user program runs (the init exec'd it)
    STOPPED: ClassVar[ContainerStatus]  # the init exited (or was never fully created)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"ContainerStatus.{self.value.upper()}"

    def can_start(self) -> bool:
        return self is ContainerStatus.CREATED

    def can_kill(self) -> bool:
        return self is ContainerStatus.CREATED or self is ContainerStatus.RUNNING

    def can_delete(self) -> bool:
        return self is ContainerStatus.STOPPED or self is ContainerStatus.CREATING

    def can_exec(self) -> bool:
        return self is ContainerStatus.CREATED or self is ContainerStatus.RUNNING


ContainerStatus.CREATING = ContainerStatus("creating")
ContainerStatus.CREATED = ContainerStatus("created")
ContainerStatus.RUNNING = ContainerStatus("running")
ContainerStatus.STOPPED = ContainerStatus("stopped")


def default_root() -> str:
    if os.geteuid() != 0:
        runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
        return os.path.join(runtime_dir, "pycontainers-runtime")
    return "/run/pycontainers-runtime"


def valid_id(container_id: str) -> bool:
    """runc's rule (letters, digits, ``_+-.``), a safe directory name; a leading dot is
    refused too, so the runtime's own entries under --root (``.seccomp-cache``) are no id."""
    if not container_id or container_id.startswith(".") or len(container_id) > 1024:
        return False
    return all(c.isascii() and (c.isalnum() or c in "_+-.") for c in container_id)


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat; None if the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def timestamp() -> str:
    """RFC 3339 with nanoseconds in UTC, as runc writes ``created``."""
    now = time.time_ns()
    secs, nanos = divmod(now, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


class ContainerState:
    """What is on disk for one container, plus the status derived from the kernel."""

    __slots__ = ("data", "dir", "id", "root")

    def __init__(self, root: str, container_id: str, data: dict[str, object]) -> None:
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.data = data

    @property
    def pid(self) -> int:
        pid = self.data.get("pid", 0)
        return pid if isinstance(pid, int) else 0

    @property
    def bundle(self) -> str:
        return str(self.data.get("bundle", ""))

    @property
    def config(self) -> dict[str, object]:
        cfg = self.data.get("config")
        return cfg if isinstance(cfg, dict) else {}

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, FIFO)

    def init_alive(self) -> bool:
        pid = self.pid
        if pid <= 0:
            return False
        start = process_start_time(pid)
        return start is not None and start == self.data.get("pid_start")

    def status(self) -> ContainerStatus:
        if not self.data or self.data.get("creating"):
            return ContainerStatus.CREATING
        if not self.init_alive():
            return ContainerStatus.STOPPED
        if os.path.exists(self.fifo):
            return ContainerStatus.CREATED
        return ContainerStatus.RUNNING

    def oci_state(self) -> dict[str, object]:
        """The spec's state document, in runc's shape (annotations only when present)."""
        status = self.status()
        alive = status in (ContainerStatus.CREATED, ContainerStatus.RUNNING)
        doc: dict[str, object] = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.pid if alive else 0,
            "status": status.value,
            "bundle": self.bundle,
            "rootfs": self.data.get("rootfs", ""),
            "created": self.data.get("created", ""),
            "owner": self.data.get("owner", ""),
        }
        annotations = self.config.get("annotations")
        if annotations:
            doc["annotations"] = annotations
        return doc

    def save(self) -> None:
        tmp = os.path.join(self.dir, f".{STATE_FILE}.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(self.data))
        os.rename(tmp, os.path.join(self.dir, STATE_FILE))


def load(root: str, container_id: str) -> ContainerState:
    if not valid_id(container_id):
        raise ContainerNotFound(container_id)
    path = os.path.join(root, container_id, STATE_FILE)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        if os.path.isdir(os.path.join(root, container_id)):
            return ContainerState(root, container_id, {})
        raise ContainerNotFound(container_id) from None
    except (OSError, ValueError) as exc:
        raise StateError(f"read state {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StateError(f"read state {path}: not a JSON object")
    return ContainerState(root, container_id, data)


def list_ids(root: str) -> list[str]:
    try:
        return sorted(e for e in os.listdir(root) if valid_id(e))
    except FileNotFoundError:
        return []
