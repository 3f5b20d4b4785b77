"""The daemon as ``packaging/pycontainers.service`` in the sandbox, following its sources.

Directory: a dropped file runs, an edit replaces, a delete removes; an invalid file holds
its container while the valid ones run; a container stopped by hand comes back; a daemon
restart adopts running containers (restarts none); SIGTERM leaves them running. Git: a
commit pushed to the deploy repository does the same. Everything real (registry, pull,
runtime, systemd 252). Auto-update: a tag that moves in the registry replaces the container.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_testkit import PYC, REPO, SLEEPER, EngineEnv, nspid, spec_yaml, wait

pytestmark = [pytest.mark.systemd, pytest.mark.root, pytest.mark.registry, pytest.mark.slow]


def test_directory_drop_edit_break_repair_restart_delete(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    engine.install_daemon(str(spec_dir))
    engine.start_daemon()

    # drop a file: the container runs, its init is the unit's main process, output in journal
    write_spec(
        spec_dir / "dwell.yaml", spec_yaml("dwell", SLEEPER, extra="  env: {GREETING: one}\n")
    )
    wait(lambda: engine.active("dwell"), "dwell to run")
    first = engine.main_pid("dwell")
    assert nspid(engine.systemd, first)[-1] == "1"
    wait(lambda: "started one" in engine.journal("dwell"), "dwell's output in the journal")
    # the daemon's own systemctl status line summarises
    wait(
        lambda: (
            "1 containers, 1 running, rev "
            in engine.systemd.systemctl("show", "-p", "StatusText", "pycontainers.service").stdout
        ),
        "the daemon's STATUS= line",
    )

    # edit: the container is replaced (a new init, the new environment, one bundle left)
    write_spec(
        spec_dir / "dwell.yaml", spec_yaml("dwell", SLEEPER, extra="  env: {GREETING: two}\n")
    )
    wait(lambda: "started two" in engine.journal("dwell"), "the replaced dwell")
    wait(lambda: engine.container_status("dwell")["action"] == "nothing", "a quiet pass")
    second = engine.main_pid("dwell")
    assert second != first
    events = [e["message"] for e in engine.container_status("dwell")["events"]]
    assert any(e.startswith("replace: env changed: GREETING") for e in events), events
    wait(lambda: len(list((engine.containers / "dwell").iterdir())) == 1, "the old bundle gone")

    # stopped by hand: the daemon brings it back and says so
    engine.systemd.exec("systemctl", "stop", "pycontainers-dwell.service")
    wait(lambda: engine.active("dwell") and engine.main_pid("dwell") != second, "the repair")
    repaired = wait(
        lambda: (s := engine.container_status("dwell"))["repairs"] >= 1 and s,
        "status to record the repair",
    )
    assert any("repaired" in e["message"] for e in repaired["events"])
    third = engine.main_pid("dwell")

    # an invalid file next to valid ones: the valid ones run, the invalid one's container
    # is kept, and status names file:line
    (spec_dir / "dwell.yaml").write_text(
        spec_yaml("dwell", SLEEPER).replace("kind: Container", "kind: Container\nspec: [oops")
    )
    write_spec(spec_dir / "other.yaml", spec_yaml("other", SLEEPER))
    wait(lambda: engine.active("other"), "other to run")
    status = wait(lambda: (s := engine.status())["errors"] and s, "the spec error in status")
    texts = [e["text"] for e in status["errors"]]
    assert any(t.startswith("dwell.yaml:") and t.split(":")[1].isdigit() for t in texts), texts
    assert engine.container_status("dwell")["desired"] == "held"
    assert engine.main_pid("dwell") == third

    # a daemon restart adopts what runs: no container restarts (the file is still broken)
    other = engine.main_pid("other")
    engine.systemd.exec("systemctl", "restart", "pycontainers.service", timeout=120)
    wait(lambda: engine.status()["updatedAt"] and "ready" in engine.daemon_log(), "the new daemon")
    assert engine.main_pid("dwell") == third
    assert engine.main_pid("other") == other

    # delete: removed (only the deleted one)
    (spec_dir / "other.yaml").unlink()
    wait(lambda: "other" not in engine.units(), "other to be removed")
    assert engine.main_pid("dwell") == third

    # the watchdog (4 s in the tests) never fired during all this
    assert "Watchdog timeout" not in engine.daemon_log()

    # SIGTERM ends the daemon, never its containers
    engine.stop_daemon()
    assert (
        engine.systemd.systemctl("is-active", "pycontainers.service").stdout.strip() == "inactive"
    )
    assert engine.main_pid("dwell") == third


def test_suspend_keeps_a_container_stopped_until_resumed(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    write_spec(spec_dir / "pausable.yaml", spec_yaml("pausable", SLEEPER))
    engine.install_daemon(str(spec_dir))
    engine.start_daemon()
    wait(lambda: engine.active("pausable"), "pausable to run")
    engine.pyc("suspend", "pausable")
    wait(lambda: engine.container_status("pausable")["suspended"], "status to show the suspension")
    engine.systemd.exec("systemctl", "stop", "pycontainers-pausable.service")
    engine.systemd.exec("systemctl", "reload", "pycontainers.service")  # a pass happens ...
    wait(lambda: engine.container_status("pausable")["action"] == "hold", "a pass that holds it")
    assert "pausable" not in engine.units()  # ... and leaves it stopped
    engine.pyc("resume", "pausable")
    wait(lambda: engine.active("pausable"), "pausable back after resume")
    assert not engine.container_status("pausable")["suspended"]


def test_a_commit_pushed_to_the_deploy_repository_runs_replaces_and_removes(
    engine: EngineEnv, write_spec: Callable[[Path, str], Path]
) -> None:
    repo = engine.work / "deploy.git"
    engine.pyc("deploy-repo", "init", str(repo))
    clone = engine.work / "clone"
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    engine.systemd.exec("rm", "-rf", str(clone))
    engine.systemd.exec("git", "init", "-q", "-b", "main", str(clone))

    def push(message: str) -> None:
        engine.systemd.exec(*git, "add", "-A")
        engine.systemd.exec(*git, "commit", "-q", "--allow-empty", "-m", message)
        engine.systemd.exec(*git, "push", "-q", str(repo), "HEAD:main", timeout=120)

    write_spec(clone / "pushed.yaml", spec_yaml("pushed", SLEEPER, extra="  env: {GREETING: v1}\n"))
    push("v1")
    engine.install_daemon("--git", str(repo), "--ref", "main", "--fetch-interval", "3600")
    engine.start_daemon()
    wait(lambda: engine.active("pushed"), "the pushed container")
    assert engine.status()["revision"].startswith("git:")

    write_spec(clone / "pushed.yaml", spec_yaml("pushed", SLEEPER, extra="  env: {GREETING: v2}\n"))
    push("v2")  # post-receive writes a sync request; the daemon fetches at once
    wait(lambda: "started v2" in engine.journal("pushed"), "the pushed change")

    (clone / "pushed.yaml").unlink()
    push("remove")
    wait(lambda: "pushed" not in engine.units(), "the pushed removal")


def test_auto_update_replaces_a_container_when_its_tag_moves(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    tag = engine.image.replace("busybox:latest", "moving:latest")
    engine.systemd.exec(
        PYC, "image", "copy", "-q", f"oci:{engine.work / 'oci'}:busybox", f"docker://{tag}"
    )
    extra = "  imagePullPolicy: Always\n"
    write_spec(spec_dir / "follower.yaml", spec_yaml("follower", SLEEPER, image=tag, extra=extra))
    engine.install_daemon(str(spec_dir), "--auto-update-interval", "1")
    engine.start_daemon()
    wait(lambda: engine.active("follower"), "follower to run")
    before = engine.container_status("follower")["digest"]
    first = engine.main_pid("follower")

    variant = engine.work / "oci-variant"
    subprocess.run(
        ["bash", str(REPO / "packaging/demo/build-busybox.sh"), str(variant)],
        env={**os.environ, "BUSYBOX_VARIANT": "2"},
        check=True,
        capture_output=True,
    )
    engine.systemd.exec(PYC, "image", "copy", "-q", f"oci:{variant}:busybox", f"docker://{tag}")
    after = wait(
        lambda: (d := engine.container_status("follower")["digest"]) != before and d,
        "the container on the new digest",
    )
    assert engine.main_pid("follower") != first
    assert engine.active("follower")
    events = [e["message"] for e in engine.container_status("follower")["events"]]
    assert any("image digest changed" in e for e in events), (events, after)


def test_a_container_failed_past_its_restart_policy_is_started_again(
    engine: EngineEnv, spec_dir: Path, write_spec: Callable[[Path, str], Path]
) -> None:
    # fails its first 6 starts: systemd's own restarts give up (start-limit-hit after 5),
    # then the daemon starts it again, with backoff, until it runs
    script = (
        "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /data/n; "
        'echo "attempt $n"; [ "$n" -gt 6 ] || exit 1; ' + SLEEPER
    )
    extra = "  mounts: [{type: volume, source: flaky-data, target: /data}]\n"
    write_spec(spec_dir / "flaky.yaml", spec_yaml("flaky", script, extra=extra))
    engine.install_daemon(str(spec_dir))
    engine.start_daemon()
    wait(lambda: "attempt 7" in engine.journal("flaky"), "flaky to get through", timeout=60)
    wait(lambda: engine.active("flaky"), "flaky to run")
    status = wait(
        lambda: (s := engine.container_status("flaky"))["action"] == "nothing" and s,
        "a quiet pass",
    )
    messages = [e["message"] for e in status["events"]]
    assert any("failed" in m for m in messages), messages  # the failures were recorded
    assert any(m.startswith("repaired (unit failed") for m in messages), messages
    assert status["lastError"] is None
