"""Benchmark: busybox /bin/true, create+start+wait+delete, pycontainers-runtime vs runc vs crun.

Run as root from the repository:  .venv/bin/python bench/runtime/lifecycle.py [-n 100]

Two measurements per runtime, same bundle, interleaved round-robin so that machine load
hits all runtimes alike:
  run   one `run` command (create + start + wait + delete in one process, as `runc run`)
  split four commands: `create`, `start`, wait for the init to exit (polling /proc from
        here, no extra process), `delete`
The whole benchmark runs inside bench/runtime/v1view.sh (a private mount namespace showing the
cgroup v1 hierarchies only) because crun 1.8 refuses this hybrid host otherwise; all three
runtimes see the same view. Prints medians per runtime and ratios to runc and crun.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
V1VIEW = Path(__file__).resolve().parent / "v1view.sh"
VENV_PY = REPO / ".venv" / "bin" / "python"

sys.path.insert(0, str(REPO))
from pycontainers.runtime import specgen  # noqa: E402


def build_bundle(base: Path) -> Path:
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    (rootfs / "bin" / "true").symlink_to("busybox")
    for d in ("proc", "sys", "dev", "tmp"):
        (rootfs / d).mkdir()
    cfg = specgen.default_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    cfg["root"] = {"path": str(rootfs), "readonly": True}
    cfg["linux"].pop("seccomp", None)  # as `runc spec`: no seccomp profile
    (base / "config.json").write_text(json.dumps(cfg))
    return base


def runtimes(state: Path) -> dict[str, list[str]]:
    return {
        # the script `make` installs (pycontainers.runtime.launcher: python -I -S)
        "pycontainers-runtime": [str(REPO / ".venv/bin/pycontainers-runtime"), "--root",
                                 str(state / "ours")],
        "runc": ["runc", "--root", str(state / "runc")],
        "crun": ["crun", "--root", str(state / "crun")],
    }  # fmt: skip


# what any runtime written in Python pays before its first line runs
INTERPRETER = [str(VENV_PY), "-I", "-S", "-c", "pass"]


def _quiet(argv: list[str]) -> None:
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)  # fmt: skip


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once_run(rt: list[str], bundle: Path, cid: str) -> tuple[float, float]:
    """(wall, CPU) seconds; CPU counts the runtime and every descendant it reaped."""
    c0, t0 = _cpu(), time.perf_counter()
    _quiet([*rt, "run", "--bundle", str(bundle), cid])
    return time.perf_counter() - t0, _cpu() - c0


def once_split(rt: list[str], bundle: Path, cid: str, pid_file: Path) -> float:
    t0 = time.perf_counter()
    _quiet([*rt, "create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid])
    _quiet([*rt, "start", cid])
    pid = int(pid_file.read_text())
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    break
        except FileNotFoundError:
            break
        time.sleep(0.0005)
    _quiet([*rt, "delete", cid])
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100, help="iterations per runtime and mode")
    parser.add_argument(
        "--rcu-expedited",
        action="store_true",
        help="run with /sys/kernel/rcu_expedited=1 (restored afterwards): no cgroup attach"
        " wait for any runtime (see bench/runtime/attach_wait.py)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    if os.environ.get("_PYC_BENCH_INNER") != "1":
        env = dict(os.environ, _PYC_BENCH_INNER="1")
        os.execve(str(V1VIEW), [str(V1VIEW), str(VENV_PY), *sys.argv], env)
    knob = Path("/sys/kernel/rcu_expedited")
    before = knob.read_text().strip() if args.rcu_expedited else ""
    if args.rcu_expedited:
        knob.write_text("1")
    try:
        return measure(args.n, expedited=args.rcu_expedited)
    finally:
        if args.rcu_expedited:
            knob.write_text(before)


def measure(n: int, *, expedited: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="pyc-bench-") as tmp:
        base = Path(tmp)
        bundle = build_bundle(base / "bundle")
        rts = runtimes(base / "state")
        results: dict[tuple[str, str], list[float]] = {}
        cpu: dict[str, list[float]] = {}
        for rt in rts.values():  # warm-up (page cache, pyc files)
            once_run(rt, bundle, "warm")
        interpreter: list[float] = []
        for i in range(n):
            t0 = time.perf_counter()
            _quiet(INTERPRETER)
            interpreter.append(time.perf_counter() - t0)
            for name, rt in rts.items():
                wall, used = once_run(rt, bundle, f"r{i}")
                results.setdefault((name, "run"), []).append(wall)
                cpu.setdefault(name, []).append(used)
                results.setdefault((name, "split"), []).append(
                    once_split(rt, bundle, f"s{i}", base / "pid")
                )
    print(f"busybox /bin/true, {n} sequential iterations each, medians in ms "
          f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus"
          f"{', rcu_expedited=1' if expedited else ''})\n")  # fmt: skip
    header = f"{'runtime':38} {'mode':10} {'median':>8} {'vs runc':>8} {'vs crun':>8}"
    print(header)
    print("-" * len(header))
    series = {(name, f"{mode} wall"): results[(name, mode)] for name, mode in results}
    series.update({(name, "run CPU"): cpu[name] for name in cpu})
    for mode in ("run wall", "run CPU", "split wall"):
        runc_med = statistics.median(series[("runc", mode)])
        crun_med = statistics.median(series[("crun", mode)])
        for name in rts:
            med = statistics.median(series[(name, mode)])
            print(f"{name:38} {mode:10} {med * 1000:8.1f} {med / runc_med:7.2f}x "
                  f"{med / crun_med:7.2f}x")  # fmt: skip
    # The least a runtime in Python can take: its interpreter's start plus the CPU time
    # crun (C, nothing to start) spends on the same container, every wait hidden.
    start = statistics.median(interpreter)
    floor = start + statistics.median(series[("crun", "run CPU")])
    runc_run = statistics.median(series[("runc", "run wall")])
    print(f"\ninterpreter start alone (python -I -S -c pass): {start * 1000:.1f} ms;"
          f" + crun's CPU = {floor * 1000:.1f} ms = {floor / runc_run:.2f}x runc")  # fmt: skip
    series[("interpreter", "start")] = interpreter
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    raw = {f"{name} {mode}": values for (name, mode), values in series.items()}
    name = "runtime-lifecycle-expedited.json" if expedited else "runtime-lifecycle.json"
    (out / name).write_text(json.dumps(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
