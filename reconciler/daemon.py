"""``pycontainers daemon``: keep what runs equal to the specs, for as long as it runs.

Level-triggered. Every input only marks the state *dirty*: a directory change, a push
(sync request under ``<runroot>/sync``), a signal from systemd about one of our units,
SIGHUP (``systemctl reload``), the periodic resync, the auto-update timer. One worker then
runs a whole pass (``Engine.reconcile``); inputs that arrive during a pass coalesce into one
more pass. Nothing branches on what an event said, so a lost event costs at most one resync
interval, never a wrong state.

systemd integration (``Type=notify``): READY=1 after the first pass (running units with the
same spec hash are adopted untouched, so a daemon restart restarts no container), STATUS=
with the summary after every pass, WATCHDOG=1 while the worker is not stuck. SIGTERM ends
the daemon *without* stopping containers: each is its own unit, owned by systemd.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycontainers.reconciler.apply import Applier
from pycontainers.reconciler.engine import DirectorySpecSource, Engine, GitSpecSource, Source
from pycontainers.reconciler.errors import ReconcilerError
from pycontainers.reconciler.images import ImageSupply
from pycontainers.reconciler.layout import EnginePaths
from pycontainers.units.backend import SystemdBackend
from pycontainers.units.bus import BusTarget
from pycontainers.units.errors import UnitError

log = logging.getLogger("pycontainers.daemon")

# Unit properties whose change means a container's state changed (not just a timestamp).
STATE_PROPERTIES = frozenset({"ActiveState", "SubState", "Result", "MainPID", "LoadState"})
SETTLE = 0.02
"""Seconds to let a burst of inputs arrive before a pass (our own start/stop emit many)."""
STUCK_AFTER = 900.0
"""A pass running longer than this stops the watchdog pings, so systemd restarts us."""


class BusLost(ReconcilerError):
    """The connection to the manager's bus broke; a restart reconnects."""

    def __init__(self) -> None:
        super().__init__("lost the connection to the systemd manager's bus")


