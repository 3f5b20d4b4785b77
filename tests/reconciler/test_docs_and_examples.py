"""docs/spec.md documents every field of the schema; every example is valid."""

from __future__ import annotations

import re
from pathlib import Path

from pycontainers.reconciler.desired import load_desired
from pycontainers.reconciler.dirsource import DirectorySource
from pycontainers.reconciler.spec import json_schema

REPO = Path(__file__).resolve().parents[2]


def test_every_schema_field_is_documented() -> None:
    doc = (REPO / "docs" / "spec.md").read_text()
    documented = set(re.findall(r"`([a-zA-Z]+)(?:\.[a-zA-Z]+)?`", doc)) | set(
        re.findall(r"`[a-zA-Z]+\.([a-zA-Z]+)`", doc)
    )
    missing = {
        f"{model}.{field}"
        for model, definition in json_schema()["$defs"].items()
        for field in definition.get("properties", {})
        if field not in documented
    }
    assert not missing


def test_examples_are_valid_and_cover_the_promised_cases() -> None:
    desired = load_desired(DirectorySource(REPO / "examples").read_snapshot())
    assert desired.errors == ()
    specs = {name: c.document.spec for name, c in desired.containers.items()}
    assert specs["web"].network == "host"  # a server on a host port
    assert specs["worker"].resources.memory is not None  # a memory limit
    assert specs["migrate"].restart_policy != "Always"  # a one-shot job
    assert set(specs["api"].depends_on) >= {"cache"}  # containers with dependsOn
