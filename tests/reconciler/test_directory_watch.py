"""DirectoryWatcher with real file writes: bursts coalesce, junk files wake nobody.

Waits are bounded by timeouts; nothing asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from reconciler_testkit import document, spec_yaml

from pycontainers.reconciler.dirsource import DirectorySource
from pycontainers.reconciler.errors import SourceError
from pycontainers.reconciler.watch import DirectoryWatcher

TIMEOUT = 15.0


class Watching:
    """A running watcher whose batches land in a queue."""

    def __init__(self, root: Path, step_ms: int) -> None:
        self.root = root
        self.watcher = DirectoryWatcher(root, step_ms=step_ms, debounce_ms=5000)
        self.batches: asyncio.Queue[frozenset[str]] = asyncio.Queue()
        self.stop = asyncio.Event()

    async def run(self) -> None:
        async for batch in self.watcher.changes(self.stop):
            await self.batches.put(batch)

    async def next_batch(self) -> frozenset[str]:
        return await asyncio.wait_for(self.batches.get(), TIMEOUT)

    async def wait_ready(self) -> None:
        """The watch is armed once a probe write is seen; drain it."""
        probe = self.root / "probe.yaml"
        for attempt in range(100):
            probe.write_text(f"# probe {attempt}\n")
            try:
                batch = await asyncio.wait_for(self.batches.get(), 0.25)
            except TimeoutError:
                continue
            if "probe.yaml" in batch:
                break
        else:
            raise AssertionError("watcher never saw the probe file")
        probe.unlink()
        assert "probe.yaml" in await self.next_batch()


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_a_burst_of_writes_is_one_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        w = Watching(tmp_path, step_ms=400)
        async with asyncio.TaskGroup() as group:
            group.create_task(w.run())
            await w.wait_ready()
            for i in range(20):  # like `cp *.yaml /etc/pycontainers/`
                (tmp_path / f"c{i:02}.yaml").write_bytes(spec_yaml(document(f"c{i:02}")))
            batch = await w.next_batch()
            assert batch == {f"c{i:02}.yaml" for i in range(20)}
            assert w.batches.empty()
            w.stop.set()

    run(scenario())


def test_hidden_swap_and_backup_files_are_ignored(tmp_path: Path) -> None:
    async def scenario() -> None:
        w = Watching(tmp_path, step_ms=100)
        async with asyncio.TaskGroup() as group:
            group.create_task(w.run())
            await w.wait_ready()
            for junk in (".web.yaml.swp", "web.yaml~", "#web.yaml#", "notes.txt", ".hidden"):
                (tmp_path / junk).write_text("x")
            (tmp_path / ".git").mkdir()
            (tmp_path / ".git" / "x.yaml").write_text("x")
            # A relevant write after the junk: the junk, if not filtered, would show up
            # in this batch or an earlier one.
            (tmp_path / "web.yaml").write_bytes(spec_yaml(document("web")))
            assert await w.next_batch() == {"web.yaml"}
            w.stop.set()

    run(scenario())


def test_edit_in_place_rename_and_delete_are_seen(tmp_path: Path) -> None:
    async def scenario() -> None:
        target = tmp_path / "web.yaml"
        target.write_bytes(spec_yaml(document("web")))
        w = Watching(tmp_path, step_ms=100)
        async with asyncio.TaskGroup() as group:
            group.create_task(w.run())
            await w.wait_ready()
            # vim's way: write a new file and rename it over the old one.
            tmp = tmp_path / ".web.yaml.tmp"
            tmp.write_bytes(spec_yaml(document("web", env={"A": "1"})))
            tmp.rename(target)
            assert "web.yaml" in await w.next_batch()
            target.unlink()
            assert await w.next_batch() == {"web.yaml"}
            (tmp_path / "team").mkdir()
            (tmp_path / "team" / "db.yml").write_bytes(spec_yaml(document("db")))
            # inotify may arm the new directory after db.yml was written; the change
            # to "team" is enough, because a change means "read a whole new snapshot".
            seen = await w.next_batch() | await _maybe(w)
            assert seen & {"team", "team/db.yml"}
            snapshot = DirectorySource(tmp_path).read_snapshot()
            assert "team/db.yml" in snapshot.files
            w.stop.set()

    run(scenario())


async def _maybe(w: Watching) -> frozenset[str]:
    """The directory creation and the file in it may come as one batch or two."""
    try:
        return await asyncio.wait_for(w.batches.get(), 1.0)
    except TimeoutError:
        return frozenset()


def test_watching_a_missing_directory_is_a_source_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(SourceError, match="cannot watch spec directory"):
            async for _ in DirectoryWatcher(tmp_path / "nope").changes():
                pass

    run(scenario())
