"""Wake the daemon when a spec directory changes, debounced so a save is one change.

A batch of paths is only a hint that the directory is *dirty*: the daemon then reads a
whole new snapshot (level-triggered, never branching on the event kind), so a lost or
merged event can never leave it with the wrong picture.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import watchfiles

from pycontainers.reconciler.dirsource import is_spec_name
from pycontainers.reconciler.errors import SourceError


class DirectoryWatcher:
    """``changes()`` yields one set of relative paths per debounced burst of writes.

    ``step_ms``: quiet time that ends a burst (an editor's write-rename-chmod, a ``cp -r``);
    ``debounce_ms``: the longest a burst may be grouped before it is reported anyway.
    """

    def __init__(self, root: Path, *, step_ms: int = 200, debounce_ms: int = 2000) -> None:
        self.root = root
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms

    def relevant(self, change: watchfiles.Change, path: str) -> bool:
        del change
        try:
            rel = Path(path).relative_to(self.root)
        except ValueError:
            return False
        if any(part.startswith(".") for part in rel.parts):
            return False
        name = rel.name
        # Directories (created, removed, renamed) change which spec files exist.
        return is_spec_name(name) or os.path.isdir(path) or "." not in name

    async def changes(self, stop: asyncio.Event | None = None) -> AsyncIterator[frozenset[str]]:
        if not self.root.is_dir():
            raise SourceError(f"cannot watch spec directory {self.root}: not a directory")
        async for batch in watchfiles.awatch(
            self.root,
            watch_filter=self.relevant,
            step=self.step_ms,
            debounce=self.debounce_ms,
            stop_event=stop,
            recursive=True,
            rust_timeout=1000,
            yield_on_timeout=False,
        ):
            paths = frozenset(str(Path(path).relative_to(self.root)) for _change, path in batch)
            if paths:
                yield paths
