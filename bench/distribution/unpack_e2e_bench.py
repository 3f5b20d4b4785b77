"""End to end: pull + unpack with pycontainers vs ``skopeo copy`` + ``umoci unpack``.

Usage (as root, from the repository): ``.venv/bin/python
bench/distribution/unpack_e2e_bench.py [--work /dev/shm/pyc-e2e-bench] [--rounds 5]``

Same image and registry set-up as ``pull_bench.py`` (whose helpers it reuses). Per round,
alternating which goes first, into fresh directories on one file system:

* ``pyc-flat``    ``image pull -q REF`` then ``image unpack REF DIR`` (two processes)
* ``pyc-layers``  ``image pull -q REF`` then ``image unpack --layers REF``: the layer
  dirs the engine uses, unpacked after the download (the engine's path before streaming)
* ``pyc-stream``  ``image pull --layers -q REF``: each layer unpacked into its dir while
  its blob downloads (one process, one streaming pass)
* ``peers``       ``skopeo copy docker://REF oci:D:big`` then ``umoci unpack``

Each side is timed as a whole (both processes, start-up included; wall and CPU time of
the child processes); cleanup is not timed.

``--rate MB/S`` puts a throttling TCP proxy (one shared token bucket, like one network
link) between the clients and the registry, to see the sides when the download, not the
CPU, is the bottleneck: that is where unpacking during the download can pay off.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pull_bench import PYCONTAINERS, start_registry  # noqa: E402


def run_all(cmds: list[list[str]]) -> tuple[float, float]:
    """Wall time and CPU time (user + system of the child processes) of ``cmds`` in turn."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


class Throttle:
    """A TCP proxy to ``target`` whose server-to-client bytes share one token bucket."""

    def __init__(self, target: str, rate: float) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.rate = rate
        self.lock = threading.Lock()
        self.next_free = time.monotonic()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, throttled: bool) -> None:
        try:
            while data := src.recv(256 * 1024):
                if throttled:
                    with self.lock:
                        now = time.monotonic()
                        self.next_free = max(self.next_free, now) + len(data) / self.rate
                        wait = self.next_free - now
                    if wait > 0:
                        time.sleep(wait)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/dev/shm/pyc-e2e-bench"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0, help="throttle downloads to MB/s")
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    fixture = work / "fixture"
    subprocess.run(["sh", str(HERE / "unpack-fixture.sh"), str(fixture)], check=True)
    registry, host = start_registry(work)
    cpu: dict[str, list[float]] = {n: [] for n in ("pyc-flat", "pyc-layers", "pyc-stream", "peers")}
    times: dict[str, list[float]] = {
        n: [] for n in ("pyc-flat", "pyc-layers", "pyc-stream", "peers")
    }
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
        if args.rate:
            ref = f"{Throttle(host, args.rate * 1e6).host}/bench/big:latest"

        def flat(d: Path) -> list[list[str]]:
            pyc = [str(PYCONTAINERS), "--root", str(d / "store")]
            return [
                [*pyc, "image", "pull", "-q", ref],
                [*pyc, "image", "unpack", ref, str(d / "rootfs")],
            ]

        def layers(d: Path) -> list[list[str]]:
            pyc = [str(PYCONTAINERS), "--root", str(d / "store")]
            return [
                [*pyc, "image", "pull", "-q", ref],
                [*pyc, "image", "unpack", "--layers", ref],
            ]

        def stream(d: Path) -> list[list[str]]:
            pyc = [str(PYCONTAINERS), "--root", str(d / "store")]
            return [[*pyc, "image", "pull", "--layers", "-q", ref]]

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

        sides = {"pyc-flat": flat, "pyc-layers": layers, "pyc-stream": stream, "peers": peers}
        for rnd in range(args.rounds):
            names = list(sides)
            order = names[rnd % len(names) :] + names[: rnd % len(names)]  # rotate
            for name in order:
                dest = work / f"out-{name}"
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir()
                wall, used = run_all(sides[name](dest))
                times[name].append(wall)
                cpu[name].append(used)
                shutil.rmtree(dest, ignore_errors=True)
            print(f"round {rnd + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in order))
    finally:
        registry.send_signal(signal.SIGTERM)
        registry.wait(10)
    med = {n: statistics.median(t) for n, t in times.items()}
    med_cpu = {n: statistics.median(t) for n, t in cpu.items()}
    rate = f", downloads throttled to {args.rate:g} MB/s" if args.rate else ""
    print(f"\n{args.rounds} rounds{rate}, medians:\n")
    print("| side | wall s | vs peers | CPU s | CPU vs peers |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for n, m in med.items():
        c = med_cpu[n]
        print(
            f"| {n} | {m:.2f} | {m / med['peers']:.2f}x | {c:.2f} | {c / med_cpu['peers']:.2f}x |"
        )
    suffix = f"-rate{args.rate:g}" if args.rate else ""
    out = HERE.parent / "results" / f"unpack_e2e{suffix}.json"
    doc = {"times": times, "cpu": cpu, "median": med, "median_cpu": med_cpu, "rate": args.rate}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
