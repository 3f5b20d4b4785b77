"""Layer unpack benchmark: pycontainers vs umoci vs GNU tar on the ~300 MB three-layer image.

Usage (as root, from the repository): ``.venv/bin/python bench/distribution/unpack_bench.py
[--work /dev/shm/pyc-unpack-bench] [--rounds 5] [--tarfile]``

Builds the image once with ``unpack-fixture.sh`` (umoci + GNU tar, no project code), then
per round, in rotating order, each contender unpacks into a fresh directory on the same
file system (default tmpfs, as in the issue's figures):

* ``ours-layers``  ``pycontainers image unpack --layers``: one overlayfs dir per layer
* ``ours-flat``    ``pycontainers image unpack REF DIR``: one rootfs, whiteouts applied
* ``umoci``        ``umoci unpack --image LAYOUT:big DIR``
* ``gnu-tar``      ``tar -xzf`` of the three blobs into one dir (whiteouts NOT applied)
* ``tarfile``      (with --tarfile) Python ``tarfile.extractall(filter="data")`` (no
                   filter on Pythons before 3.11.4, which have none)

All are timed as whole processes (interpreter start-up included for ours), and both of
ours also in-process through the API. Cleanup is not timed. CPU time (user + system, all
threads and children) is recorded beside wall time: it is the steadier figure when other
work shares the cores. Prints a Markdown table of medians, ratios, files/s and MB/s
(uncompressed layer bytes), and writes JSON to bench/results/unpack.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# ``pycontainers image unpack`` through its own parser only, as a fresh process (start-up
# and imports timed), so a half-finished other subcommand cannot break the benchmark.
PYC = [
    str(REPO / ".venv" / "bin" / "python"),
    "-c",
    "import argparse, sys\n"
    "from pycontainers.distribution import cli_layers\n"
    "p = argparse.ArgumentParser(); p.add_argument('--root')\n"
    "s = p.add_subparsers(); image = s.add_parser('image').add_subparsers()\n"
    "cli_layers.register(image); a = p.parse_args(); sys.exit(a.func(a))",
]


def layer_facts(layout: Path) -> tuple[list[Path], int, int]:
    """The layer blobs (bottom first), total uncompressed bytes and total entries."""
    index = json.loads((layout / "index.json").read_text())
    desc = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "big"
    )
    blob = layout / "blobs" / "sha256"
    manifest = json.loads((blob / desc["digest"].split(":")[1]).read_text())
    blobs = [blob / layer["digest"].split(":")[1] for layer in manifest["layers"]]
    size = entries = 0
    for b in blobs:
        with gzip.open(b) as f:
            raw = f.read()
        size += len(raw)
        with tarfile.open(fileobj=__import__("io").BytesIO(raw)) as tar:
            entries += len(tar.getmembers())
    return blobs, size, entries


def _cpu() -> float:
    """CPU seconds of this process (all threads) and its waited-for children."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def timed(run: Callable[[Path], object], dest: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of one run; cleanup is not timed."""
    shutil.rmtree(dest, ignore_errors=True)
    cpu = _cpu()
    start = time.perf_counter()
    run(dest)
    took = time.perf_counter() - start
    cpu = _cpu() - cpu
    shutil.rmtree(dest, ignore_errors=True)
    return took, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/dev/shm/pyc-unpack-bench"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tarfile", action="store_true", help="also time tarfile filter='data'")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "unpack.json")
    args = ap.parse_args()
    work: Path = args.work
    subprocess.run(["sh", str(HERE / "unpack-fixture.sh"), str(work)], check=True)
    layout = work / "oci"
    blobs, size, entries = layer_facts(layout)
    out = work / "out"
    out.mkdir(exist_ok=True)

    from pycontainers.distribution.layerstore import LayerStore, resolve_image, unpack_flat
    from pycontainers.distribution.store import ContentStore

    store = ContentStore(layout)
    image = resolve_image(store, "big")

    def sh(cmd: list[str]) -> None:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def gnu_tar(dest: Path) -> None:
        dest.mkdir()
        for b in blobs:
            sh(["tar", "-C", str(dest), "-xzf", str(b)])

    def py_tarfile(dest: Path) -> None:
        dest.mkdir()
        for b in blobs:
            with tarfile.open(b, "r:gz") as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(dest, filter="data")
                else:  # Python < 3.11.4 (Debian 12's 3.11.2): no filters, no safety
                    tar.extractall(dest)

    contenders: dict[str, Callable[[Path], object]] = {
        "ours-layers": lambda d: sh(
            [
                *PYC,
                "--root",
                str(layout),
                "image",
                "unpack",
                "--layers",
                "--layers-dir",
                str(d),
                f"oci:{layout}:big",
            ]
        ),
        "ours-flat": lambda d: sh(
            [*PYC, "--root", str(layout), "image", "unpack", f"oci:{layout}:big", str(d)]
        ),
        "ours-layers (API)": lambda d: LayerStore(d).ensure_image(store, image),
        "ours-flat (API)": lambda d: unpack_flat(store, image, d),
        "umoci": lambda d: sh(["umoci", "unpack", "--image", f"{layout}:big", str(d)]),
        "gnu-tar": gnu_tar,
    }
    if args.tarfile:
        label = "tarfile-data" if hasattr(tarfile, "data_filter") else "tarfile-nofilter"
        contenders[label] = py_tarfile
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            wall, cpu = timed(contenders[name], out / name.replace(" ", "_"))
            times[name].append(wall)
            cpus[name].append(cpu)
        print(
            f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in names),
            file=sys.stderr,
        )

    med = {n: statistics.median(t) for n, t in times.items()}
    cpu = {n: statistics.median(t) for n, t in cpus.items()}
    rows = [
        "| contender | median wall s | vs umoci | vs GNU tar | files/s | MB/s "
        "| median CPU s | CPU vs umoci | CPU vs GNU tar |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in names:
        rows.append(
            f"| {n} | {med[n]:.2f} | {med[n] / med['umoci']:.2f}x | "
            f"{med[n] / med['gnu-tar']:.2f}x | {entries / med[n]:,.0f} | "
            f"{size / med[n] / 1e6:.0f} | {cpu[n]:.2f} | {cpu[n] / cpu['umoci']:.2f}x | "
            f"{cpu[n] / cpu['gnu-tar']:.2f}x |"
        )
    print(
        f"image: 3 layers, {entries} entries, {size / 1e6:.0f} MB uncompressed; "
        f"{args.rounds} rounds; work dir {work} ({os.cpu_count()} CPUs)"
    )
    print("\n".join(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "entries": entries,
                "bytes": size,
                "wall": times,
                "cpu": cpus,
                "median_wall": med,
                "median_cpu": cpu,
                "load_after": os.getloadavg(),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
