"""process.terminal: a pty from the container's devpts, its master sent to --console-socket.

runc's protocol: the caller listens on a unix socket; the runtime connects and sends the
pty master as SCM_RIGHTS with the pty's name as the message. The slave becomes the
process's controlling terminal and stdio, and is bind-mounted on /dev/console.
"""

from __future__ import annotations

import os

from pycontainers.runtime import libc
from pycontainers.runtime.config import Process
from pycontainers.runtime.errors import SyscallError

# asm-generic/ioctls.h (x86_64 and aarch64): unlock the pty slave, get its number
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430


class ConsoleSocket:
    """A connection to --console-socket, made before pivot_root (the path is on the host)."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def connect(cls, path: str) -> ConsoleSocket:
        import fcntl  # noqa: F401  (used by attach, after pivot_root: import it now)
        import socket
        import struct  # noqa: F401
        import termios  # noqa: F401

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise SyscallError("connect console socket", path, exc.errno or 0) from exc
        return cls(sock.detach(), path)

    def attach(self, process: Process, *, mount_console: bool = True) -> None:
        """Open a pty in the container, hand its master over, make the slave our terminal.

        The init also bind-mounts the slave on /dev/console; an exec'd process does not.
        """
        import fcntl
        import socket
        import struct
        import termios

        try:
            master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            number = struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
            name = f"/dev/pts/{number}"
            slave = os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            if process.console_size is not None:
                rows, cols = process.console_size
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            if mount_console:
                if not os.path.exists("/dev/console"):
                    flags = os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC
                    os.close(os.open("/dev/console", flags, 0o600))
                libc.mount(name, "/dev/console", None, libc.MS_BIND, None)
            sock = socket.socket(fileno=self.fd)
            try:
                sock.sendmsg(
                    [name.encode()],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", master))],
                )
            finally:
                sock.close()
            os.close(master)
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for target in (0, 1, 2):
                os.dup2(slave, target)
            os.close(slave)
        except OSError as exc:
            raise SyscallError("console", self.path, exc.errno or 0) from exc
