"""The validate, schema and diff commands through the real ``pycontainers`` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from reconciler_testkit import document, spec_yaml

from pycontainers.reconciler.actual import ActualContainer, ActualState, actual_state_json
from pycontainers.reconciler.cli import main
from pycontainers.reconciler.desired import load_desired
from pycontainers.reconciler.dirsource import DirectorySource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_examples_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", str(EXAMPLES))
    assert (code, out) == (0, "")
    assert err.startswith("ok: ")


def test_validate_prints_file_line_column_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.yaml").write_bytes(spec_yaml(document("good")))
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(spec_yaml(document("bad", imagee="x")))
    code, out, _ = run(capsys, "validate", str(tmp_path / "good.yaml"), str(bad))
    assert code == 1
    assert out == f"{bad}:6:3: spec.imagee: unknown field 'imagee' (did you mean 'image'?)\n"


def test_validate_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert out == f"{tmp_path / 'nope.yaml'}: no such file\n"


def test_validate_needs_no_root() -> None:
    """Run as nobody: validate must not touch /var/lib, /run or systemd."""
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        spec = Path(tmp) / "web.yaml"
        spec.write_bytes(spec_yaml(document("web")))
        secret = Path(tmp) / "secret"
        secret.mkdir(mode=0o700)
        result = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-m",
                "pycontainers.reconciler.cli",
                "validate",
                str(spec),
                str(secret / "x.yaml"),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
            cwd="/",
        )
    # The spec is fine; the unreadable path is reported as an error, not a traceback.
    assert result.returncode == 1, result.stderr
    assert result.stdout == f"{secret / 'x.yaml'}: cannot read: Permission denied\n"
    assert "Traceback" not in result.stderr


def test_schema_is_json_schema_of_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    schema = json.loads(out)
    assert code == 0
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"apiVersion", "kind", "metadata", "spec"}
    spec_fields = schema["$defs"]["ContainerSpec"]["properties"]
    for field in ("image", "imagePullPolicy", "dependsOn", "readOnlyRootFilesystem", "signature"):
        assert field in spec_fields


def test_diff_against_empty_state_creates_everything(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", str(EXAMPLES))
    assert code == 0
    assert "5 to create, 0 to replace" in out
    creates = [line.split()[2] for line in out.splitlines() if line.startswith("  + create")]
    assert creates.index("cache") < creates.index("api")
    assert creates.index("migrate") < creates.index("api")


def test_diff_against_an_actual_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "web.yaml").write_bytes(spec_yaml(document("web", env={"GREETING": "hello"})))
    (specs / "job.yaml").write_bytes(spec_yaml(document("job", restartPolicy="Never")))
    desired = load_desired(DirectorySource(specs).read_snapshot())
    old = load_desired(DirectorySource(specs).read_snapshot()).containers["web"]
    actual = ActualState.of(
        ActualContainer(
            "web",
            applied_hash="0" * 64,
            applied_spec={
                **old.normalised,
                "spec": {**old.normalised["spec"], "env": {"GREETING": "hi"}},
            },
            source_file="web.yaml",
        ),
        ActualContainer(
            "job",
            applied_hash=desired.containers["job"].spec_hash,
            active_state="inactive",
            sub_state="dead",
        ),
        ActualContainer("old", applied_hash="1" * 64, source_file="old.yaml"),
    )
    state_file = tmp_path / "actual.json"
    state_file.write_text(actual_state_json(actual))

    code, out, _ = run(capsys, "diff", str(specs), "--actual", str(state_file), "--all")
    assert code == 0
    assert out.splitlines()[2:] == [
        "  - remove  old  spec removed",
        "    nothing job  completed (success; restartPolicy Never)",
        "  ~ replace web  env changed: GREETING",
        '      - spec.env.GREETING: "hi"',
        '      + spec.env.GREETING: "hello"',
    ]

    code, out, _ = run(
        capsys,
        "diff",
        str(specs),
        "--actual",
        str(state_file),
        "--format",
        "json",
        "--detailed-exitcode",
    )
    assert code == 2
    doc = json.loads(out)
    assert doc["summary"]["replace"] == 1
    assert [(a["action"], a["name"]) for a in doc["actions"]] == [
        ("remove", "old"),
        ("nothing", "job"),
        ("replace", "web"),
    ]
    assert doc["actions"][2]["changes"] == [
        {"path": "spec.env.GREETING", "old": "hi", "new": "hello"}
    ]


def test_diff_with_invalid_file_shows_hold_and_errors_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "web.yaml").write_text("apiVersion: pycontainers/v1\nkind: [\n")
    state = tmp_path / "actual.json"
    state.write_text(json.dumps({"containers": [{"name": "web", "sourceFile": "web.yaml"}]}))
    code, out, _ = run(capsys, "diff", str(tmp_path), "--actual", str(state))
    assert code == 1
    assert "  ! hold    web  web.yaml is invalid: kept as it last was" in out
    assert "web.yaml:3:1: yaml syntax error" in out


def test_diff_with_a_bad_actual_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "actual.json"
    state.write_text('{"containers": [{"nme": "web"}]}')
    code, _, err = run(capsys, "diff", str(EXAMPLES), "--actual", str(state))
    assert code == 1
    assert err.startswith(f"pycontainers: invalid actual state {state}: containers.0")
