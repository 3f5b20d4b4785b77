"""Every bad input named in the spec issue gives a located error for its file only."""

from __future__ import annotations

import pytest
from reconciler_testkit import document, spec_yaml

from pycontainers.reconciler.loader import load_file


def errors_of(text: str | bytes, file: str = "web.yaml") -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [e.format() for e in load_file(file, data).errors]


HEADER = "apiVersion: pycontainers/v1\nkind: Container\nmetadata:\n  name: web\nspec:\n"


def test_yaml_syntax_error_has_line_and_column() -> None:
    assert errors_of(HEADER + "  image: busybox\n  env: {A: 1\n") == [
        "web.yaml:8:1: yaml syntax error: did not find expected ',' or '}'"
    ]


def test_unknown_api_version() -> None:
    text = "apiVersion: pycontainers/v2\nkind: Container\n"
    assert errors_of(text) == [
        "web.yaml:1:13: apiVersion: unknown apiVersion 'pycontainers/v2' (expected pycontainers/v1)"
    ]


def test_unknown_kind() -> None:
    text = "apiVersion: pycontainers/v1\nkind: Pod\n"
    assert errors_of(text) == ["web.yaml:2:7: kind: unknown kind 'Pod' (expected Container)"]


def test_misspelled_field_suggests_the_nearest_name_at_the_key() -> None:
    text = HEADER + "  image: busybox\n  imagePulPolicy: Always\n"
    assert errors_of(text) == [
        "web.yaml:7:3: spec.imagePulPolicy: unknown field 'imagePulPolicy' "
        "(did you mean 'imagePullPolicy'?)"
    ]


def test_misspelled_required_field_reports_only_the_misspelling() -> None:
    assert errors_of(HEADER + "  imgae: busybox\n") == [
        "web.yaml:6:3: spec.imgae: unknown field 'imgae' (did you mean 'image'?)"
    ]


def test_misspelled_field_inside_a_mount() -> None:
    text = (
        HEADER
        + "  image: busybox\n  mounts:\n    - type: bind\n      sorce: /x\n      target: /y\n"
    )
    assert errors_of(text) == [
        "web.yaml:9:7: spec.mounts[0].sorce: unknown field 'sorce' (did you mean 'source'?)",
    ]


def test_field_at_the_wrong_level_suggests_where_it_belongs() -> None:
    assert errors_of(HEADER + "  image: busybox\n  memory: 64Mi\n") == [
        "web.yaml:7:3: spec.memory: unknown field 'memory' (did you mean 'resources.memory'?)"
    ]


def test_unknown_field_without_a_close_name() -> None:
    assert errors_of(HEADER + "  image: busybox\n  zzzzzz: 1\n") == [
        "web.yaml:7:3: spec.zzzzzz: unknown field 'zzzzzz'"
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "readOnlyRootFilesystem: 'yes'",
            "spec.readOnlyRootFilesystem: input should be a valid boolean, got a string",
        ),
        ("command: /bin/sh", "spec.command: input should be a valid list, got a string"),
        ("env: {DEBUG: no}", 'spec.env.DEBUG: false is a boolean here: quote it ("false")'),
        ("resources: {memory: 512m}", "spec.resources.memory: ambiguous quantity '512m'"),
        ("resources: {pids: 0}", "spec.resources.pids: input should be greater than or equal to 1"),
        (
            "imagePullPolicy: always",
            "'always' is not one of 'IfNotPresent', 'Always' or 'Never' (did you mean 'Always'?)",
        ),
        ("stopSignal: SIGBOGUS", "spec.stopSignal: unknown signal 'SIGBOGUS'"),
        ("capabilities: {add: [NET_BIND_SERVCE]}", "(did you mean CAP_NET_BIND_SERVICE?)"),
        ("workingDir: relative/dir", "spec.workingDir: path 'relative/dir' must be absolute"),
        ("sysctls: {net.ipv4.ip_forward: 1}", "net.* sysctls need network: none"),
        ("sysctls: {vm.swappiness: 1}", "sysctl vm.swappiness is not namespaced"),
        ("network: bridge", "spec.network: 'bridge' is not one of 'host' or 'none'"),
        ("signature: {publicKey: nonsense}", "publicKey is not a PEM public key"),
        (
            "mounts: [{type: nfs, target: /x}]",
            "spec.mounts[0]: input tag 'nfs' found using 'type' does not match",
        ),
    ],
)
def test_wrong_types_and_values(line: str, expected: str) -> None:
    (error,) = errors_of(HEADER + "  image: busybox\n  " + line + "\n")
    assert error.startswith("web.yaml:7:")
    assert expected in error


