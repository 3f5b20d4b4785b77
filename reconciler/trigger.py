"""Sync requests from the push-to-deploy hook to the daemon, as files under the runroot.

Contract (docs/spec.md, "Push to deploy"): after a push to a deploy repository updates its
deploy branch, the post-receive hook writes ``<runroot>/sync/<repo-id>.json`` atomically
(temp file + fsync + rename) with ``{"repository", "ref", "commit"}``. The daemon watches
``<runroot>/sync/`` and treats any change there as "fetch now". A file, not a socket:
it works when the daemon is down (it syncs at start anyway) and needs no protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

import watchfiles

SYNC_DIR = "sync"


@dataclass(frozen=True)
class SyncRequest:
    repository: str
    ref: str
    commit: str


def sync_dir(runroot: Path) -> Path:
    return runroot / SYNC_DIR


def sync_request_path(runroot: Path, repository: str) -> Path:
    repo_id = hashlib.sha256(repository.encode()).hexdigest()[:16]
    return sync_dir(runroot) / f"{repo_id}.json"


def write_sync_request(runroot: Path, request: SyncRequest) -> Path:
    directory = sync_dir(runroot)
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    target = sync_request_path(runroot, request.repository)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(request), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_sync_requests(runroot: Path) -> list[SyncRequest]:
    """Every pending request (malformed files are skipped: they only mean "sync")."""
    found: list[SyncRequest] = []
    directory = sync_dir(runroot)
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.json")):
        try:
            found.append(SyncRequest(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return found


async def wait_sync_requests(
    runroot: Path, stop: asyncio.Event | None = None
) -> AsyncIterator[list[SyncRequest]]:
    """For the daemon: yields the pending requests each time a hook writes one."""
    directory = sync_dir(runroot)
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)

    def relevant(change: watchfiles.Change, path: str) -> bool:
        return change != watchfiles.Change.deleted and path.endswith(".json")

    async for _batch in watchfiles.awatch(
        directory, watch_filter=relevant, step=50, stop_event=stop, recursive=False
    ):
        yield read_sync_requests(runroot)
