"""systemd notification (sd_notify(3)) for a runtime that exits after `start`.

With Type=notify and NotifyAccess=all, telling systemd MAINPID=<container init> and
READY=1 makes the init the unit's main process, so the runtime can exit and leave no
Python process behind. BARRIER=1 (sd_notify_barrier) makes us wait until systemd has
processed both before we exit: it closes the pipe end we pass with SCM_RIGHTS.
(``container._hand_off`` decides what to send when the init may already be gone.)
"""

from __future__ import annotations

import os

from pycontainers.runtime.errors import SyscallError

BARRIER_TIMEOUT_MS = 5000


def notify_started(main_pid: int, environ: dict[str, str] | None = None) -> bool:
    """Send MAINPID+READY and wait for the barrier; False when NOTIFY_SOCKET is unset."""
    return notify_message(f"MAINPID={main_pid}\nREADY=1", environ)


def notify_message(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``message`` and wait until systemd has processed it (the barrier)."""
    env = os.environ if environ is None else environ
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    import select
    import socket
    import struct

    address = "\0" + path[1:] if path.startswith("@") else path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(address)
        sock.send(message.encode())
        read_end, write_end = os.pipe()
        try:
            fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", write_end))]
            sock.sendmsg([b"BARRIER=1"], fds)
            os.close(write_end)
            write_end = -1
            poller = select.poll()
            poller.register(read_end, select.POLLHUP)
            poller.poll(BARRIER_TIMEOUT_MS)
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
    except OSError as exc:
        raise SyscallError("sd_notify", path, exc.errno or 0) from exc
    finally:
        sock.close()
    return True