@pytest.mark.parametrize("name", ["Web", "web_1", "-web", "a" * 64, "web.example"])
def test_invalid_name(name: str) -> None:
    (error,) = errors_of(spec_yaml(document(name)))
    assert f"metadata.name: invalid name {name!r}" in error
    assert error.startswith("web.yaml:4:")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("Busybox:latest", "repository name must be lower case"),
        ("busybox:", "bad tag ''"),
        ("busybox@sha256:abc", "sha256 wants 64 lower-case hex characters"),
        ("busybox@sha256:" + "A" * 64, "sha256 wants 64 lower-case hex characters"),
        ("busybox@md5:" + "a" * 32, "unsupported algorithm 'md5'"),
        ("registry:5000/bad image", "contains white space"),
        ("https://registry/app:1", "a transport prefix is not allowed here"),
        ("", "invalid reference '': empty"),
    ],
)
def test_invalid_image_reference(image: str, expected: str) -> None:
    (error,) = errors_of(spec_yaml(document("web", image=image)))
    assert "spec.image: " in error
    assert expected in error


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "127.0.0.1:5000/busybox:latest",
        "localhost/team/app:1.4",
        "registry.example.com/team/web:1.4",
        "docker.io/library/busybox@sha256:" + "a" * 64,
        "quay.io/x/y:v1@sha256:" + "b" * 64,
        "[::1]:5000/app:1",
    ],
)
def test_valid_image_references(image: str) -> None:
    assert errors_of(spec_yaml(document("web", image=image))) == []


def test_empty_file_is_an_error_not_an_empty_set() -> None:
    assert errors_of(b"") == [
        "web.yaml: empty file: no documents (delete the file to remove containers)"
    ]
    assert errors_of(b"---\n# only a comment\n---\n") == [
        "web.yaml: empty file: no documents (delete the file to remove containers)"
    ]


def test_binary_file() -> None:
    assert errors_of(b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe") == [
        "web.yaml: not utf-8 text (byte 9): is this a binary file?"
    ]
    assert errors_of(b"apiVersion: \x00\x01") == [
        "web.yaml: contains NUL bytes: is this a binary file?"
    ]


def test_document_not_a_mapping() -> None:
    assert errors_of("- just\n- a list\n") == [
        "web.yaml:1:1: a document must be a mapping, not a list"
    ]


def test_duplicate_key_in_yaml() -> None:
    assert errors_of(HEADER + "  image: busybox\n  image: other\n") == [
        "web.yaml:7:3: duplicate key 'image'"
    ]


def test_alias_bomb_is_refused() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefg":
        prev = chr(ord(level) - 1)
        text += f"{level}: &{level} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    (error,) = errors_of(text)
    assert "document too large after alias expansion" in error


def test_python_tags_are_rejected_by_the_safe_loader() -> None:
    (error,) = errors_of(HEADER + "  image: !!python/object:os.system busybox\n")
    assert error.startswith("web.yaml:6:10: yaml syntax error: could not determine a constructor")


def test_self_dependency() -> None:
    (error,) = errors_of(spec_yaml(document("web", dependsOn=["web"])))
    assert "web depends on itself" in error


def test_several_errors_in_one_file_are_all_reported_in_line_order() -> None:
    text = HEADER + "  image: busybox\n  env: {A: true}\n  restartPolicy: sometimes\n"
    errors = errors_of(text)
    assert [e.split(":")[1] for e in errors] == ["7", "8"]


def test_a_multi_document_file_with_one_bad_document_is_invalid_but_names_both() -> None:
    loaded = load_file("stack.yaml", spec_yaml(document("good"), document("bad", imagee="x")))
    assert not loaded.valid
    assert loaded.names == {"good", "bad"}
    assert [e.line for e in loaded.errors] == [13]  # document 2's misspelt key


def test_one_document_file_takes_its_name_from_the_file() -> None:
    text = "apiVersion: pycontainers/v1\nkind: Container\nspec: {image: busybox}\n"
    (doc,) = load_file("conf.d/cache.yaml", text.encode()).documents
    assert doc.document.metadata.name == "cache"
    # Two documents cannot both be named after the file.
    assert load_file("two.yaml", (text + "---\n" + text).encode()).errors[0].field == "metadata"
