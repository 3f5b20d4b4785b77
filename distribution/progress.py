"""Progress reporting for pulls and pushes: bars on a terminal, log lines otherwise, or nothing.

``copy_image`` calls ``blob_started`` once per blob it transfers (getting back a function
to report byte counts, negative to rewind after a failed resume), then ``blob_done``
with how it ended ("fetched", "exists", "mounted", "uploaded").
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from pycontainers.distribution.manifest import Descriptor
from pycontainers.distribution.transports import ProgressFn


class CopyProgress(Protocol):
    def blob_started(self, desc: Descriptor, label: str) -> ProgressFn: ...

    def blob_done(self, desc: Descriptor, how: str) -> None: ...

    def note(self, text: str) -> None: ...

    def finish(self) -> None: ...


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class QuietProgress:
    def blob_started(self, desc: Descriptor, label: str) -> ProgressFn:
        return _ignore

    def blob_done(self, desc: Descriptor, how: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


def _ignore(nbytes: int) -> None:
    pass


class LineProgress:
    """One log line per blob start and end: for logs, pipes and CI."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self._started: dict[str, float] = {}

    def blob_started(self, desc: Descriptor, label: str) -> ProgressFn:
        self._started[str(desc.digest)] = time.monotonic()
        print(f"copying blob {desc.digest.short()} ({human_size(desc.size)})", file=self.out)
        return _ignore

    def blob_done(self, desc: Descriptor, how: str) -> None:
        start = self._started.pop(str(desc.digest), None)
        if how == "exists":
            print(f"blob {desc.digest.short()} already present", file=self.out)
            return
        took = time.monotonic() - start if start is not None else 0.0
        rate = f", {human_size(desc.size / took)}/s" if took > 0 else ""
        print(f"blob {desc.digest.short()} {how}{rate}", file=self.out)

    def note(self, text: str) -> None:
        print(text, file=self.out)

    def finish(self) -> None:
        self.out.flush()


@dataclass
class _Bar:
    label: str
    total: int
    done: int = 0
    state: str = ""
    started: float = field(default_factory=time.monotonic)


class BarProgress:
    """Per-blob and total bars redrawn in place (ANSI), at most ten times a second."""

    def __init__(self, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.out = out
        self.width = width
        self.bars: dict[str, _Bar] = {}
        self._lines = 0
        self._last = 0.0
        self._started = time.monotonic()

    def blob_started(self, desc: Descriptor, label: str) -> ProgressFn:
        bar = _Bar(desc.digest.short(), desc.size)
        self.bars[str(desc.digest)] = bar

        def advance(nbytes: int) -> None:
            bar.done = max(0, bar.done + nbytes)
            self._redraw()

        self._redraw(force=True)
        return advance

    def blob_done(self, desc: Descriptor, how: str) -> None:
        bar = self.bars.setdefault(str(desc.digest), _Bar(desc.digest.short(), desc.size))
        bar.done = bar.total
        bar.state = how
        self._redraw(force=True)

    def note(self, text: str) -> None:
        self._clear()
        print(text, file=self.out)
        self._redraw(force=True)

    def finish(self) -> None:
        self._redraw(force=True)
        self.out.flush()

    def _line(self, label: str, done: int, total: int, elapsed: float, state: str) -> str:
        frac = done / total if total else 1.0
        fill = int(self.width * frac)
        rate = human_size(done / elapsed) + "/s" if elapsed > 0 else ""
        tail = state or rate
        return (
            f"{label:<12} [{'#' * fill}{'.' * (self.width - fill)}] "
            f"{human_size(done):>9} / {human_size(total):<9} {tail}"
        )

    def _clear(self) -> None:
        if self._lines:
            self.out.write(f"\x1b[{self._lines}A\x1b[J")
            self._lines = 0

    def _redraw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        self._clear()
        lines = [
            self._line(b.label, b.done, b.total, now - b.started, b.state)
            for b in self.bars.values()
        ]
        done = sum(b.done for b in self.bars.values())
        total = sum(b.total for b in self.bars.values())
        lines.append(self._line("total", done, total, now - self._started, ""))
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self._lines = len(lines)


def progress_for(out: TextIO, *, quiet: bool) -> CopyProgress:
    if quiet:
        return QuietProgress()
    return BarProgress(out) if out.isatty() else LineProgress(out)
