"""The runtime's exception family: every failure an operator sees is one of these.

    OciRuntimeError
     ├── ConfigError        config.json missing, unreadable or invalid (file + field + cause)
     ├── SyscallError       a kernel call failed (op + path + errno), like crun's error lines
     │    └── MountError    a mount, or a mount destination that escapes the rootfs
     ├── StateError         the container's state directory is missing, taken or unreadable
     │    ├── ContainerNotFound
     │    └── ContainerExists
     ├── IncorrectStatus    a verb not allowed in the container's status (start twice, ...)
     ├── ExecError          the container's program cannot be found or run
     └── HookError          a lifecycle hook failed or timed out

Messages are lower case without a trailing period (youki's rule) and name what failed.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# --debug puts its step logger here (see debuglog); empty otherwise, so a step costs its
# call sites one truth test: ``if TRACE: TRACE[0](f"...")`` formats nothing when off.
TRACE: list[Callable[[str], None]] = []


class OciRuntimeError(Exception):
    """Base of everything the runtime raises on purpose."""


class ConfigError(OciRuntimeError):
    def __init__(self, file: str, field: str, cause: str) -> None:
        self.file = file
        self.field = field
        self.cause = cause
        where = f"{file}: {field}" if field else file
        super().__init__(f"invalid config {where}: {cause}")


class SyscallError(OciRuntimeError):
    def __init__(self, op: str, path: str, errno: int, detail: str = "") -> None:
        self.op = op
        self.path = path
        self.errno = errno
        cause = os.strerror(errno).lower() if errno else detail
        text = f"{op} `{path}`: {cause}" if path else f"{op}: {cause}"
        if detail and errno:
            text += f" ({detail})"
        super().__init__(text)


class MountError(SyscallError):
    pass


class StateError(OciRuntimeError):
    pass


class ContainerNotFound(StateError):
    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__(f"container {container_id!r} does not exist")


class ContainerExists(StateError):
    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__(f"container {container_id!r} already exists")


class IncorrectStatus(OciRuntimeError):
    def __init__(self, container_id: str, status: str, verb: str) -> None:
        self.container_id = container_id
        self.status = status
        super().__init__(f"cannot {verb} container {container_id!r}: it is {status}")


def describe(exc: BaseException) -> str:
    """The one-line message for any failure in a runtime child (sent up to the caller)."""
    if isinstance(exc, OciRuntimeError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" `{exc.filename}`" if exc.filename else ""
        return f"{type(exc).__name__.lower()}{where}: {(exc.strerror or str(exc)).lower()}"
    return f"internal error: {type(exc).__name__}: {exc}"


class ExecError(OciRuntimeError):
    pass


class HookError(OciRuntimeError):
    pass