def sd_notify(message: str, environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.send(message.encode())
    except OSError as exc:
        log.warning("sd_notify %r failed: %s", message, exc)
        return False
    return True


class Daemon:
    def __init__(
        self,
        engine: Engine,
        backend: SystemdBackend,
        paths: EnginePaths,
        *,
        spec_dir: Path | None,
        git: bool,
        resync_interval: float,
        fetch_interval: float,
        auto_update_interval: float,
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.paths = paths
        self.spec_dir = spec_dir
        self.git = git
        self.resync_interval = resync_interval
        self.fetch_interval = fetch_interval
        self.auto_update_interval = auto_update_interval
        self.dirty = asyncio.Event()
        self.stopping = asyncio.Event()
        self.fetch_pending = True
        self.update_pending = auto_update_interval > 0
        self.pass_started: float | None = None
        self.passes = 0
        self.lost_bus = False

    def mark(self, why: str, *, fetch: bool = False, update: bool = False) -> None:
        log.debug("dirty: %s", why)
        self.fetch_pending |= fetch
        self.update_pending |= update
        self.dirty.set()

    # -- inputs -------------------------------------------------------------------

    async def watch_tree(
        self, root: Path, why: str, accept: Callable[[str], bool], *, recursive: bool, fetch: bool
    ) -> None:
        """inotify on ``root`` (re-established if the directory goes away and comes back)."""
        from pycontainers.reconciler.inotify import TreeWatch

        while not self.stopping.is_set():
            if root.is_dir():
                watch = TreeWatch(
                    root, lambda: self.mark(why, fetch=fetch), accept=accept, recursive=recursive
                )
                try:
                    watch.start()
                    # whatever changed before the watch existed is picked up by a pass
                    self.mark(f"watching {root}", fetch=fetch)
                    while watch.dirs and not await _sleep_or(self.stopping, 5.0):
                        pass
                except OSError as exc:
                    log.error("cannot watch %s: %s", root, exc)
                finally:
                    watch.close()
            else:
                log.warning("%s does not exist; waiting for it", root)
            await _sleep_or(self.stopping, 5.0)

    async def watch_directory(self) -> None:
        from pycontainers.reconciler.dirsource import is_spec_name

        assert self.spec_dir is not None
        await self.watch_tree(
            self.spec_dir, "spec files changed", is_spec_name, recursive=True, fetch=False
        )

    async def watch_sync_requests(self) -> None:
        from pycontainers.reconciler.trigger import sync_dir

        directory = sync_dir(self.paths.runroot)
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        await self.watch_tree(
            directory,
            "sync requested",
            lambda name: name.endswith(".json"),
            recursive=False,
            fetch=True,
        )

    async def watch_units(self) -> None:
        async with self.backend.events() as queue:
            while True:
                event = await queue.get()
                if event.kind == "removed" or (
                    event.kind == "changed" and STATE_PROPERTIES & set(event.changed)
                ):
                    self.mark(f"unit {event.unit} {event.kind}")

    async def every(self, seconds: float, why: str, **flags: bool) -> None:
        if seconds <= 0:
            return
        while not await _sleep_or(self.stopping, seconds):
            self.mark(why, **flags)

    async def watch_bus(self) -> None:
        """A lost bus connection (dbus restarted) ends the daemon with a failure, so
        systemd's Restart= brings it back on a fresh connection. A flag check every 5 s."""
        while not await _sleep_or(self.stopping, 5.0):
            if not self.backend.manager.connected:
                self.lost_bus = True
                log.error("lost the connection to the bus; exiting so systemd restarts us")
                self.stopping.set()

    async def watchdog(self) -> None:
        usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        pid = os.environ.get("WATCHDOG_PID")
        if usec <= 0 or (pid and pid != str(os.getpid())):
            return
        interval = usec / 1_000_000 / 2
        while not await _sleep_or(self.stopping, interval):
            started = self.pass_started
            if started is None or time.monotonic() - started < STUCK_AFTER:
                sd_notify("WATCHDOG=1")

    # -- the worker ---------------------------------------------------------------

    async def worker(self) -> None:
        ready = False
        while not self.stopping.is_set():
            wake = self.engine.applier.retries.next_wake()
            timeout = None if wake is None else max(0.05, wake - time.time())
            if not self.dirty.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.dirty.wait(), timeout)
            if self.stopping.is_set():
                break
            await asyncio.sleep(SETTLE)
            self.dirty.clear()
            fetch, update = self.fetch_pending, self.update_pending
            self.fetch_pending = self.update_pending = False
            self.pass_started = time.monotonic()
            try:
                result = await self.engine.reconcile(fetch=fetch, check_updates=update)
            except (ReconcilerError, UnitError, OSError) as exc:
                if not self.backend.manager.connected:
                    # the bus went away (dbus restarted): exit, and systemd's Restart=
                    # brings the daemon back on a fresh connection
                    raise
                text = exc.diagnostics() if hasattr(exc, "diagnostics") else str(exc)
                log.error("reconcile failed (retrying in 5s): %s", text)
                sd_notify(f"STATUS=reconcile failed: {text.splitlines()[0]}")
                self.pass_started = None
                if await _sleep_or(self.stopping, 5.0):
                    break
                self.mark("retry after a failed pass", fetch=fetch, update=update)
                continue
            finally:
                self.pass_started = None
            self.passes += 1
            changed = [o for o in result.outcomes if not o.skipped]
            if changed:
                log.info(
                    "pass %d (rev %s): %s",
                    self.passes,
                    result.plan.revision,
                    "; ".join(f"{o.kind} {o.name}" + ("" if o.ok else " failed") for o in changed),
                )
            sd_notify(f"STATUS={result.status['summary']}")
            if not ready:
                sd_notify("READY=1")
                ready = True
                log.info("ready: %s", result.status["summary"])

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: self.mark("SIGHUP", fetch=True))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        inputs: list[Callable[[], Any]] = [
            self.watch_sync_requests,
            self.watch_units,
            self.watch_bus,
            self.watchdog,
            lambda: self.every(self.resync_interval, "periodic resync"),
            lambda: self.every(self.auto_update_interval, "auto-update", update=True),
        ]
        if self.spec_dir is not None:
            inputs.append(self.watch_directory)
        if self.git:
            inputs.append(lambda: self.every(self.fetch_interval, "git fetch", fetch=True))
        tasks = [asyncio.create_task(start()) for start in inputs]
        worker = asyncio.create_task(self.worker())
        self.dirty.set()
        stop = asyncio.create_task(self.stopping.wait())
        done, _ = await asyncio.wait({worker, stop}, return_when=asyncio.FIRST_COMPLETED)
        sd_notify("STOPPING=1")
        for task in [*tasks, worker, stop]:
            task.cancel()
        await asyncio.gather(*tasks, worker, stop, return_exceptions=True)
        if worker in done and worker.exception() is not None:
            raise worker.exception()  # type: ignore[misc]
        if self.lost_bus:
            raise BusLost()
        log.info("stopped; containers keep running under systemd")


async def _sleep_or(event: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``event`` is set first; True if it was."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


def make_source(args: argparse.Namespace, paths: EnginePaths) -> tuple[Source, Path | None]:
    if args.git:
        from pycontainers.reconciler.gitsource import GitSource, GitSourceConfig, cache_dir_for

        config = GitSourceConfig(args.git, args.ref, args.subdir)
        return GitSpecSource(GitSource(config, cache_dir_for(paths.base, args.git))), None
    from pycontainers.reconciler.commands import default_spec_dir

    directory = (args.path or default_spec_dir()).absolute()
    return DirectorySpecSource(directory), directory


async def _main(args: argparse.Namespace, paths: EnginePaths, target: BusTarget) -> None:
    source, spec_dir = make_source(args, paths)
    paths.runroot.mkdir(parents=True, exist_ok=True)
    images = ImageSupply(paths, args.policy)
    async with await SystemdBackend.open(target) as backend:
        engine = Engine(paths, Applier(paths, backend, images), images, source)
        daemon = Daemon(
            engine,
            backend,
            paths,
            spec_dir=spec_dir,
            git=bool(args.git),
            resync_interval=args.resync_interval,
            fetch_interval=args.fetch_interval,
            auto_update_interval=args.auto_update_interval,
        )
        log.info("following %s; storage %s", source.describe(), paths.storage)
        await daemon.run()


def run(args: argparse.Namespace, paths: EnginePaths, target: BusTarget) -> int:
    try:
        asyncio.run(_main(args, paths, target))
    except (ReconcilerError, UnitError) as exc:
        log.error("%s", exc.diagnostics())
        sd_notify(f"STATUS=failed: {exc}")
        return 1
    return 0
