"""Pull benchmark: ``pycontainers image pull`` vs ``skopeo copy docker://... oci:...``.

Usage (as root, from the repository): ``.venv/bin/python bench/distribution/pull_bench.py
[--work /dev/shm/pyc-pull-bench] [--rounds 5]``

Builds the ~300 MB three-layer image once (``unpack-fixture.sh``: umoci + GNU tar, no
project code; 4 x 50 MiB random files, 20,000 small files, whiteouts and an opaque
directory), starts Debian's docker-registry on 127.0.0.1 with its storage under the work
directory, pushes the image with skopeo, then per round, rotating which goes first:

* ``pycontainers``  ``pycontainers --root FRESH image pull -q REF`` (a fresh store)
* ``pycontainers-api`` the same pull through ``pull()`` inside the benchmark process
                    (imports and interpreter start-up not counted): the data path alone
* ``skopeo``        ``skopeo copy --src-tls-verify=false docker://REF oci:FRESH:big``

Both are timed as whole processes (interpreter start-up included for ours) into fresh
directories on the same file system; cleanup is not timed. CPU time (user + system of
the process tree) is measured too: it is steadier than wall time on a loaded machine.
Prints medians, the ratios ours/skopeo and MB/s of compressed blob bytes, and writes
``bench/results/distribution_pull.json`` (not committed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PYCONTAINERS = REPO / ".venv" / "bin" / "pycontainers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    data = work / "registry-data"
    data.mkdir(parents=True, exist_ok=True)
    conf = work / "registry.yml"
    conf.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {data}\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(work / "registry.log", "ab")  # noqa: SIM115 - lives as long as the registry
    proc = subprocess.Popen(["docker-registry", "serve", str(conf)], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            return proc, f"127.0.0.1:{port}"
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("docker-registry did not start; see registry.log") from None
            time.sleep(0.05)


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the process and its children) of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def timed_api(ref: str, dest: Path) -> tuple[float, float]:
    """The same pull through the API in this process: imports and start-up not counted."""
    from pycontainers.distribution.docker_transport import ConnectOptions
    from pycontainers.distribution.pull import pull
    from pycontainers.distribution.registries_conf import RegistriesConf

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    asyncio.run(pull(ref, dest, ConnectOptions(registries=RegistriesConf())))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def blob_bytes(layout: Path) -> int:
    return sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/dev/shm/pyc-pull-bench"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    fixture = work / "fixture"
    subprocess.run(["sh", str(HERE / "unpack-fixture.sh"), str(fixture)], check=True)
    registry, host = start_registry(work)
    try:
        ref = f"{host}/bench/big:latest"
        subprocess.run(
            [
                *("skopeo", "copy", "-q", "--dest-tls-verify=false"),
                *(f"oci:{fixture / 'oci'}:big", f"docker://{ref}"),
            ],
            check=True,
        )
        contenders: dict[str, Callable[[Path], tuple[float, float]]] = {
            "pycontainers": lambda d: timed(
                [str(PYCONTAINERS), "--root", str(d), "image", "pull", "-q", ref]
            ),
            "pycontainers-api": lambda d: timed_api(ref, d),
            "skopeo": lambda d: timed(
                [
                    *("skopeo", "copy", "-q", "--src-tls-verify=false"),
                    *(f"docker://{ref}", f"oci:{d}:big"),
                ]
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        size = 0
        names = list(contenders)
        for rnd in range(args.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in order:
                dest = work / f"out-{name}"
                shutil.rmtree(dest, ignore_errors=True)
                wall, used = contenders[name](dest)
                times[name].append(wall)
                cpu[name].append(used)
                size = blob_bytes(dest)
                shutil.rmtree(dest, ignore_errors=True)
            print(f"round {rnd + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in order))
    finally:
        registry.send_signal(signal.SIGTERM)
        registry.wait(10)
    medians = {name: statistics.median(t) for name, t in times.items()}
    cpu_medians = {name: statistics.median(t) for name, t in cpu.items()}
    ratio = medians["pycontainers"] / medians["skopeo"]
    mb = size / 1e6
    print(f"\n{args.rounds} rounds, {mb:.0f} MB of blobs, load average {os.getloadavg()[0]:.1f}")
    print("| contender | wall median (s) | MB/s | wall ratio | CPU median (s) | CPU ratio |")
    print("|---|---|---|---|---|---|")
    for name, med in medians.items():
        print(
            f"| {name} | {med:.2f} | {mb / med:.0f} | {med / medians['skopeo']:.2f} "
            f"| {cpu_medians[name]:.2f} | {cpu_medians[name] / cpu_medians['skopeo']:.2f} |"
        )
    result = {
        "rounds": args.rounds,
        "blob_bytes": size,
        "wall": times,
        "cpu": cpu,
        "wall_medians": medians,
        "cpu_medians": cpu_medians,
        "ratio_pycontainers_over_skopeo": ratio,
        "work": str(work),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    out = REPO / "bench" / "results" / "distribution_pull.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"raw results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
