"""Whatever bytes a file holds, loading it gives documents or located errors, never an
exception (non-negotiable 2: bad input gets a clear error)."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from reconciler_testkit import document

from pycontainers.reconciler.loader import load_file

VALID = yaml.safe_dump(document("web", env={"A": "1"}, dependsOn=["db"])).encode()


def check(data: bytes) -> None:
    loaded = load_file("fuzz.yaml", data)
    assert loaded.valid == (not loaded.errors)
    for error in loaded.errors:
        text = error.format()
        assert text.startswith("fuzz.yaml")
        assert error.message and error.message[0] == error.message[0].lower()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    check(data)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=":-[]{}&*!|>'\"#%@`,? \n\tabc01", max_size=200))
def test_yaml_punctuation_soup(text: str) -> None:
    check(text.encode())


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.binary(min_size=1, max_size=8))
def test_mutations_of_a_valid_spec(position: int, junk: bytes) -> None:
    check(VALID[:position] + junk + VALID[position + 1 :])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(VALID)))
def test_truncations_of_a_valid_spec(length: int) -> None:
    """An editor's half-written save."""
    check(VALID[:length])
