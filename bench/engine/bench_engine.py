"""Benchmark the engine end to end in a throwaway systemd (as `make demo` boots it).

Run as root from the repository:  .venv/bin/python bench/engine/bench_engine.py
Options: --drops 20 --many 100 --idle 60 (seconds) --podman-runs 20

(a) file dropped -> container READY, image cached: the time from the rename of a spec file
    into the watched directory to systemd's "Started pycontainers-X.service" (the runtime's
    READY=1), read from the journal's realtime stamp (guest and host share the clock).
    Median of --drops runs, each a fresh container (the file is removed between runs).
    Peer: `podman run --rm --network none` of the same image on the host (if installed;
    see PODMAN_RUN), median of --podman-runs, run after (a) in the same process.
(b) --many containers from a cold start of the daemon (image cached): time from
    `systemctl start pycontainers` to every unit active; CPU time and peak RSS of the daemon.
(c) the daemon idle with those containers for --idle seconds: its CPU time and RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "engine"))

from engine_testkit import PYC, EngineEnv, spec_yaml  # noqa: E402

from harness.sandbox import Sandbox  # noqa: E402

PORT = 5123
IMAGE = f"127.0.0.1:{PORT}/bench/busybox:latest"
SLEEPER = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"
# Podman 4.3 on this VM: its default rlimits (NOFILE 1048576, NPROC) are above the hard
# limits here (setrlimit EPERM), and crun refuses the hybrid cgroup layout, so: runc, and
# low limits every runtime may set.
PODMAN_RUN = [
    "podman", "run", "--rm", "--network", "none", "--runtime", "runc",
    "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
]  # fmt: skip


def started_at(env: EngineEnv, name: str, after: float) -> float | None:
    out = env.systemd.exec(
        "journalctl", "--no-pager", "-o", "json", "-u", f"pycontainers-{name}.service",
        "--since", f"@{after - 1:.3f}", check=False,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        entry = json.loads(line)
        if str(entry.get("MESSAGE", "")).startswith("Started pycontainers-"):
            return int(entry["__REALTIME_TIMESTAMP"]) / 1e6
    return None


def wait_until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(what)


def proc_figures(env: EngineEnv, pid: int) -> tuple[float, int, int]:
    """(CPU seconds, VmRSS kB, VmHWM kB) of a guest process."""
    stat = env.systemd.exec("cat", f"/proc/{pid}/stat").stdout
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = env.systemd.exec("cat", f"/proc/{pid}/status").stdout
    values = {
        line.split(":")[0]: int(line.split()[1])
        for line in status.splitlines()
        if line.startswith(("VmRSS", "VmHWM"))
    }
    return cpu, values["VmRSS"], values["VmHWM"]


def podman_runs(oci: Path, runs: int) -> list[float] | None:
    if shutil.which("podman") is None:
        return None
    pulled = subprocess.run(
        ["podman", "pull", "-q", f"oci:{oci}:busybox"], capture_output=True, text=True
    )
    if pulled.returncode != 0:
        print(f"podman pull failed: {pulled.stderr.strip()}", file=sys.stderr)
        return None
    image = pulled.stdout.split()[-1]
    times = []
    try:
        for _ in range(runs + 1):
            t0 = time.monotonic()
            run = subprocess.run(
                [*PODMAN_RUN, image, "true"],
                capture_output=True, text=True,
            )  # fmt: skip
            if run.returncode != 0:
                print(f"podman run failed: {run.stderr.strip()}", file=sys.stderr)
                return None
            times.append(time.monotonic() - t0)
    finally:
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True)
    return times[1:]  # the first run warms caches


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--many", type=int, default=100)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--podman-runs", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="pyc-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    work = base / "work"
    work.mkdir(mode=0o755)
    sbx = Sandbox(state_dir=base / "sandbox", binds=[str(REPO), str(base)])
    results: dict[str, object] = {"loadavg_at_start": os.getloadavg()}
    try:
        subprocess.run(
            ["bash", str(REPO / "packaging/demo/build-busybox.sh"), str(work / "oci")],
            check=True, capture_output=True,
        )  # fmt: skip
        sbx.start()
        env = EngineEnv(sbx, work, IMAGE)
        sbx.exec(
            "bash", str(REPO / "packaging/demo/registry.sh"), "start", str(work / "reg"), str(PORT)
        )
        sbx.exec(PYC, "image", "copy", "-q", f"oci:{work / 'oci'}:busybox", f"docker://{IMAGE}")
        env.pyc("image", "pull", "-q", IMAGE)
        specs = work / "specs"
        specs.mkdir(mode=0o755)
        env.install_daemon(str(specs), "--auto-update-interval", "0", "--resync-interval", "300")
        env.start_daemon()

        # (a) drop -> READY
        latencies = []
        for i in range(args.drops + 1):
            name = f"drop-{i}"
            tmp = specs / f".{name}.tmp"
            tmp.write_text(spec_yaml(name, SLEEPER, image=IMAGE))
            t0 = time.time()
            tmp.rename(specs / f"{name}.yaml")
            started = wait_until(lambda n=name, t=t0: started_at(env, n, t), 30, name)
            if i:  # the first one warms the daemon's caches
                latencies.append(started - t0)
            (specs / f"{name}.yaml").unlink()
            wait_until(lambda n=name: n not in env.units(), 30, f"{name} removed")
        results["drop_to_ready_s"] = {
            "median": statistics.median(latencies),
            "min": min(latencies),
            "max": max(latencies),
            "runs": len(latencies),
        }
        ms = sorted(round(x * 1000) for x in latencies)
        print(f"(a) drop -> READY: median {statistics.median(ms):.0f} ms (ms: {ms})")

        # (b) cold start with many containers
        env.stop_daemon()
        for i in range(args.many):
            (specs / f"many-{i:03d}.yaml").write_text(
                spec_yaml(f"many-{i:03d}", SLEEPER, image=IMAGE)
            )
        t0 = time.monotonic()
        sbx.exec("systemctl", "start", "--no-block", "pycontainers.service")
        wanted = {f"many-{i:03d}" for i in range(args.many)}

        def all_active() -> bool:
            out = sbx.systemctl(
                "list-units", "--plain", "--no-legend", "--state=active", "pycontainers-many-*"
            ).stdout
            return len(out.splitlines()) >= len(wanted)

        wait_until(all_active, 600, "all containers active")
        cold = time.monotonic() - t0
        pid = env.daemon_pid()
        cpu, rss, hwm = proc_figures(env, pid)
        results["cold_start"] = {
            "containers": args.many,
            "seconds": cold,
            "daemon_cpu_s": cpu,
            "daemon_peak_rss_kb": hwm,
        }
        print(f"(b) {args.many} containers from cold start: {cold:.1f} s to all active; "
              f"daemon CPU {cpu:.1f} s, peak RSS {hwm / 1024:.0f} MiB")  # fmt: skip

        # (c) idle
        # let the last passes settle: until the daemon used no CPU for 4 s (at most 60 s)
        settle_deadline, quiet, last = time.monotonic() + 60, 0, proc_figures(env, pid)[0]
        while quiet < 2 and time.monotonic() < settle_deadline:
            time.sleep(2)
            now = proc_figures(env, pid)[0]
            quiet, last = (quiet + 1 if now == last else 0), now
        cpu0, _, _ = proc_figures(env, pid)
        time.sleep(args.idle)
        cpu1, rss, _ = proc_figures(env, pid)
        results["idle"] = {"seconds": args.idle, "daemon_cpu_s": cpu1 - cpu0, "daemon_rss_kb": rss}
        print(f"(c) idle {args.idle:.0f} s with {args.many} containers: daemon CPU "
              f"{(cpu1 - cpu0) * 1000:.0f} ms, RSS {rss / 1024:.0f} MiB")  # fmt: skip

        results["loadavg_at_end"] = os.getloadavg()
        print(f"    load average at start {results['loadavg_at_start']}, end {os.getloadavg()}")
        env.cleanup()
        times = podman_runs(work / "oci", args.podman_runs)
        if times:
            med = statistics.median(times)
            results["podman_run_rm_s"] = {"median": med, "runs": len(times)}
            ratio = results["drop_to_ready_s"]["median"] / med  # type: ignore[index]
            results["ratio_drop_vs_podman"] = ratio
            print(f"    podman run --rm --network none: median {med * 1000:.0f} ms; {ratio:.2f}x")
        else:
            print("    no podman figure (not installed, or it cannot run here: see above)")
    except Exception:
        if sbx.leader:
            log = sbx.exec(
                "journalctl", "--no-pager", "-n", "60", "-u", "pycontainers", check=False
            )
            print(log.stdout[-6000:], file=sys.stderr)
        raise
    finally:
        sbx.stop()
        out = REPO / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "engine.json").write_text(json.dumps(results, indent=2))
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
