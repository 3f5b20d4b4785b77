"""Untrusted text (references, manifests, challenges, auth files) fails only with our errors."""

from __future__ import annotations

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from pycontainers.distribution.auth import parse_challenges
from pycontainers.distribution.errors import DistributionError, ReferenceError
from pycontainers.distribution.manifest import parse_config, parse_manifest
from pycontainers.distribution.reference import ImageRef

REF_ALPHABET = string.ascii_letters + string.digits + "._-/:@[]"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=REF_ALPHABET, max_size=80) | st.text(max_size=40))
def test_reference_parse_is_total_and_normal_forms_are_fixed_points(text: str) -> None:
    try:
        ref = ImageRef.parse(text)
    except ReferenceError as exc:
        assert str(exc).startswith("invalid reference")
        return
    again = ImageRef.parse(str(ref))
    assert str(again) == str(ref)
    assert (again.domain, again.path, again.tag, again.digest) == (
        ref.domain,
        ref.path,
        ref.tag,
        ref.digest,
    )


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {"schemaVersion": st.sampled_from([1, 2, "2"]), "config": json_values},
            optional={"layers": json_values, "manifests": json_values, "mediaType": json_values},
        ).map(lambda v: json.dumps(v).encode()),
    ),
    st.none() | st.sampled_from(["application/json", "application/vnd.oci.image.index.v1+json"]),
)
def test_manifest_parse_fails_only_with_manifest_errors(raw: bytes, declared: str | None) -> None:
    try:
        parse_manifest(raw, declared, what="fuzz")
    except DistributionError as exc:
        assert str(exc).startswith("fuzz")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable, max_size=120))
def test_challenge_parsing_is_total(header: str) -> None:
    for challenge in parse_challenges(header):
        assert challenge.scheme == challenge.scheme.lower()
        assert all(isinstance(v, str) for v in challenge.params.values())


descriptor_like = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": json_values,
        "digest": st.sampled_from(["sha256:" + "a" * 64, "sha256:xyz", ""]) | json_values,
        "size": json_values,
        "urls": json_values,
        "annotations": json_values,
        "platform": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ]
    ),
    descriptor_like,
    st.lists(descriptor_like, max_size=3),
)
def test_manifests_with_odd_descriptors_fail_cleanly(
    media_type: str, config: dict[str, object], entries: list[dict[str, object]]
) -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config,
        "layers": entries,
        "manifests": entries,
    }
    try:
        parse_manifest(json.dumps(doc).encode(), what="fuzz")
    except DistributionError as exc:
        assert str(exc).startswith("fuzz")


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "os": json_values,
            "architecture": json_values,
            "rootfs": st.fixed_dictionaries({}, optional={"diff_ids": json_values}) | json_values,
            "config": json_values,
            "history": json_values,
            "variant": json_values,
        },
    )
)
def test_config_parse_fails_only_with_our_errors(doc: dict[str, object]) -> None:
    try:
        parse_config(json.dumps(doc).encode(), what="fuzz")
    except DistributionError as exc:
        assert str(exc).startswith("fuzz")
