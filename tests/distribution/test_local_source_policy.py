"""The trust policy also judges local copy sources: ``oci:``, ``dir:`` and the store.

containers/image evaluates policy.json for every source transport: an ``oci:`` layout
is scoped by its directory (and parents), ``dir:`` likewise, the store as
``containers-storage``. A ``reject`` default must refuse them unless a scope of their
transport accepts; refusals name the scope and the reason, as for ``docker://``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.images import FixtureImages
from pycontainers.distribution.store import ContentStore
from pycontainers.reconciler.cli import main

ACCEPT = [{"type": "insecureAcceptAnything"}]


def _policy(path: Path, transports: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"default": [{"type": "reject"}], "transports": transports}))
    return path


def _copy(tmp_path: Path, policy: Path, src: str, dst: str) -> int:
    root = tmp_path / "storage"
    return main(["--root", str(root), "--policy", str(policy), "image", "copy", "-q", src, dst])


def test_reject_default_refuses_an_oci_source_and_writes_nothing(
    images: FixtureImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path / "policy.json", {"docker": {"": ACCEPT}})
    assert _copy(tmp_path, policy, images.ref("busybox"), "r.io/local/refused:1") == 1
    err = capsys.readouterr().err
    assert f"oci:{images.layout}" in err
    assert "rejected by policy" in err and "scope default" in err
    assert "rejects every image" in err
    store = ContentStore(tmp_path / "storage")
    assert not store.exists() or not store.images()
    assert not store.exists() or not any((store.root / "blobs" / "sha256").iterdir())


def test_oci_transport_scope_accepts_by_layout_path(
    images: FixtureImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the whole transport, then only this layout's directory (most specific scope wins)
    whole = _policy(tmp_path / "a.json", {"oci": {"": ACCEPT}})
    assert _copy(tmp_path, whole, images.ref("busybox"), "r.io/local/ok:1") == 0
    by_path = _policy(
        tmp_path / "b.json",
        {"oci": {"": [{"type": "reject"}], str(images.layout.resolve()): ACCEPT}},
    )
    assert _copy(tmp_path, by_path, images.ref("busybox"), f"dir:{tmp_path}/d") == 0
    # a scope for a parent directory covers the layout too; a sibling's does not
    parent = _policy(tmp_path / "c.json", {"oci": {str(images.layout.resolve().parent): ACCEPT}})
    assert _copy(tmp_path, parent, images.ref("busybox"), "r.io/local/ok:2") == 0
    other = _policy(tmp_path / "d.json", {"oci": {str(tmp_path / "elsewhere"): ACCEPT}})
    capsys.readouterr()
    assert _copy(tmp_path, other, images.ref("busybox"), "r.io/local/no:1") == 1
    assert "scope default" in capsys.readouterr().err


def test_dir_source_is_judged_by_its_path_and_signatures(
    images: FixtureImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accept_all = _policy(tmp_path / "all.json", {"oci": {"": ACCEPT}})
    out = tmp_path / "img"
    assert _copy(tmp_path, accept_all, images.ref("busybox"), f"dir:{out}") == 0

    dir_scope = _policy(tmp_path / "dir.json", {"dir": {str(out.resolve()): ACCEPT}})
    assert _copy(tmp_path, dir_scope, f"dir:{out}", "r.io/local/fromdir:1") == 0

    # an unsigned dir: under a sigstoreSigned scope is refused, naming scope and cause
    pub = Path(__file__).parent / "fixtures" / "sigstore-cosign"
    keys = sorted(pub.rglob("*.pub"))
    assert keys, "the cosign vectors ship a public key"
    signed = {"type": "sigstoreSigned", "keyPath": str(keys[0])}
    need_sig = _policy(tmp_path / "sig.json", {"dir": {"": [signed]}})
    capsys.readouterr()
    assert _copy(tmp_path, need_sig, f"dir:{out}", "r.io/local/fromdir:2") == 1
    err = capsys.readouterr().err
    assert 'scope transports.dir[""]' in err
    assert "no signature" in err or "none was found" in err


def test_store_source_is_judged_as_containers_storage(
    images: FixtureImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill = _policy(tmp_path / "fill.json", {"oci": {"": ACCEPT}})
    assert _copy(tmp_path, fill, images.ref("busybox"), "r.io/local/stored:1") == 0
    root = (tmp_path / "storage").resolve()

    capsys.readouterr()
    assert _copy(tmp_path, fill, "r.io/local/stored:1", f"oci:{tmp_path}/out:x") == 1
    assert "containers-storage" in capsys.readouterr().err

    repo_scope = _policy(
        tmp_path / "store.json", {"containers-storage": {f"[{root}]r.io/local": ACCEPT}}
    )
    assert _copy(tmp_path, repo_scope, "r.io/local/stored:1", f"oci:{tmp_path}/out:x") == 0


def test_pull_from_oci_and_dir_checks_the_policy_and_names_like_podman(
    images: FixtureImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ["--root", str(tmp_path / "storage")]
    refuse = _policy(tmp_path / "refuse.json", {"docker": {"": ACCEPT}})
    assert main([*root, "--policy", str(refuse), "image", "pull", images.ref("busybox")]) == 1
    assert "rejected by policy" in capsys.readouterr().err

    accept = _policy(tmp_path / "accept.json", {"oci": {"": ACCEPT}, "dir": {"": ACCEPT}})
    assert main([*root, "--policy", str(accept), "image", "pull", "-q", images.ref("busybox")]) == 0
    out = tmp_path / "img"
    assert _copy(tmp_path, accept, images.ref("busybox"), f"dir:{out}") == 0
    assert main([*root, "--policy", str(accept), "image", "pull", "-q", f"dir:{out}"]) == 0
    names = {i.name for i in ContentStore(tmp_path / "storage").images()}
    assert names == {"localhost/busybox:latest", f"localhost{out}:latest"}


def test_verify_an_oci_layout_names_its_scope(
    images: FixtureImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = str(images.layout.resolve())
    policy = _policy(tmp_path / "p.json", {"oci": {layout: ACCEPT}})
    assert main(["--policy", str(policy), "image", "verify", images.ref("busybox")]) == 0
    assert f'scope: transports.oci["{layout}"]' in capsys.readouterr().out
    refuse = _policy(tmp_path / "r.json", {})
    assert main(["--policy", str(refuse), "image", "verify", images.ref("busybox")]) == 1
    out = capsys.readouterr().out
    assert "rejected" in out and "scope: default" in out
