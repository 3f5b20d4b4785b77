"""Wake-ups from inotify(7) for the daemon: "something in this tree changed", nothing more.

The daemon is level-triggered, so it needs no event detail and no debouncing beyond its
own short settle time: any relevant event marks it dirty, and the pass reads the whole
directory. Reading the inotify fd from the event loop (``add_reader``) costs nothing
while nothing changes; a polling watcher (watchfiles' Rust loop wakes every ``step`` ms
to check its stop event) costs a few milliseconds of CPU every second, forever.

Watched: file writes finished (IN_CLOSE_WRITE), renames in and out, deletions, attribute
changes (a chmod can make a file unreadable), and directories appearing, which get their
own watch (inotify is not recursive). Hidden names (editors' temp files) are ignored,
as the directory source ignores them. A queue overflow or the root vanishing marks dirty
and rebuilds the watches.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import struct
from collections.abc import Callable
from pathlib import Path

IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

MASK = (
    IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
_EVENT = struct.Struct("iIII")

_libc = ctypes.CDLL(None, use_errno=True)


class TreeWatch:
    """Calls ``on_change`` whenever the tree under ``root`` changes (from the event loop).

    ``accept(name)`` filters file names (directories always count).
    """

    def __init__(
        self,
        root: Path,
        on_change: Callable[[], None],
        *,
        accept: Callable[[str], bool] = lambda _name: True,
        recursive: bool = True,
    ) -> None:
        self.root = root
        self.on_change = on_change
        self.accept = accept
        self.recursive = recursive
        self.fd = -1
        self.dirs: dict[int, Path] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd = fd
        self._add_tree(self.root)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._read)

    def close(self) -> None:
        if self.fd >= 0:
            if self._loop is not None:
                self._loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        self.dirs.clear()

    def _add(self, path: Path) -> None:
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOENT, errno.ENOTDIR):
                return  # gone again before we got to it: a later event says so
            raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")
        self.dirs[wd] = path

    def _add_tree(self, top: Path) -> None:
        self._add(top)
        if not self.recursive:
            return
        for current, subdirs, _files in os.walk(top):
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
            for name in subdirs:
                self._add(Path(current) / name)

    def _rebuild(self) -> None:
        for wd in list(self.dirs):
            _libc.inotify_rm_watch(self.fd, wd)
        self.dirs.clear()
        if self.root.is_dir():
            self._add_tree(self.root)

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 64 * 1024)
        except BlockingIOError:
            return
        changed = False
        rebuild = False
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
            offset += _EVENT.size + length
            name = raw.split(b"\0", 1)[0].decode(errors="replace")
            if mask & IN_Q_OVERFLOW:
                changed = rebuild = True
                continue
            if mask & IN_IGNORED:
                self.dirs.pop(wd, None)
                rebuild |= not self.dirs
                continue
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                changed = True
                rebuild |= self.dirs.get(wd) == self.root
                continue
            if not name or name.startswith("."):
                continue
            parent = self.dirs.get(wd)
            if mask & IN_ISDIR:
                if self.recursive and mask & (IN_CREATE | IN_MOVED_TO) and parent is not None:
                    self._add_tree(parent / name)
                changed = True
            elif mask & IN_CREATE:
                continue  # wait for the write to finish (IN_CLOSE_WRITE)
            elif self.accept(name):
                changed = True
        if rebuild:
            self._rebuild()
        if changed:
            self.on_change()
