"""Follow a git repository: fetch one branch or tag, snapshot one exact commit.

The real ``git`` binary does the work (clone protocols, ssh, credentials helpers). The
repository is kept bare under the storage root and fetched with a forced refspec into
``refs/pycontainers/source``, so a force-push simply moves that ref; a failed fetch
(network, auth, a deleted branch) leaves the ref where it was, so the last good revision
stays readable and the failure is reported instead of pruning anything. Files are read
from the commit's tree (``ls-tree`` + ``cat-file --batch``), never from a work tree, so a
snapshot is exactly one commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from pycontainers.reconciler.dirsource import MAX_FILE_BYTES, is_spec_name
from pycontainers.reconciler.errors import GitSourceError
from pycontainers.reconciler.snapshot import Snapshot

SOURCE_REF = "refs/pycontainers/source"
GIT_TIMEOUT = 300.0


@dataclass(frozen=True)
class GitSourceConfig:
    url: str
    """https://, ssh:// or user@host:path, or a local path (push-to-deploy)."""
    ref: str = "main"
    """Branch or tag name, or a full ref (refs/heads/x, refs/tags/y)."""
    subdir: str = ""
    """Only read specs below this directory of the repository."""
    interval: float = 60.0
    """Seconds between fetches when nothing asks for one sooner (the daemon's timer)."""


@dataclass(frozen=True)
class SyncResult:
    snapshot: Snapshot
    fetch_error: GitSourceError | None = None
    """Set when the fetch failed and ``snapshot`` is the last good revision."""


def cache_dir_for(root: Path, url: str) -> Path:
    """Where a URL's repository lives under the storage root: one dir per URL."""
    return root / "sources" / "git" / hashlib.sha256(url.encode()).hexdigest()[:16]


def git_env(
    base: Mapping[str, str] | None = None, *, keep_git_vars: bool = False
) -> dict[str, str]:
    """An environment where git never prompts and ignores a caller's GIT_DIR and friends
    (a hook's environment would otherwise redirect every command to the hook's repo)."""
    env = dict(os.environ if base is None else base)
    if not keep_git_vars:
        for key in list(env):
            if key.startswith("GIT_") and key not in (
                "GIT_SSH_COMMAND",
                "GIT_SSH",
                "GIT_ASKPASS",
                "GIT_CONFIG_GLOBAL",
                "GIT_CONFIG_NOSYSTEM",
            ):
                del env[key]
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C"
    return env


async def run_git(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: bytes | None = None,
    timeout: float = GIT_TIMEOUT,
) -> bytes:
    """Run ``git args``; raise GitSourceError with git's own message on failure."""
    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
        )
    except OSError as exc:
        raise GitSourceError(f"cannot run git: {exc.strerror}") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise GitSourceError(f"git {_verb(args)} timed out after {timeout:.0f}s") from exc
    if process.returncode != 0:
        lines = [
            line.removeprefix("fatal: ").rstrip(".")
            for line in err.decode(errors="replace").strip().splitlines()
            if line and not line.startswith(("Please make sure", "and the repository exists"))
        ]
        detail = "; ".join(lines) or f"exit status {process.returncode}"
        raise GitSourceError(f"git {_verb(args)} failed: {detail}")
    return out


def _verb(args: Sequence[str]) -> str:
    rest = list(args)
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in ("--git-dir", "-C") else rest[1:]
    return rest[0] if rest else "git"


