"""``--debug``: the runtime's steps, one line each, as runc's debug output.

Lines go to the ``--log`` file (else stderr) in its format: logrus text (``time="..."
level=debug msg="..."``) or JSON. Loaded only when ``--debug`` is given; everything a
line needs is bound at setup, because the container's init logs after pivot_root, where
the host's Python library can no longer be imported.
"""

from __future__ import annotations

import os
import time

from pycontainers.runtime import jsonfast as json
from pycontainers.runtime.errors import TRACE


class StepLog:
    __slots__ = ("_fd", "_json")

    def __init__(self, fd: int, json_format: bool) -> None:
        self._fd = fd
        self._json = json_format

    def __call__(self, message: str) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        text = f"{message} (pid {os.getpid()})"
        if self._json:
            line = json.dumps({"level": "debug", "msg": text, "time": stamp})
        else:
            line = f'time="{stamp}" level=debug msg={json.dumps(text)}'
        try:  # noqa: SIM105 (contextlib costs import time)
            os.write(self._fd, (line + "\n").encode(errors="replace"))
        except OSError:
            pass


def enable(log_path: str, json_format: bool) -> None:
    """Start logging steps (to ``log_path``, or stderr when it is empty)."""
    fd = 2
    if log_path:
        # O_CLOEXEC: the container's program never inherits it; the runtime's own
        # children (intermediate, init, exec) write through the same open file
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    TRACE[:] = [StepLog(fd, json_format)]
