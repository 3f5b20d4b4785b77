"""The setup channel between the runtime and its children: one text line per message.

Two O_CLOEXEC pipes rather than a socketpair: importing ``socket`` costs more than the
whole exchange. Lines are shorter than PIPE_BUF, so writes from the intermediate child
and from the init never interleave. Messages: ``pid N``, ``userns``, ``hooks``, ``go
<state json>``, ``ready``, ``error <json string>``.
"""

from __future__ import annotations

import os

from pycontainers.runtime import jsonfast as json
from pycontainers.runtime.errors import OciRuntimeError


class ChannelClosed(OciRuntimeError):
    pass


def report_on_stderr(message: str) -> None:
    try:  # noqa: SIM105 (contextlib costs import time)
        os.write(2, f"pycontainers-runtime: {message}\n".encode(errors="replace"))
    except OSError:
        pass


class Channel:
    __slots__ = ("_buf", "_r", "_w", "state")

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._r = read_fd
        self._w = write_fd
        self._buf = b""
        self.state: dict[str, object] = {}

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        """(parent end, child end)."""
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        return cls(up_r, down_w), cls(down_r, up_w)

    def send(self, kind: str, payload: str = "") -> None:
        os.write(self._w, f"{kind} {payload}\n".encode())

    def send_error(self, message: str) -> None:
        """Report a failure up the channel; once nobody can read it (closed here, or the
        runtime is gone), on this process's stderr, so the message is never lost."""
        if self._w >= 0:
            try:
                self.send("error", json.dumps(message))
                return
            except OSError:
                pass
        report_on_stderr(message)

    def recv(self) -> tuple[str, str] | None:
        while b"\n" not in self._buf:
            chunk = os.read(self._r, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        kind, _, payload = line.decode().partition(" ")
        return kind, payload

    def expect(self, kind: str) -> str:
        msg = self.recv()
        if msg is None:
            raise ChannelClosed(f"setup channel closed while waiting for {kind!r}")
        if msg[0] != kind:
            raise ChannelClosed(f"setup channel: expected {kind!r}, got {msg[0]!r}")
        if kind == "go" and msg[1]:
            doc = json.loads(msg[1])
            self.state = doc if isinstance(doc, dict) else {}
        return msg[1]

    def close_read(self) -> None:
        if self._r >= 0:
            os.close(self._r)
            self._r = -1

    def close_write(self) -> None:
        if self._w >= 0:
            os.close(self._w)
            self._w = -1

    def close(self) -> None:
        self.close_read()
        self.close_write()


class Gate:
    """A message the peer sends once, awaited where it is first needed (a no-op when
    not ``pending``, and after the first wait). Its payload, a JSON object, is merged
    into ``into``."""

    __slots__ = ("_ch", "_kind", "into", "pending")

    def __init__(
        self, ch: Channel, kind: str, pending: bool, into: dict[str, str] | None = None
    ) -> None:
        self._ch = ch
        self._kind = kind
        self.pending = pending
        self.into = into

    def __call__(self) -> None:
        if self.pending:
            self.pending = False
            payload = self._ch.expect(self._kind)
            if self.into is not None and payload:
                doc = json.loads(payload)
                if isinstance(doc, dict):
                    self.into.update(doc)
