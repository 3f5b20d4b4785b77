"""DirectorySource on real files: what is read, what is skipped, and races handled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from reconciler_testkit import document, spec_yaml

from pycontainers.reconciler.desired import load_desired
from pycontainers.reconciler.dirsource import DirectorySource, is_spec_name
from pycontainers.reconciler.errors import SourceError


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "is_spec"),
    [
        ("web.yaml", True),
        ("web.yml", True),
        (".web.yaml", False),
        (".web.yaml.swp", False),
        (".#web.yaml", False),
        ("#web.yaml#", False),
        ("web.yaml~", False),
        ("web.yaml.bak", False),
        ("web.yaml.dpkg-old", False),
        ("4913", False),
        ("README.md", False),
    ],
)
def test_spec_file_names(name: str, is_spec: bool) -> None:
    assert is_spec_name(name) is is_spec


def test_reads_specs_recursively_and_skips_hidden_and_editor_files(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", spec_yaml(document("web")))
    write(tmp_path / "team" / "db.yml", spec_yaml(document("db")))
    for junk in (".web.yaml.swp", "web.yaml~", "#web.yaml#", ".git/config.yaml", "notes.txt"):
        write(tmp_path / junk, b"\x00 not yaml")
    snapshot = DirectorySource(tmp_path).read_snapshot()
    assert sorted(snapshot.files) == ["team/db.yml", "web.yaml"]
    assert snapshot.file_errors == {}
    assert set(load_desired(snapshot).containers) == {"web", "db"}


def test_revision_is_a_content_hash(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", spec_yaml(document("web")))
    first = DirectorySource(tmp_path).read_snapshot().revision
    assert DirectorySource(tmp_path).read_snapshot().revision == first
    write(tmp_path / "web.yaml", spec_yaml(document("web", env={"A": "1"})))
    assert DirectorySource(tmp_path).read_snapshot().revision != first


def test_huge_file_is_an_error_for_that_file(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", spec_yaml(document("web")))
    write(tmp_path / "huge.yaml", b"# " + b"x" * 2048)
    snapshot = DirectorySource(tmp_path, max_file_bytes=1024).read_snapshot()
    assert list(snapshot.files) == ["web.yaml"]
    assert snapshot.file_errors == {"huge.yaml": "file too large (2050 bytes, limit 1024)"}


def test_binary_file_is_an_error_for_that_file(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", spec_yaml(document("web")))
    write(tmp_path / "blob.yaml", os.urandom(64) + b"\x00\xff")
    desired = load_desired(DirectorySource(tmp_path).read_snapshot())
    assert set(desired.containers) == {"web"}
    assert desired.invalid_files == {"blob.yaml"}
    assert "binary file" in desired.errors[0].message


def test_symlink_loops_are_reported_not_followed(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", spec_yaml(document("web")))
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "back").symlink_to("..")
    snapshot = DirectorySource(tmp_path).read_snapshot()
    assert list(snapshot.files) == ["web.yaml"]
    assert snapshot.file_errors == {
        "loop.yaml": "symlink loop",
        "sub/back": "directory symlink loop: not followed",
    }


def test_fifo_named_like_a_spec_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    snapshot = DirectorySource(tmp_path).read_snapshot()
    assert snapshot.file_errors == {"pipe.yaml": "not a regular file"}


def test_file_removed_while_being_read_gives_a_consistent_snapshot(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", spec_yaml(document("web")))
    doomed = write(tmp_path / "gone.yaml", spec_yaml(document("gone")))
    calls = []

    def remove_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            doomed.unlink()

    snapshot = DirectorySource(tmp_path, after_listing=remove_once).read_snapshot()
    assert len(calls) == 2  # the first read saw the tree change and was retried
    assert list(snapshot.files) == ["web.yaml"]
    assert snapshot.file_errors == {}


def test_file_rewritten_while_being_read_is_reread(tmp_path: Path) -> None:
    target = write(tmp_path / "web.yaml", spec_yaml(document("web", env={"V": "old"})))
    calls = []

    def rewrite_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            target.write_bytes(spec_yaml(document("web", env={"V": "new-and-longer"})))

    snapshot = DirectorySource(tmp_path, after_listing=rewrite_once).read_snapshot()
    assert b"new-and-longer" in snapshot.files["web.yaml"]


def test_file_that_never_settles_is_held_not_dropped(tmp_path: Path) -> None:
    target = write(tmp_path / "web.yaml", spec_yaml(document("web")))
    counter = iter(range(1000))

    def keep_writing() -> None:
        target.write_bytes(spec_yaml(document("web")) + b"#" * next(counter))

    source = DirectorySource(tmp_path, attempts=3, after_listing=keep_writing)
    snapshot = source.read_snapshot()
    assert snapshot.file_errors == {"web.yaml": "kept changing while being read"}
    assert load_desired(snapshot).invalid_files == {"web.yaml"}


def test_missing_directory_is_a_source_error_not_an_empty_snapshot(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot read spec directory .*/nope: No such file"):
        DirectorySource(tmp_path / "nope").read_snapshot()