async def read_commit(
    git_dir: Path,
    commit: str,
    *,
    subdir: str = "",
    env: Mapping[str, str],
    max_file_bytes: int = MAX_FILE_BYTES,
    source: str = "",
) -> Snapshot:
    """The spec files of one commit as a Snapshot (shared with the pre-receive hook)."""
    base = str(PurePosixPath(subdir.strip("/"))) if subdir.strip("/") else ""
    listing = await run_git(
        ["--git-dir", str(git_dir), "ls-tree", "-r", "-l", "-z", "--full-tree", commit]
        + ([f"{base}/"] if base else []),
        env=env,
    )
    wanted: dict[str, str] = {}
    errors: dict[str, str] = {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, oid, size = meta.decode().split()
        path = raw_path.decode("utf-8", errors="replace")
        rel = path[len(base) + 1 :] if base else path
        parts = PurePosixPath(rel).parts
        if kind != "blob" or any(p.startswith(".") for p in parts) or not is_spec_name(parts[-1]):
            continue
        if mode == "120000":
            errors[rel] = "symlink in the repository: not followed"
        elif int(size) > max_file_bytes:
            errors[rel] = f"file too large ({size} bytes, limit {max_file_bytes})"
        else:
            wanted[rel] = oid
    files: dict[str, bytes] = {}
    if wanted:
        order = sorted(wanted)
        batch = await run_git(
            ["--git-dir", str(git_dir), "cat-file", "--batch"],
            env=env,
            stdin="".join(f"{wanted[rel]}\n" for rel in order).encode(),
        )
        offset = 0
        for rel in order:
            header_end = batch.index(b"\n", offset)
            _oid, _kind, size = batch[offset:header_end].decode().split()
            start = header_end + 1
            files[rel] = batch[start : start + int(size)]
            offset = start + int(size) + 1
    return Snapshot(
        revision=f"git:{commit}",
        files=MappingProxyType(files),
        file_errors=MappingProxyType(errors),
        source=source,
    )


class GitSource:
    """One followed repository. ``sync()`` = fetch (on an interval or on demand) + snapshot."""

    def __init__(
        self,
        config: GitSourceConfig,
        cache_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = GIT_TIMEOUT,
    ) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.git_dir = cache_dir / "repo.git"
        self.env = git_env(env)
        self.timeout = timeout
        self._remote_ref: str | None = config.ref if config.ref.startswith("refs/") else None

    def describe(self) -> str:
        sub = f" ({self.config.subdir})" if self.config.subdir else ""
        return f"git {self.config.url} {self.config.ref}{sub}"

    async def _git(self, *args: str) -> bytes:
        return await run_git(
            ["--git-dir", str(self.git_dir), *args], env=self.env, timeout=self.timeout
        )

    async def _ensure_repo(self) -> None:
        if (self.git_dir / "HEAD").exists():
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        await run_git(["init", "--bare", "--quiet", str(self.git_dir)], env=self.env)

    async def fetch(self) -> str:
        """Fetch the ref and return the commit it now points at; on failure the previous
        commit stays recorded and GitSourceError says why."""
        await self._ensure_repo()
        candidates = (
            [self._remote_ref]
            if self._remote_ref
            else [f"refs/heads/{self.config.ref}", f"refs/tags/{self.config.ref}"]
        )
        last_error: GitSourceError | None = None
        for remote_ref in candidates:
            try:
                await self._git(
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--no-write-fetch-head",
                    self.config.url,
                    f"+{remote_ref}:{SOURCE_REF}",
                )
            except GitSourceError as exc:
                last_error = exc
                if "couldn't find remote ref" in str(exc):
                    continue
                break
            self._remote_ref = remote_ref
            return await self.current_commit_or_raise()
        assert last_error is not None
        if "couldn't find remote ref" in str(last_error):
            previous = await self.current_commit()
            keeping = f"; keeping {previous[:12]}" if previous else ""
            raise GitSourceError(
                f"{self.config.url} has no branch or tag {self.config.ref!r}{keeping}"
            ) from last_error
        raise last_error

    async def current_commit(self) -> str | None:
        """The last successfully fetched commit, if any."""
        if not (self.git_dir / "HEAD").exists():
            return None
        try:
            out = await self._git("rev-parse", "--verify", "--quiet", f"{SOURCE_REF}^{{commit}}")
        except GitSourceError:
            return None
        return out.decode().strip() or None

    async def current_commit_or_raise(self) -> str:
        commit = await self.current_commit()
        if commit is None:
            raise GitSourceError(f"{self.describe()}: nothing fetched yet")
        return commit

    async def snapshot(self) -> Snapshot:
        """The last fetched commit's specs (no network)."""
        commit = await self.current_commit_or_raise()
        return await read_commit(
            self.git_dir,
            commit,
            subdir=self.config.subdir,
            env=self.env,
            source=self.describe(),
        )

    async def sync(self) -> SyncResult:
        """Fetch, then snapshot; a failed fetch falls back to the last good commit and is
        reported. Raises only when there has never been a good commit."""
        fetch_error: GitSourceError | None = None
        try:
            await self.fetch()
        except GitSourceError as exc:
            if await self.current_commit() is None:
                raise
            fetch_error = exc
        return SyncResult(await self.snapshot(), fetch_error)
