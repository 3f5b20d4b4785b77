"""Pure helpers: unit names, metadata carried in LogExtraFields, failure prose, object paths."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pycontainers.units.errors import UnitSpecError
from pycontainers.units.manager import (
    CLD_EXITED,
    CLD_KILLED,
    UnitStatus,
    describe_failure,
    unit_name_from_path,
)
from pycontainers.units.model import (
    UnitMetadata,
    container_of,
    default_runtime_path,
    unit_name,
)


def test_unit_name_round_trip() -> None:
    assert unit_name("web-1") == "pycontainers-web-1.service"
    assert container_of("pycontainers-web-1.service") == "web-1"


@pytest.mark.parametrize(
    "unit",
    ["web.service", "pycontainers-web.socket", "pycontainers-.service", "pycontainers-A.service"],
)
def test_other_units_are_not_containers(unit: str) -> None:
    assert container_of(unit) is None


@pytest.mark.parametrize("bad", ["", "-web", "web-", "web.1", "we b", "web/..", "x" * 64])
def test_bad_names_are_refused(bad: str) -> None:
    with pytest.raises(UnitSpecError, match="name"):
        unit_name(bad)


def test_metadata_round_trips_through_log_fields() -> None:
    meta = UnitMetadata("web", "5f2a", "sha256:" + "0" * 64)
    assert UnitMetadata.from_log_fields(meta.log_fields()) == meta
    # systemd hands them back as byte arrays, in any order, maybe among others
    fields = [b"OTHER=1", *reversed(meta.log_fields())]
    assert UnitMetadata.from_log_fields(fields) == meta


def test_units_without_our_fields_carry_no_metadata() -> None:
    assert UnitMetadata.from_log_fields([]) is None
    assert UnitMetadata.from_log_fields([b"PYCONTAINERS_NAME=web"]) is None


def test_default_runtime_is_beside_the_interpreter_unresolved() -> None:
    path = Path(default_runtime_path())
    assert path.name == "pycontainers-runtime"
    assert path.parent == Path(sys.executable).parent


def test_unit_object_paths_decode_to_names() -> None:
    path = "/org/freedesktop/systemd1/unit/pycontainers_2dweb_2d1_2eservice"
    assert unit_name_from_path(path) == "pycontainers-web-1.service"
    assert unit_name_from_path("/org/freedesktop/systemd1/job/12") is None


STATUS = UnitStatus(
    name="pycontainers-web.service", load_state="loaded", active_state="failed",
    sub_state="failed", result="exit-code", transient=True, description="", documentation=(),
    main_pid=0, exec_main_code=CLD_EXITED, exec_main_status=1, control_group="", n_restarts=0,
    log_extra_fields=(), active_enter_usec=0, inactive_enter_usec=0, state_change_usec=0,
    fragment_path="",
)  # fmt: skip


def test_failure_reasons_say_what_systemd_saw() -> None:
    assert describe_failure("failed", STATUS) == (
        "the main process exited with status 1 (result exit-code)"
    )
    exec_failed = replace(STATUS, exec_main_status=203)
    assert "the executable could not be run" in describe_failure("failed", exec_failed)
    killed = replace(STATUS, result="signal", exec_main_code=CLD_KILLED, exec_main_status=9)
    assert "killed by SIGKILL" in describe_failure("failed", killed)
    limit = replace(STATUS, result="start-limit-hit")
    assert describe_failure("failed", limit).startswith(
        "start of the service was attempted too often; the main process exited with status 1"
    )
    assert "a unit it requires failed" in describe_failure(
        "dependency", replace(STATUS, result="success")
    )
    assert "(the unit is gone)" in describe_failure("failed", None)
