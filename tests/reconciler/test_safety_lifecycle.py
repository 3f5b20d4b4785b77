"""The safety rule through real files: a spec file is created, edited, broken (several
ways), repaired and deleted; only the deletion removes its container."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from reconciler_testkit import document, spec_yaml

from pycontainers.reconciler.actual import ActualContainer, ActualState
from pycontainers.reconciler.desired import DesiredState, load_desired
from pycontainers.reconciler.dirsource import DirectorySource
from pycontainers.reconciler.plan import Plan, plan


class Host:
    """A spec directory plus what a perfect apply would leave running."""

    def __init__(self, root: Path) -> None:
        self.source = DirectorySource(root, max_file_bytes=4096)
        self.actual = ActualState()
        self.last_good: DesiredState | None = None

    def reconcile(self) -> Plan:
        desired = load_desired(self.source.read_snapshot(), self.last_good)
        result = plan(desired, self.actual)
        containers = dict(self.actual.containers)
        for action in result.changes:
            if action.container is None:
                del containers[action.name]
            else:
                want = action.container
                containers[action.name] = ActualContainer(
                    want.name,
                    applied_hash=want.spec_hash,
                    source_file=want.source_file,
                    applied_spec=want.normalised,
                )
        self.actual = replace(self.actual, containers=containers)
        self.last_good = desired
        return result

    def summary(self) -> list[str]:
        return [f"{a.kind.value} {a.name}" for a in self.reconcile() if a.kind != "nothing"]


def test_only_a_deleted_file_removes_its_containers(tmp_path: Path) -> None:
    host = Host(tmp_path)
    stack = tmp_path / "stack.yaml"
    (tmp_path / "other.yaml").write_bytes(spec_yaml(document("other")))
    stack.write_bytes(spec_yaml(document("web"), document("api", dependsOn=["web"])))
    assert host.summary() == ["create other", "create web", "create api"]
    stack.write_bytes(
        spec_yaml(document("web", env={"A": "1"}), document("api", dependsOn=["web"]))
    )
    assert host.summary() == ["replace web"]

    breakages: list[bytes | None] = [
        b"",  # truncated by an editor mid-save
        b"apiVersion: pycontainers/v1\nkind: Container\nmetadata: {name: web\n",  # syntax
        spec_yaml(document("web", imagee="x"), document("api")),  # misspelt field
        os.urandom(100) + b"\x00",  # binary
        b"#" * 5000,  # too large for this source
        None,  # a symlink loop in place of the file
    ]
    for broken in breakages:
        stack.unlink()
        if broken is None:
            stack.symlink_to(stack.name)
        else:
            stack.write_bytes(broken)
        assert host.summary() == ["hold api", "hold web"], broken
        assert set(host.actual.containers) == {"web", "api", "other"}

    stack.unlink()
    stack.write_bytes(
        spec_yaml(document("web", env={"A": "1"}), document("api", dependsOn=["web"]))
    )
    assert host.summary() == []  # repaired as it was: nothing restarts

    stack.unlink()
    assert host.summary() == ["remove api", "remove web"]
    assert set(host.actual.containers) == {"other"}


def test_a_daemon_restart_without_last_good_still_holds_by_source_file(tmp_path: Path) -> None:
    host = Host(tmp_path)
    (tmp_path / "web.yaml").write_bytes(spec_yaml(document("web")))
    host.summary()
    host.last_good = None  # the daemon restarted: only the units remember their file
    (tmp_path / "web.yaml").write_bytes(b"kind: [")
    assert host.summary() == ["hold web"]
