"""Benchmark: from the start call to the container's init running (READY), as systemd units.

Run as root from the repository:  .venv/bin/python bench/units/start_latency.py [--reps 15]

Boots the throwaway systemd 252 of the test suite (tests/harness), then runs the
measurements inside it, so every variant talks to the same manager and starts the same
busybox bundle (config.json from `runc spec`, a shell init that traps SIGTERM):

  pycontainers      units.SystemdBackend.start(): one D-Bus connection, StartTransientUnit,
                    Type=notify; `pycontainers-runtime run --detach` hands MAINPID + READY
                    to systemd and exits; returns when the start job is done
  systemd-run+runc  the naive equivalent: one `systemd-run` process per container (it waits
                    for the start job), Type=forking + PIDFile, `runc run --detach`; the job
                    ends when runc has started the init and written its pid file
  dbus+runc         the same runc unit, started through units.SystemdManager: separates the
                    cost of the D-Bus client from the cost of the runtime

`--wait` is not used for systemd-run: it waits for the unit to *exit*, which a long-running
container never does; without `--no-block` systemd-run already waits for the start job.
runc runs with `--rootless true --no-new-keyring` because the sandbox's v1 cgroup controllers
are read-only (runc ignores cgroup errors only in rootless mode) and nspawn forbids new
session keyrings; its init then lands outside the unit's cgroup, which only makes it faster.

For 1 container: the latency of each start, over --reps rounds. For 50 started concurrently:
each container's latency and the batch time until all 50 are READY, over --reps50 rounds.
Variants are interleaved within each round. Prints medians and ratios (ours / peer).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from pycontainers.units.backend import SystemdBackend  # noqa: E402
from pycontainers.units.bus import system_bus  # noqa: E402
from pycontainers.units.errors import UnitError  # noqa: E402
from pycontainers.units.manager import SystemdManager  # noqa: E402
from pycontainers.units.model import (  # noqa: E402
    RestartPolicy,
    RuntimeCommand,
    UnitProperty,
    UnitSpec,
    default_runtime_path,
)

RUNC = shutil.which("runc") or "/usr/sbin/runc"
RUNC_ARGS = [RUNC, "--rootless", "true"]
INIT = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"
VARIANTS = ("pycontainers", "systemd-run+runc", "dbus+runc")


# -- host side: boot the sandbox, build the bundle, run the guest side inside it ------------


def build_bundle(base: Path) -> Path:
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "sleep"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d).mkdir()
    subprocess.run([RUNC, "spec", "--bundle", str(base)], check=True)
    config = json.loads((base / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/sh", "-c", INIT]
    config["root"] = {"path": str(rootfs), "readonly": True}
    (base / "config.json").write_text(json.dumps(config))
    return base


def host_main(args: argparse.Namespace) -> None:
    from harness.sandbox import Sandbox, free_uid

    work = Path(tempfile.mkdtemp(prefix="pyc-bench-units-"))
    work.chmod(0o755)
    bundle = build_bundle(work / "bundle")
    state = Path(tempfile.mkdtemp(prefix="pyc-bench-units-state-"))
    sbx = Sandbox(state_dir=state, binds=[str(REPO), str(work)], user_uid=free_uid())
    sbx.start()
    try:
        out = sbx.exec(
            sys.executable, __file__, "--guest", str(bundle),
            "--reps", str(args.reps), "--reps50", str(args.reps50), "--n", str(args.n),
            timeout=3600, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"the guest side failed:\n{out.stderr[-3000:]}")
    finally:
        sbx.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    results = json.loads(out.stdout)
    raw = REPO / "bench" / "results" / "units_start_latency.json"
    raw.parent.mkdir(exist_ok=True)
    raw.write_text(json.dumps(results))
    report(results, args.n)
    print(f"raw results: {raw}")


def report(results: dict[str, dict[str, list[float]]], n: int) -> None:
    def med(key: str, variant: str) -> float:
        return statistics.median(results[key][variant]) * 1000

    rows = [
        ("1 container: start -> READY", "one"),
        (f"{n} concurrent: per container", "many"),
        (f"{n} concurrent: all READY", "batch"),
    ]
    print(
        f"{'median ms':32}" + "".join(f"{v:>18}" for v in VARIANTS) + "   ours/runc  ours/dbus+runc"
    )
    for label, key in rows:
        ours, naive, client = (med(key, v) for v in VARIANTS)
        print(
            f"{label:32}{ours:18.1f}{naive:18.1f}{client:18.1f}"
            f"{ours / naive:11.2f}x{ours / client:14.2f}x"
        )
    print(f"samples: {', '.join(f'{k}={len(v[VARIANTS[0]])}' for k, v in results.items())}")


# -- guest side: the measurements -------------------------------------------------------------


def runc_properties(cid: str, bundle: str) -> list[UnitProperty]:
    pid_file = f"/run/bench-{cid}.pid"
    argv = [*RUNC_ARGS, "run", "--no-new-keyring", "--detach", "--pid-file", pid_file,
            "--bundle", bundle, cid]  # fmt: skip
    stop = [*RUNC_ARGS, "delete", "--force", cid]
    return [
        UnitProperty("Type", "s", "forking"),
        UnitProperty("PIDFile", "s", pid_file),
        UnitProperty("Delegate", "b", True),
        UnitProperty("ExecStart", "a(sasb)", [(argv[0], argv, False)]),
        UnitProperty("ExecStopPost", "a(sasb)", [(stop[0], stop, True)]),
    ]


def systemd_run_argv(cid: str, bundle: str) -> list[str]:
    pid_file = f"/run/bench-{cid}.pid"
    return [
        "systemd-run", f"--unit=bench-{cid}", "--quiet",
        "-p", "Type=forking", "-p", f"PIDFile={pid_file}", "-p", "Delegate=yes",
        "-p", f"ExecStopPost=-{' '.join(RUNC_ARGS)} delete --force {cid}",
        *RUNC_ARGS, "run", "--no-new-keyring", "--detach", "--pid-file", pid_file,
        "--bundle", bundle, cid,
    ]  # fmt: skip


async def timed(start: Callable[[], Awaitable[object]]) -> float:
    t0 = time.perf_counter()
    await start()
    return time.perf_counter() - t0


async def run_systemd_run(argv: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)
    if await proc.wait() != 0:
        raise RuntimeError(f"{argv[:2]} failed")


async def batch(
    variant: str, n: int, bundle: str, backend: SystemdBackend, manager: SystemdManager
) -> tuple[list[float], float, list[str]]:
    """Start n containers at once; per-container latencies, batch time, units to stop."""
    ids = [f"b{uuid.uuid4().hex[:10]}" for _ in range(n)]
    if variant == "pycontainers":
        specs = [
            UnitSpec(cid, bundle, "bench", "sha256:" + "0" * 64,
                     RuntimeCommand(default_runtime_path()), RestartPolicy("no"))
            for cid in ids
        ]  # fmt: skip
        starts = [lambda s=s: backend.start(s) for s in specs]
        units = [s.unit for s in specs]
    elif variant == "systemd-run+runc":
        starts = [lambda c=c: run_systemd_run(systemd_run_argv(c, bundle)) for c in ids]
        units = [f"bench-{c}.service" for c in ids]
    else:
        units = [f"bench-{c}.service" for c in ids]
        starts = [
            lambda c=c, u=u: manager.start_transient_unit(u, runc_properties(c, bundle))
            for c, u in zip(ids, units, strict=True)
        ]
    t0 = time.perf_counter()
    latencies = await asyncio.gather(*(timed(s) for s in starts))
    return list(latencies), time.perf_counter() - t0, units


async def stop_all(manager: SystemdManager, units: list[str]) -> None:
    async def stop(unit: str) -> None:
        # Not measured: SIGKILL the init first, so no stop waits for a signal handler.
        with contextlib.suppress(UnitError):
            await manager.kill_unit(unit, "main", 9)
        await manager.stop_unit(unit)
        await manager.wait_for(unit, lambda s: s is None or s.active_state == "failed", 30)
        if (await manager.status_or_none(unit)) is not None:
            await manager.reset_failed_unit(unit)

    await asyncio.gather(*(stop(u) for u in units))


async def guest_main(
    bundle: str, reps: int, reps50: int, n: int
) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {
        k: {v: [] for v in VARIANTS} for k in ("one", "many", "batch")
    }
    async with await SystemdBackend.open(system_bus()) as backend:
        manager = backend.manager
        for variant in VARIANTS:  # warm caches (page cache, python bytecode) once each
            _, _, units = await batch(variant, 1, bundle, backend, manager)
            await stop_all(manager, units)
        for rnd in range(max(reps, reps50)):
            order = VARIANTS[rnd % 3 :] + VARIANTS[: rnd % 3]
            for variant in order:
                if rnd < reps:
                    lat, _, units = await batch(variant, 1, bundle, backend, manager)
                    results["one"][variant] += lat
                    await stop_all(manager, units)
                if rnd < reps50:
                    lat, total, units = await batch(variant, n, bundle, backend, manager)
                    results["many"][variant] += lat
                    results["batch"][variant].append(total)
                    await stop_all(manager, units)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="rounds with 1 container")
    parser.add_argument("--reps50", type=int, default=3, help="rounds with n containers")
    parser.add_argument("--n", type=int, default=50, help="containers started at once")
    parser.add_argument("--guest", metavar="BUNDLE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.guest:
        print(json.dumps(asyncio.run(guest_main(args.guest, args.reps, args.reps50, args.n))))
    else:
        host_main(args)


if __name__ == "__main__":
    main()
