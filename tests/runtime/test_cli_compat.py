"""runc's command line and documents: state shape, spec, features, errors, --log-format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .conftest import BundleFactory, Runtime

pytestmark = pytest.mark.root


def _shape(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _shape(v) for k, v in doc.items()}
    return type(doc).__name__


def test_state_json_has_runc_shape(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory
) -> None:
    bundle = make_bundle(["true"], lambda c: c.update(annotations={"org.example/a": "b"}))
    mine_id, _ = ours.create(bundle)
    theirs_id, _ = runc.create(bundle)
    mine, theirs = ours.state(mine_id), runc.state(theirs_id)
    assert _shape(mine) == _shape(theirs)
    for key in ("status", "bundle", "rootfs", "annotations"):
        assert mine[key] == theirs[key]
    assert mine["status"] == "created"


def test_list_json_has_runc_keys(ours: Runtime, runc: Runtime, make_bundle: BundleFactory) -> None:
    bundle = make_bundle(["true"])
    ours.create(bundle)
    runc.create(bundle)
    mine = json.loads(ours("list", "--format", "json", check=True).stdout)
    theirs = json.loads(runc("list", "--format", "json", check=True).stdout)
    assert set(mine[0]) <= set(theirs[0])
    assert {"id", "pid", "status", "bundle", "rootfs", "created", "owner"} <= set(mine[0])


def test_spec_writes_runc_default_config(ours: Runtime, runc: Runtime, tmp_path: Path) -> None:
    for name, rt in (("ours", ours), ("runc", runc)):
        (tmp_path / name).mkdir()
        rt("spec", "--bundle", str(tmp_path / name), check=True)
    mine = json.loads((tmp_path / "ours" / "config.json").read_text())
    theirs = json.loads((tmp_path / "runc" / "config.json").read_text())
    # beyond runc: the containers-common default seccomp profile (as podman's configs)
    profile = mine["linux"].pop("seccomp")
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert any("read" in rule["names"] for rule in profile["syscalls"])
    assert mine == theirs
    again = ours("spec", "--bundle", str(tmp_path / "ours"))
    assert again.returncode == 1 and "file exists" in again.stderr


def test_rootless_spec_has_a_user_namespace_mapping(ours: Runtime, tmp_path: Path) -> None:
    ours("spec", "--rootless", "--bundle", str(tmp_path), check=True)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert {"type": "user"} in cfg["linux"]["namespaces"]
    assert {"type": "network"} not in cfg["linux"]["namespaces"]
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 0, "size": 1}]


def test_features_lists_what_the_runtime_supports(ours: Runtime) -> None:
    doc = json.loads(ours("features", check=True).stdout)
    assert doc["ociVersionMax"] == "1.1.0"
    assert set(doc["linux"]["namespaces"]) >= {"pid", "network", "mount", "user", "cgroup"}
    assert "CAP_SYS_ADMIN" in doc["linux"]["capabilities"]
    assert "rbind" in doc["mountOptions"] and "rslave" in doc["mountOptions"]
    assert "createContainer" in doc["hooks"]


def test_errors_go_to_the_log_as_runc_json(ours: Runtime, tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    done = ours("--log", str(log), "--log-format", "json", "state", "missing")
    assert done.returncode == 1
    entry = json.loads(log.read_text())
    assert entry["level"] == "error"
    assert entry["msg"] == "container 'missing' does not exist"
    assert set(entry) == {"level", "msg", "time"}
    assert json.loads(done.stderr)["msg"] == entry["msg"]


def test_usage_errors_exit_2(ours: Runtime) -> None:
    assert ours("frobnicate").returncode == 2
    assert ours("create").returncode == 2
    assert ours("--help").returncode == 0
    assert "run --detach" in ours("--help").stdout


def test_exec_with_a_process_file(
    ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    cid, _ = ours.create(make_bundle(["sleep", "60"]))
    ours("start", cid, check=True)
    process = {"args": ["sh", "-c", "id -u; echo $Z"], "env": ["Z=zz"], "cwd": "/",
               "user": {"uid": 7, "gid": 7}}  # fmt: skip
    (tmp_path / "process.json").write_text(json.dumps(process))
    done = ours("exec", "--process", str(tmp_path / "process.json"), cid)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "7\nzz\n"
