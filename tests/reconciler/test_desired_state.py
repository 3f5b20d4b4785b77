"""Snapshot -> DesiredState: hashing, duplicates, dependsOn errors, invalid files held."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from reconciler_testkit import IMAGE, desired_of, document, spec_yaml


def test_spec_hash_ignores_formatting_and_equivalent_spellings() -> None:
    a = desired_of(
        {"a.yaml": spec_yaml(document("web", env={"PORT": 8080}, resources={"memory": "64Mi"}))}
    )
    b = desired_of(
        {
            "other.yaml": (
                "# reformatted, same meaning\n"
                "kind: Container\napiVersion: pycontainers/v1\n"
                "spec:\n  resources: {memory: 67108864}\n  env:\n    PORT: '8080'\n"
                f"  image: {IMAGE}\n  restartPolicy: Always\n"
                "metadata: {name: web, labels: {}}\n"
            ).encode()
        }
    )
    assert a.containers["web"].spec_hash == b.containers["web"].spec_hash


def test_spec_hash_changes_with_meaning() -> None:
    a = desired_of({"a.yaml": spec_yaml(document("web", env={"GREETING": "hello"}))})
    b = desired_of({"a.yaml": spec_yaml(document("web", env={"GREETING": "bye"}))})
    assert a.containers["web"].spec_hash != b.containers["web"].spec_hash


def test_pinned_digest_is_the_desired_image_digest() -> None:
    digest = "sha256:" + "c" * 64
    d = desired_of({"a.yaml": spec_yaml(document("web", image=f"busybox:1@{digest}"))})
    assert d.containers["web"].image_digest == digest
    tag_only = desired_of({"a.yaml": spec_yaml(document("web"))})
    assert tag_only.containers["web"].image_digest is None
    resolved = tag_only.with_resolved_digests({IMAGE: digest})
    assert resolved.containers["web"].image_digest == digest


def test_duplicate_names_across_files_hold_that_name_only() -> None:
    d = desired_of(
        {
            "a.yaml": spec_yaml(document("web"), document("db")),
            "b.yaml": spec_yaml(document("web", env={"X": "1"})),
        }
    )
    assert set(d.containers) == {"db"}
    assert d.held["web"].reason == "name 'web' is defined twice"
    assert [e.format() for e in d.errors] == [
        "a.yaml:4:9: metadata.name: duplicate container name 'web' (defined in a.yaml:4, b.yaml:4)",
        "b.yaml:4:9: metadata.name: duplicate container name 'web' (defined in a.yaml:4, b.yaml:4)",
    ]


def test_unknown_dependency_is_an_error_for_that_container_only() -> None:
    d = desired_of(
        {"a.yaml": spec_yaml(document("api", dependsOn=["cache", "nosuch"]), document("cache"))}
    )
    assert set(d.containers) == {"cache"}
    assert "api" in d.held
    (error,) = d.errors
    assert error.format() == (
        "a.yaml:8:5: spec.dependsOn[1]: api depends on unknown container 'nosuch'"
    )


def test_dependency_cycle_holds_the_cycle_and_spares_the_rest() -> None:
    d = desired_of(
        {
            "a.yaml": spec_yaml(document("a", dependsOn=["b"]), document("b", dependsOn=["c"])),
            "c.yaml": spec_yaml(document("c", dependsOn=["a"])),
            "d.yaml": spec_yaml(document("d", dependsOn=["a"]), document("e")),
        }
    )
    assert set(d.containers) == {"d", "e"}  # d depends on a held container: allowed
    assert set(d.held) == {"a", "b", "c"}
    messages = sorted(e.format() for e in d.errors)
    assert messages == [
        "a.yaml:16:5: spec.dependsOn[0]: dependency cycle: a -> b -> c -> a",
        "a.yaml:7:5: spec.dependsOn[0]: dependency cycle: a -> b -> c -> a",
        "c.yaml:7:5: spec.dependsOn[0]: dependency cycle: a -> b -> c -> a",
    ]


def test_invalid_file_holds_the_names_it_still_shows_and_the_last_good_ones() -> None:
    good = desired_of(
        {"a.yaml": spec_yaml(document("web"), document("api")), "b.yaml": spec_yaml(document("db"))}
    )
    # a.yaml broke so badly that no name can be read from it any more.
    broken = desired_of(
        {"a.yaml": b"apiVersion: [", "b.yaml": spec_yaml(document("db"))}, last_good=good
    )
    assert set(broken.containers) == {"db"}
    assert set(broken.held) == {"api", "web"}
    assert broken.invalid_files == {"a.yaml"}
    # Without the last good state the broken file still counts as invalid (the planner
    # then holds actual containers recorded as coming from it).
    alone = desired_of({"a.yaml": b"apiVersion: [", "b.yaml": spec_yaml(document("db"))})
    assert alone.invalid_files == {"a.yaml"} and not alone.held


def test_unreadable_file_from_the_source_is_an_invalid_file() -> None:
    d = desired_of({}, errors={"big.yaml": "file too large (2000000 bytes, limit 1048576)"})
    assert d.invalid_files == {"big.yaml"}
    assert [e.format() for e in d.errors] == [
        "big.yaml: file too large (2000000 bytes, limit 1048576)"
    ]


@settings(max_examples=60, deadline=None)
@given(
    env=st.dictionaries(st.sampled_from(["A", "B", "PORT"]), st.integers(0, 99), max_size=3),
    memory=st.sampled_from([None, "64Mi", 67108864, "1Gi"]),
    flow=st.booleans(),
    sort_keys=st.booleans(),
    comment=st.booleans(),
)
def test_spec_hash_depends_on_meaning_not_layout(
    env: dict[str, int], memory: object, flow: bool, sort_keys: bool, comment: bool
) -> None:
    spec: dict[str, object] = {"env": env}
    if memory is not None:
        spec["resources"] = {"memory": memory}
    doc = document("web", **spec)
    plain = yaml.safe_dump(doc).encode()
    styled = yaml.safe_dump(doc, default_flow_style=flow, sort_keys=sort_keys, indent=4).encode()
    if comment:
        styled = b"# a comment\n---\n" + styled
    # Numbers written as strings mean the same thing.
    stringly = yaml.safe_dump(
        document("web", **{**spec, "env": {k: str(v) for k, v in env.items()}})
    ).encode()
    hashes = {
        desired_of({name: data}).containers["web"].spec_hash
        for name, data in (("a.yaml", plain), ("b.yml", styled), ("c.yaml", stringly))
    }
    assert len(hashes) == 1
