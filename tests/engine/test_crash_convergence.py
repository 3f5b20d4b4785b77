"""kill -9 of the daemon at random points of its applies, then convergence.

Each round changes the desired set (edits, deletions, re-additions) and SIGKILLs the
daemon (and its cgroup) after a random delay, so the kill lands anywhere: in a pull, an
unpack, a bundle write, between stopping an old unit and starting the new one, or in a
first pass after a restart. After the last round the daemon runs undisturbed and must
converge to exactly the desired set: one unit and one runtime container per name, one
bundle per container, no half-written bundles or layer unpacks, no overlay mounts on the
host side of any container.

Scale: the issue asks for 20 containers x 10 kills; that is what runs (seeded, so a
failure can be replayed with the same schedule).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_testkit import RUNTIME, SLEEPER, EngineEnv, guest_mounts, spec_yaml

pytestmark = [pytest.mark.systemd, pytest.mark.root, pytest.mark.registry, pytest.mark.slow]

CONTAINERS = 20
KILLS = 10
SEED = 20261130


def test_kill_9_during_applies_then_converge_to_exactly_the_desired_set(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    rng = random.Random(SEED)
    names = [f"crash-{i:02d}" for i in range(CONTAINERS)]
    version = dict.fromkeys(names, 0)
    present = set(names)

    def write(name: str) -> None:
        extra = f"  env: {{GREETING: v{version[name]}}}\n"
        write_spec(spec_dir / f"{name}.yaml", spec_yaml(name, SLEEPER, extra=extra))

    for name in names:
        write(name)
    engine.install_daemon(str(spec_dir))
    engine.systemd.exec("systemctl", "start", "--no-block", "pycontainers.service")

    for _round in range(KILLS):
        time.sleep(rng.uniform(0.3, 2.5))
        engine.systemd.exec(
            "systemctl", "kill", "--signal=SIGKILL", "pycontainers.service", check=False
        )
        for name in rng.sample(names, k=CONTAINERS // 3):  # edits and re-additions
            version[name] += 1
            present.add(name)
            write(name)
        for name in rng.sample(sorted(present), k=2):  # deletions
            present.discard(name)
            (spec_dir / f"{name}.yaml").unlink()
        time.sleep(0.2)
        engine.systemd.exec("systemctl", "reset-failed", "pycontainers.service", check=False)
        engine.systemd.exec("systemctl", "start", "--no-block", "pycontainers.service")

    status = engine.wait_converged(present, timeout=120)
    by_name = {c["name"]: c for c in status["containers"]}
    for name in present:
        assert f"started v{version[name]}" in engine.journal(name).splitlines()[-1] or any(
            line == f"started v{version[name]}" for line in engine.journal(name).splitlines()
        )
        assert by_name[name]["action"] == "nothing"
    assert engine.units() == sorted(present)

    # one runtime container per unit: no duplicate or stray container state
    listed = json.loads(engine.systemd.exec(RUNTIME, "list", "--format", "json").stdout or "[]")
    running = sorted(c["id"] for c in listed or [] if c["id"].startswith("crash-"))
    assert running == sorted(present)

    # one bundle per container, nothing half-written, nothing for removed containers
    assert sorted(p.name for p in engine.containers.iterdir()) == sorted(present)
    for name in present:
        entries = [p.name for p in (engine.containers / name).iterdir()]
        assert len(entries) == 1, (name, entries)
    layers = engine.work / "lib" / "layers"
    assert not [p for p in layers.iterdir() if p.name.startswith(".tmp-")]
    # the overlays live and die in the containers' own mount namespaces
    assert not guest_mounts(engine.systemd, str(engine.containers))
    with open("/proc/self/mountinfo") as mountinfo:
        assert str(engine.containers) not in mountinfo.read()
