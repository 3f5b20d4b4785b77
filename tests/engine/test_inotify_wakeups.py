"""The daemon's inotify wake-ups on a real directory tree (real kernel, no systemd needed)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pycontainers.reconciler.dirsource import is_spec_name
from pycontainers.reconciler.inotify import TreeWatch


async def _count(root: Path, actions: list[tuple[str, Path]]) -> list[int]:
    """Wake-ups seen after each action (the counter is read after a short settle)."""
    wakeups = 0

    def woke() -> None:
        nonlocal wakeups
        wakeups += 1

    watch = TreeWatch(root, woke, accept=is_spec_name)
    watch.start()
    seen = []
    try:
        for verb, path in actions:
            before = wakeups
            if verb == "write":
                path.write_text("kind: Container\n")
            elif verb == "mkdir":
                path.mkdir()
            elif verb == "rename":
                path.with_name(".tmp").write_text("x")
                os.rename(path.with_name(".tmp"), path)
            elif verb == "delete":
                path.unlink()
            for _ in range(50):  # events arrive through the event loop
                await asyncio.sleep(0.01)
                if wakeups > before:
                    break
            seen.append(wakeups - before)
    finally:
        watch.close()
    return seen


def test_writes_renames_deletes_and_new_subdirectories_wake_hidden_and_other_files_do_not(
    tmp_path: Path,
) -> None:
    sub = tmp_path / "team"
    seen = asyncio.run(
        _count(
            tmp_path,
            [
                ("write", tmp_path / "web.yaml"),  # a spec written: wakes
                ("write", tmp_path / ".web.yaml.swp"),  # an editor's hidden file: does not
                ("write", tmp_path / "notes.txt"),  # not a spec name: does not
                ("rename", tmp_path / "db.yml"),  # renamed into place: wakes
                ("mkdir", sub),  # a new directory: wakes, and is watched from now on
                ("write", sub / "api.yaml"),  # inside it: wakes
                ("delete", tmp_path / "web.yaml"),  # deleted: wakes
            ],
        )
    )
    assert [n > 0 for n in seen] == [True, False, False, True, True, True, True]


def test_no_wakeups_while_nothing_changes(tmp_path: Path) -> None:
    async def idle() -> int:
        woke = 0

        def count() -> None:
            nonlocal woke
            woke += 1

        watch = TreeWatch(tmp_path, count)
        (tmp_path / "seen.yaml").write_text("x")  # before the watch: not an event
        watch.start()
        (tmp_path / "seen.yaml").read_bytes()  # reading is no change
        os.listdir(tmp_path)
        await asyncio.sleep(0.3)
        watch.close()
        return woke

    assert asyncio.run(idle()) == 0
