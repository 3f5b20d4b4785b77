"""Unpacked layers go when nothing uses them: ``image prune``, ``image rm``, and the lock.

A layer directory stays while a stored image names it, an engine bundle lists it in its
rootfs overlay annotation, or an overlay in any mount namespace has it as a lowerdir
(containers mount their rootfs inside their own namespace). ``ensure`` shares the layer
store's lock with ``prune``, so it never hands out a directory being removed.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.images import FixtureImages
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.layerstore import (
    OVERLAY_ANNOTATION,
    LayerStore,
    lowerdir_option,
    resolve_image,
)
from pycontainers.distribution.store import ContentStore, FileLock
from pycontainers.reconciler.cli import main

ACCEPT = {"default": [{"type": "insecureAcceptAnything"}]}


@pytest.fixture
def filled(images: FixtureImages, tmp_path: Path) -> tuple[Path, dict[str, list[Path]]]:
    """A store with ``busybox`` and ``layered`` copied in and unpacked into layer dirs."""
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(ACCEPT))
    root = tmp_path / "storage"
    out: dict[str, list[Path]] = {}
    for tag in ("busybox", "layered"):
        name = f"r.io/prune/{tag}:1"
        args = ["--root", str(root), "--policy", str(policy), "image", "copy", "-q"]
        assert main([*args, images.ref(tag), name]) == 0
        store = ContentStore(root)
        out[tag] = LayerStore(tmp_path / "layers").ensure_image(store, resolve_image(store, name))
    return root, out


def _dirs(layers: Path) -> set[str]:
    return {p.name for p in layers.iterdir() if not p.name.startswith(".")}


def test_rm_of_the_last_image_using_a_layer_removes_it(
    filled: tuple[Path, dict[str, list[Path]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, layers = filled
    before = _dirs(tmp_path / "layers")
    assert before == {p.name for ps in layers.values() for p in ps}
    assert main(["--root", str(root), "image", "prune", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["removedLayers"] == []  # all in use

    assert main(["--root", str(root), "image", "rm", "r.io/prune/layered:1"]) == 0
    assert _dirs(tmp_path / "layers") == {p.name for p in layers["busybox"]}

    # a stray layer no image names goes with ``image prune``
    stray = tmp_path / "layers" / ("ab" * 32)
    stray.mkdir()
    capsys.readouterr()
    assert main(["--root", str(root), "image", "prune"]) == 0
    assert "removed 1 unpacked layers" in capsys.readouterr().out
    assert not stray.exists()
    assert _dirs(tmp_path / "layers") == {p.name for p in layers["busybox"]}


def test_a_bundle_keeps_its_layers(
    filled: tuple[Path, dict[str, list[Path]]],
    tmp_path: Path,
) -> None:
    root, layers = filled
    bundle = tmp_path / "containers" / "web" / "b1"
    bundle.mkdir(parents=True)
    data = f"lowerdir={lowerdir_option(layers['layered'])},upperdir=/u,workdir=/w"
    (bundle / "config.json").write_text(json.dumps({"annotations": {OVERLAY_ANNOTATION: data}}))

    assert main(["--root", str(root), "image", "rm", "r.io/prune/layered:1"]) == 0
    kept = {p.name for p in layers["busybox"] + layers["layered"]}
    assert _dirs(tmp_path / "layers") == kept

    (bundle / "config.json").unlink()
    assert main(["--root", str(root), "image", "prune", "-q"]) == 0
    assert _dirs(tmp_path / "layers") == {p.name for p in layers["busybox"]}


@pytest.mark.root
def test_a_mount_in_another_namespace_keeps_its_layers(
    filled: tuple[Path, dict[str, list[Path]]],
    tmp_path: Path,
) -> None:
    root, layers = filled
    for d in ("merged", "upper", "work"):
        (tmp_path / d).mkdir()
    opts = (
        f"lowerdir={lowerdir_option(layers['layered'])},"
        f"upperdir={tmp_path}/upper,workdir={tmp_path}/work"
    )
    script = f"mount -t overlay overlay -o {opts} {tmp_path}/merged && echo ready && exec sleep 60"
    # The mount lives only in the child's private mount namespace, as a container's does.
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        host = Path("/proc/self/mountinfo").read_text()
        assert str(layers["layered"][0]) not in host  # invisible from our namespace
        assert main(["--root", str(root), "image", "rm", "r.io/prune/layered:1"]) == 0
        kept = {p.name for p in layers["busybox"] + layers["layered"]}
        assert _dirs(tmp_path / "layers") == kept
    finally:
        proc.kill()
        proc.wait()
    assert main(["--root", str(root), "image", "prune", "-q"]) == 0
    assert _dirs(tmp_path / "layers") == {p.name for p in layers["busybox"]}


def test_ensure_waits_for_a_prune_in_progress(images: FixtureImages, tmp_path: Path) -> None:
    store = ContentStore(images.layout)
    image = resolve_image(store, "busybox")
    layers = LayerStore(tmp_path / "layers")
    (path,) = layers.ensure_image(store, image)
    desc, diff_id = image.manifest.layers[0], image.config.diff_ids[0]

    # Play prune: hold the exclusive lock and rename the layer away half-way.
    lock = FileLock(tmp_path / "layers" / ".lock")
    lock.acquire()
    got: list[Path] = []

    def ensure() -> None:
        with store.open_blob(desc.digest) as blob:
            got.append(layers.ensure(blob, desc.media_type, diff_id))

    worker = threading.Thread(target=ensure)
    worker.start()
    try:
        path.rename(tmp_path / "layers" / ".tmp-del-x")
        time.sleep(0.2)  # a lock-free fast path would have returned the doomed path by now
        assert got == [] and worker.is_alive()
    finally:
        lock.release()
        worker.join(timeout=30)
    # ensure saw the layer gone and unpacked it again: what it hands out is complete
    assert got == [path]
    assert (path / "bin" / "busybox").exists() or any(path.iterdir())
    assert layers.layers() == [Digest.parse(f"sha256:{path.name}")]
