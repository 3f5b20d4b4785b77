"""``pycontainers apply PATH`` inside the systemd sandbox: one pass, no daemon, real parts.

Real registry (in the guest), real pull and layer unpack, real runtime, real systemd.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from engine_testkit import SLEEPER, EngineEnv, guest_mounts, nspid, spec_yaml

pytestmark = [pytest.mark.systemd, pytest.mark.root, pytest.mark.registry, pytest.mark.slow]


def test_apply_runs_a_container_whose_main_pid_is_its_init(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    write_spec(
        spec_dir / "hello.yaml",
        spec_yaml(
            "hello",
            SLEEPER,
            extra="  env: {GREETING: from-apply}\n"
            "  mounts: [{type: volume, source: hello-data, target: /data}]\n",
        ),
    )
    out = engine.pyc("apply", str(spec_dir))
    assert "create hello: new container" in out.stdout, out.stdout + out.stderr[-2000:]

    assert engine.active("hello")
    pid = engine.main_pid("hello")
    # the unit's main process is the container's init: PID 1 of its own PID namespace
    assert nspid(engine.systemd, pid)[-1] == "1"
    assert engine.systemd.exec("cat", f"/proc/{pid}/comm").stdout.strip() == "sh"
    assert "started from-apply" in engine.journal("hello")
    assert "started from-apply" in engine.pyc("logs", "hello").stdout
    text = engine.pyc("status").stdout
    assert "summary: 1 containers, 1 running" in text
    status = engine.container_status("hello")
    assert status["activeState"] == "active"
    assert status["digest"].startswith("sha256:")
    assert status["sourceFile"] == "hello.yaml"
    # the rootfs overlay exists only in the container's mount namespace
    assert not guest_mounts(engine.systemd, str(engine.containers))
    bundles = list((engine.containers / "hello").iterdir())
    assert len(bundles) == 1 and (bundles[0] / "config.json").is_file()

    # a second pass changes nothing and restarts nothing
    again = engine.pyc("apply", str(spec_dir))
    assert "nothing to do" in again.stdout
    assert engine.main_pid("hello") == pid

    # an empty directory removes the container, its unit and bundle; the volume stays
    (spec_dir / "hello.yaml").unlink()
    gone = engine.pyc("apply", str(spec_dir))
    assert "remove hello: spec removed" in gone.stdout
    assert "hello" not in engine.units()
    assert not (engine.containers / "hello").exists()
    assert (engine.volumes / "hello-data" / "_data").is_dir()


def test_a_bad_image_fails_alone_and_is_reported(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    missing = engine.image.replace("busybox:latest", "no-such-image:1")
    write_spec(spec_dir / "good.yaml", spec_yaml("good", SLEEPER))
    write_spec(spec_dir / "bad.yaml", spec_yaml("bad", SLEEPER, image=missing))
    out = engine.pyc("apply", str(spec_dir), check=False)
    assert out.returncode == 1
    assert "create good: new container" in out.stdout
    assert engine.active("good")
    assert "bad" not in engine.units()
    bad = engine.container_status("bad")
    assert bad["desired"] == "present" and bad["activeState"] == "gone"
    assert "no-such-image" in bad["lastError"] and bad["retryAt"]


def test_apply_of_one_file_never_prunes_the_others(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    write_spec(spec_dir / "a.yaml", spec_yaml("keep-a", SLEEPER))
    engine.pyc("apply", str(spec_dir))
    single = write_spec(engine.work / "single.yaml", spec_yaml("single-b", SLEEPER))
    engine.pyc("apply", str(single))
    assert {"keep-a", "single-b"} <= set(engine.units())


def test_foreign_units_are_never_touched_even_150_of_them(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    # units under our name pattern that pycontainers did not start (no metadata): apply
    # with an empty-but-one directory must neither prune them nor choke on reading them
    # (150 units read at once once overran the D-Bus connection)
    engine.systemd.exec(
        "sh", "-c",
        "for i in $(seq 150); do systemd-run --quiet --unit=pycontainers-foreign-$i "
        "--property=CollectMode=inactive-or-failed sleep 600 || exit 1; done",
        timeout=120,
    )  # fmt: skip
    try:
        write_spec(spec_dir / "ours.yaml", spec_yaml("ours", SLEEPER))
        out = engine.pyc("apply", str(spec_dir))
        assert "create ours: new container" in out.stdout
        assert "foreign" not in out.stdout
        units = engine.units()
        assert "ours" in units
        assert len([u for u in units if u.startswith("foreign-")]) == 150
        assert [c["name"] for c in engine.status()["containers"]] == ["ours"]
    finally:
        engine.systemd.exec(
            "sh", "-c", "systemctl stop 'pycontainers-foreign-*.service'", check=False
        )


def test_suspend_everything_holds_every_change_until_resumed(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    assert engine.pyc("suspend").stdout.strip() == "suspended everything"
    write_spec(spec_dir / "later.yaml", spec_yaml("later", SLEEPER))
    out = engine.pyc("apply", str(spec_dir))
    assert "later" not in engine.units()
    assert "reconciliation is suspended" in out.stdout or "held" in out.stdout
    status = engine.status()
    assert status["suspendedAll"] and engine.container_status("later")["suspended"]
    engine.pyc("resume")
    engine.pyc("apply", str(spec_dir))
    assert engine.active("later")
