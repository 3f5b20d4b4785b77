"""config.json from the image config and the spec: Podman's merging rules, pure.

Podman is not installed here, so the expected values are Podman 4's documented behaviour
(podman-run(1): --entrypoint clears the image CMD; -e overrides the image ENV by name;
--user NAME resolves against the image's /etc/passwd; default capabilities from
containers.conf(5)).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pycontainers.reconciler.apply import RetryBook
from pycontainers.reconciler.bundle import (
    DEFAULT_CAPABILITIES,
    OVERLAY_ANNOTATION,
    BundleError,
    Credentials,
    RootfsPlan,
    default_seccomp,
    render_config,
    resolve_user,
)
from pycontainers.reconciler.layout import EnginePaths
from pycontainers.reconciler.spec import ContainerSpec

IMAGE_CONFIG = {
    "Entrypoint": ["/entry"],
    "Cmd": ["--serve", "8080"],
    "Env": ["PATH=/usr/bin:/bin", "MODE=image", "KEEP=1"],
    "WorkingDir": "/srv",
    "User": "",
}
PATHS = EnginePaths(Path("/var/lib/pycontainers/storage"), Path("/run/pycontainers"))
ROOTFS = RootfsPlan(("/l/bottom", "/l/top"), "/b/upper", "/b/work", "/b/rootfs")


def spec(**fields: Any) -> ContainerSpec:
    return ContainerSpec.model_validate({"image": "example.org/app:1", **fields})


def config(
    container: ContainerSpec, image: dict[str, Any] | None = None, uid: int = 0
) -> dict[str, Any]:
    return render_config(
        name="app",
        spec=container,
        image=IMAGE_CONFIG if image is None else image,
        rootfs=ROOTFS,
        paths=PATHS,
        user=Credentials(uid, uid),
    )


@pytest.mark.parametrize(
    ("fields", "args"),
    [
        ({}, ["/entry", "--serve", "8080"]),
        ({"args": ["--debug"]}, ["/entry", "--debug"]),
        ({"command": ["/bin/sh"]}, ["/bin/sh"]),  # a new entrypoint drops the image CMD
        ({"command": ["/bin/sh"], "args": ["-c", "true"]}, ["/bin/sh", "-c", "true"]),
    ],
)
def test_command_and_args_merge_like_podman(fields: dict[str, Any], args: list[str]) -> None:
    assert config(spec(**fields))["process"]["args"] == args


def test_no_command_anywhere_is_an_error_naming_the_container() -> None:
    with pytest.raises(BundleError, match="container app: no command"):
        config(spec(), image={})


def test_env_overrides_the_image_by_name_and_keeps_the_rest() -> None:
    env = config(spec(env={"MODE": "spec", "NEW": 2}))["process"]["env"]
    assert env[:3] == ["PATH=/usr/bin:/bin", "MODE=spec", "KEEP=1"]
    assert "NEW=2" in env and "HOSTNAME=app" in env


def test_working_dir_user_and_readonly_root() -> None:
    doc = config(spec(workingDir="/data", readOnlyRootFilesystem=True), uid=65534)
    assert doc["process"]["cwd"] == "/data"
    assert doc["process"]["user"] == {"uid": 65534, "gid": 65534}
    assert doc["root"] == {"path": "/b/rootfs", "readonly": True}
    assert config(spec())["process"]["cwd"] == "/srv"


def test_capabilities_default_drop_all_add_and_non_root() -> None:
    caps = config(spec())["process"]["capabilities"]
    assert caps["bounding"] == sorted(DEFAULT_CAPABILITIES) == caps["effective"]
    caps = config(spec(capabilities={"drop": ["ALL"], "add": ["NET_ADMIN"]}))["process"]
    assert caps["capabilities"]["bounding"] == ["CAP_NET_ADMIN"]
    non_root = config(spec(), uid=1000)["process"]["capabilities"]
    assert non_root["bounding"] and not non_root["effective"] and not non_root["permitted"]


def test_network_mounts_and_the_overlay_annotation() -> None:
    doc = config(
        spec(
            network="none",
            mounts=[
                {"type": "volume", "source": "data", "target": "/data", "readOnly": True},
                {"type": "tmpfs", "target": "/run", "size": "1Mi"},
            ],
        )
    )
    assert {"type": "network"} in doc["linux"]["namespaces"]
    by_target = {m["destination"]: m for m in doc["mounts"]}
    assert by_target["/data"]["source"] == "/var/lib/pycontainers/volumes/data/_data"
    assert "ro" in by_target["/data"]["options"]
    assert "size=1048576" in by_target["/run"]["options"]
    assert by_target["/sys"]["type"] == "sysfs"
    # top layer first, as overlayfs wants it
    assert doc["annotations"][OVERLAY_ANNOTATION] == (
        "lowerdir=/l/top:/l/bottom,upperdir=/b/upper,workdir=/b/work"
    )
    host = config(spec())
    assert {"type": "network"} not in host["linux"]["namespaces"]
    assert {m["destination"]: m for m in host["mounts"]}["/sys"]["type"] == "bind"


def test_too_many_layers_for_one_mount_is_an_error() -> None:
    plan = RootfsPlan(tuple(f"/layers/{i:064d}" for i in range(80)), "/u", "/w", "/r")
    with pytest.raises(BundleError, match="too many layers"):
        plan.mount_data()


def test_user_names_resolve_against_the_image_and_whiteouts_hide_files(tmp_path: Path) -> None:
    bottom, top = tmp_path / "bottom", tmp_path / "top"
    (bottom / "etc").mkdir(parents=True)
    (top / "etc").mkdir(parents=True)
    (bottom / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nwww:x:33:34::/:/bin/false\n")
    (bottom / "etc/group").write_text("root:x:0:\nwww:x:34:\nlogs:x:90:www\n")
    assert resolve_user("www", None, [bottom, top], "app") == Credentials(33, 34, (90,))
    assert resolve_user("1000", "logs", [bottom, top], "app") == Credentials(1000, 90)
    assert resolve_user(None, None, [bottom, top], "app") == Credentials(0, 0)
    with pytest.raises(BundleError, match="user 'nobody' is not in the image's /etc/passwd"):
        resolve_user("nobody", None, [bottom, top], "app")
    if os.geteuid() == 0:  # a whiteout (char 0:0) in the top layer deletes /etc/passwd
        os.mknod(top / "etc/passwd", 0o600 | 0o020000, 0)
        with pytest.raises(BundleError):
            resolve_user("www", None, [bottom, top], "app")


def test_retry_backoff_doubles_to_a_cap_and_a_new_spec_retries_at_once() -> None:
    book = RetryBook(base=2, cap=10)
    delays = [book.failed("web", "h1", 100.0, "boom").next_at - 100.0 for _ in range(5)]
    assert delays == [2, 4, 8, 10, 10]
    assert not book.due("web", "h1", 105.0)
    assert book.due("web", "h2", 105.0)
    book.succeeded("web")
    assert book.due("web", "h1", 100.0)


def test_default_seccomp_profile_for_every_container(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Podman, whatever noNewPrivileges says (the runtime loads the filter before it
    drops capabilities when no_new_privs is off); PYCONTAINERS_SECCOMP=0 leaves it out."""
    profile = default_seccomp(sorted(DEFAULT_CAPABILITIES))
    assert profile is not None and profile["defaultAction"] == "SCMP_ACT_ERRNO"
    monkeypatch.setenv("PYCONTAINERS_SECCOMP", "0")
    assert default_seccomp(sorted(DEFAULT_CAPABILITIES)) is None
