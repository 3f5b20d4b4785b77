"""render_properties, tested the Quadlet way: one self-describing case file per behaviour.

Each ``cases/*.case`` file opens with ``## assert-...`` lines, then a YAML UnitSpec:

    ## assert-property NAME SIGNATURE JSON   the property is present with that type and value
    ## assert-exec NAME IGNORE ARG...        an a(sasb) command: argv, and the ignore-failure flag
    ## assert-absent NAME                    the property is not set
    ## assert-error FIELD TEXT               render refuses the spec: UnitSpecError on FIELD

A new case is a new file. No systemd here: the lifecycle tests send the same properties to
a real manager.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from pycontainers.units.errors import UnitSpecError
from pycontainers.units.model import (
    Resources,
    RestartPolicy,
    RuntimeCommand,
    UnitProperty,
    UnitSpec,
    render_properties,
)

CASES = sorted((Path(__file__).parent / "cases").glob("*.case"))


def spec_from(data: dict[str, Any]) -> UnitSpec:
    data = dict(data)
    for key, cls in (("runtime", RuntimeCommand), ("restart", RestartPolicy)):
        if key in data:
            data[key] = cls(**data[key])
    if "resources" in data:
        data["resources"] = Resources(**data["resources"])
    if "depends_on" in data:
        data["depends_on"] = tuple(data["depends_on"])
    return UnitSpec(**data)


def normalise(value: object) -> object:
    """Tuples as lists and bytes as text, so JSON in a case file can state any value."""
    if isinstance(value, tuple | list):
        return [normalise(v) for v in value]
    if isinstance(value, bytes):
        return value.decode()
    return value


def parse(line: str) -> list[str]:
    """``assert-property`` keeps its JSON value verbatim; the other verbs are shell words."""
    if line.startswith("assert-property "):
        return line.split(None, 3)
    return shlex.split(line)


def check_case(path: Path) -> None:
    text = path.read_text()
    asserts = [parse(line[3:]) for line in text.splitlines() if line.startswith("## assert-")]
    assert asserts, f"{path.name} asserts nothing"
    spec = spec_from(yaml.safe_load(text))
    errors = [a for a in asserts if a[0] == "assert-error"]
    if errors:
        (_, field, message), *_ = errors
        with pytest.raises(UnitSpecError) as info:
            render_properties(spec)
        assert info.value.field == field, f"{path.name}: {info.value}"
        assert message in str(info.value), f"{path.name}: {info.value}"
        return
    props = render_properties(spec)
    names = [p.name for p in props]
    assert len(names) == len(set(names)), f"{path.name}: duplicate properties {names}"
    by_name: dict[str, UnitProperty] = {p.name: p for p in props}
    for verb, name, *args in asserts:
        prop = by_name.get(name)
        if verb == "assert-absent":
            assert prop is None, f"{path.name}: {name} is set to {prop}"
            continue
        assert prop is not None, f"{path.name}: {name} is not set"
        if verb == "assert-property":
            signature, value = args
            assert prop.signature == signature, f"{path.name}: {name} has type {prop.signature}"
            assert normalise(prop.value) == json.loads(value), f"{path.name}: {name}"
        elif verb == "assert-exec":
            ignore, argv = args[0] == "true", args[1:]
            assert prop.signature == "a(sasb)"
            assert normalise(prop.value) == [[argv[0], argv, ignore]], f"{path.name}: {name}"
        else:
            raise AssertionError(f"{path.name}: unknown assertion {verb}")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    check_case(path)
