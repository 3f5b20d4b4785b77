"""Parse + validate + plan 1,000 container specs against an actual state of 1,000 units.

Run: .venv/bin/python bench/reconciler/bench_plan.py [--runs 7] [--containers 1000]

Stages, each timed (median of --runs): read the directory snapshot, load_desired (YAML
parse + pydantic validation + hashing + dependsOn checks), plan. Side by side, the floor:
PyYAML's C loader alone on the same bytes (no validation), so the ratio says what the
model layer costs on top of parsing. There is no peer tool on this machine for the whole
job (podman/quadlet is not installed; kubectl's client dry-run needs an API server).
Memory: tracemalloc peak of one full pass (Python allocations), and the peak RSS of a
fresh process doing one full pass, next to that process's RSS after imports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import yaml

from pycontainers.reconciler.actual import ActualContainer, ActualState
from pycontainers.reconciler.desired import load_desired
from pycontainers.reconciler.dirsource import DirectorySource
from pycontainers.reconciler.plan import plan

IMAGE = "127.0.0.1:5000/busybox:latest"


def spec(i: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image": IMAGE if i % 3 else f"127.0.0.1:5000/app{i % 17}:1.{i % 5}",
        "command": ["/bin/sh", "-c"],
        "args": [f"exec httpd -f -p {10000 + i}"],
        "env": {"GREETING": f"hello {i}", "PORT": 10000 + i, "MODE": "production"},
        "resources": {"memory": f"{32 + i % 64}Mi", "cpus": "250m", "pids": 64},
        "mounts": [
            {"type": "tmpfs", "target": "/tmp", "size": "16Mi"},
            {"type": "volume", "source": f"data-{i}", "target": "/data"},
        ],
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "readOnlyRootFilesystem": True,
        "stopTimeout": "5s",
        "restartPolicy": "Always" if i % 10 else "OnFailure",
    }
    if i % 4 == 1:
        body["dependsOn"] = [f"c{i - 1:04}"]
    return {
        "apiVersion": "pycontainers/v1",
        "kind": "Container",
        "metadata": {"name": f"c{i:04}", "labels": {"tier": "bench", "index": str(i)}},
        "spec": body,
    }


def write_specs(root: Path, count: int) -> None:
    for i in range(count):
        (root / f"c{i:04}.yaml").write_text(yaml.safe_dump(spec(i), sort_keys=False))


def actual_for(root: Path, count: int) -> ActualState:
    """1,000 units: most match, some run an older spec, some failed, some are stale."""
    desired = load_desired(DirectorySource(root).read_snapshot())
    units = []
    for i in range(count):
        name = f"c{i:04}"
        want = desired.containers.get(name)
        if i % 25 == 0 or want is None:  # 4%: spec gone, unit still there (remove)
            units.append(ActualContainer(f"old{i:04}", applied_hash="0" * 64))
            continue
        units.append(
            ActualContainer(
                name,
                applied_hash="f" * 64 if i % 20 == 3 else want.spec_hash,  # 5% replace
                active_state="failed" if i % 33 == 5 else "active",  # 3% failed
                result="exit-code" if i % 33 == 5 else "success",
                source_file=want.source_file,
                applied_spec=want.normalised,
            )
        )
    return ActualState.of(*units)


def one_pass(root: Path, actual: ActualState) -> dict[str, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    snapshot = DirectorySource(root).read_snapshot()
    t1 = time.perf_counter()
    desired = load_desired(snapshot)
    t2 = time.perf_counter()
    result = plan(desired, actual)
    t3, c3 = time.perf_counter(), time.process_time()
    assert len(desired.containers) > 0 and not desired.errors and result.changes
    return {
        "read": t1 - t0,
        "load_desired": t2 - t1,
        "plan": t3 - t2,
        "total": t3 - t0,
        "total_cpu": c3 - c0,
    }


def yaml_floor(root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of reading and parsing the same files with PyYAML alone."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    c0, t0 = time.process_time(), time.perf_counter()
    for path in sorted(root.glob("*.yaml")):
        list(yaml.load_all(path.read_bytes(), Loader=loader))
    return time.perf_counter() - t0, time.process_time() - c0


def _vm_hwm_kib() -> int:
    """Peak RSS of this process image. Not ru_maxrss: Linux carries that across execve,
    so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(root: str, count: int) -> None:
    """One full pass in a fresh process: report its peak RSS and its RSS after imports.

    The actual state is built first (as the units layer would hand it over), then one
    pass: snapshot + load_desired + plan."""
    base = _vm_hwm_kib()
    actual = actual_for(Path(root), count)
    one_pass(Path(root), actual)
    print(json.dumps({"rss_after_imports_kib": base, "peak_rss_kib": _vm_hwm_kib()}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.containers)
        return
    with tempfile.TemporaryDirectory(prefix="pyc-bench-") as tmp:
        root = Path(tmp)
        write_specs(root, args.containers)
        actual = actual_for(root, args.containers)
        one_pass(root, actual)  # warm the page cache and pydantic's validators
        passes = []
        floors = []
        for _ in range(args.runs):  # interleaved, so both see the same machine state
            floors.append(yaml_floor(root))
            passes.append(one_pass(root, actual))
        tracemalloc.start()
        one_pass(root, actual)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(root),
                    "--containers",
                    str(args.containers),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        medians = {k: statistics.median(p[k] for p in passes) for k in passes[0]}
        floor = statistics.median(f[0] for f in floors)
        floor_cpu = statistics.median(f[1] for f in floors)
        counts = plan(load_desired(DirectorySource(root).read_snapshot()), actual).counts()
    report = {
        "containers": args.containers,
        "units": len(actual.containers),
        "runs": args.runs,
        "median_s": medians,
        "yaml_parse_only_median_s": floor,
        "yaml_parse_only_median_cpu_s": floor_cpu,
        "ratio_total_to_yaml_parse": medians["total"] / floor,
        "ratio_total_cpu_to_yaml_parse_cpu": medians["total_cpu"] / floor_cpu,
        "load_average_1m": os.getloadavg()[0],
        "tracemalloc_peak_mib": traced_peak / 2**20,
        "peak_rss_mib": rss["peak_rss_kib"] / 1024,
        "rss_after_imports_mib": rss["rss_after_imports_kib"] / 1024,
        "plan_counts": counts,
    }
    print(json.dumps(report, indent=2))
    results = Path(__file__).resolve().parents[1] / "results"
    results.mkdir(exist_ok=True)
    (results / "reconciler_plan.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
