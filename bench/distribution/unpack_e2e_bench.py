"""End to end: pull + unpack with pycontainers vs ``skopeo copy`` + ``umoci unpack``.

Usage (as root, from the repository): ``.venv/bin/python
bench/distribution/unpack_e2e_bench.py [--work /dev/shm/pyc-e2e-bench] [--rounds 5]``

Same image and registry set-up as ``pull_bench.py`` (whose helpers it reuses). Per round,
alternating which goes first, into fresh directories on one file system:

* ``pycontainers``  ``image pull -q REF`` then ``image unpack REF DIR`` (two processes)
* ``peers``         ``skopeo copy docker://REF oci:D:big`` then ``umoci unpack``

Each side is timed as a whole (both processes, start-up included); cleanup is not timed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pull_bench import PYCONTAINERS, start_registry  # noqa: E402


def run_all(cmds: list[list[str]]) -> float:
    start = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/dev/shm/pyc-e2e-bench"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    fixture = work / "fixture"
    subprocess.run(["sh", str(HERE / "unpack-fixture.sh"), str(fixture)], check=True)
    registry, host = start_registry(work)
    times: dict[str, list[float]] = {"pycontainers": [], "peers": []}
    try:
        ref = f"{host}/bench/big:latest"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "-q",
                "--dest-tls-verify=false",
                f"oci:{fixture / 'oci'}:big",
                f"docker://{ref}",
            ],
            check=True,
        )

        def ours(d: Path) -> list[list[str]]:
            pyc = [str(PYCONTAINERS), "--root", str(d / "store")]
            return [
                [*pyc, "image", "pull", "-q", ref],
                [*pyc, "image", "unpack", ref, str(d / "rootfs")],
            ]

        def peers(d: Path) -> list[list[str]]:
            return [
                [
                    "skopeo",
                    "copy",
                    "-q",
                    "--src-tls-verify=false",
                    f"docker://{ref}",
                    f"oci:{d}/oci:big",
                ],
                ["umoci", "unpack", "--image", f"{d}/oci:big", str(d / "bundle")],
            ]

        sides = {"pycontainers": ours, "peers": peers}
        for rnd in range(args.rounds):
            order = list(sides) if rnd % 2 == 0 else list(reversed(sides))
            for name in order:
                dest = work / f"out-{name}"
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir()
                times[name].append(run_all(sides[name](dest)))
                shutil.rmtree(dest, ignore_errors=True)
            print(f"round {rnd + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in order))
    finally:
        registry.send_signal(signal.SIGTERM)
        registry.wait(10)
    med = {n: statistics.median(t) for n, t in times.items()}
    print(f"\n| side | median s | ratio vs peers |  ({args.rounds} rounds)")
    print("| --- | ---: | ---: |")
    for n, m in med.items():
        print(f"| {n} | {m:.2f} | {m / med['peers']:.2f}x |")
    out = HERE.parent / "results" / "unpack_e2e.json"
    out.write_text(json.dumps({"times": times, "median": med}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
