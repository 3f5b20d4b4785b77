"""The distribution installs as one import package with two working commands."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def test_every_code_folder_is_listed_as_a_package() -> None:
    """A sub-package missing from pyproject's list would silently not be installed."""
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    mapping = conf["package-dir"]
    found = {"pycontainers"}
    for package, folder in mapping.items():
        if package == "pycontainers":
            continue
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *rel.parts]) if rel.parts else package)
    assert found == listed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(REPO)],
        check=True,
    )  # fmt: skip
    (whl,) = out.glob("pycontainers-*.whl")
    return whl


def test_wheel_installs_no_bare_top_level_modules(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"pycontainers"}
    for part in ("reconciler", "units", "runtime", "distribution"):
        assert f"pycontainers/{part}/__init__.py" in names
    assert "pycontainers/py.typed" in names


def test_fresh_venv_gets_both_commands(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3.*")) / "site-packages"
    # dependencies come from the project's .venv; the package itself from the wheel
    deps = Path(sys.executable).parent.parent / "lib"
    (site / "deps.pth").write_text(str(next(deps.glob("python3.*")) / "site-packages") + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )  # fmt: skip
    for command in ("pycontainers", "pycontainers-runtime"):
        exe = venv / "bin" / command
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
        assert "0." in version.stdout
        usage = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
        assert "usage" in usage.stdout.lower()
    # the runtime's lean launcher works for a regular install too (package in site-packages)
    subprocess.run(
        [venv / "bin" / "python", "-m", "pycontainers.runtime.launcher"],
        capture_output=True, check=True,
    )  # fmt: skip
    runtime = venv / "bin" / "pycontainers-runtime"
    assert runtime.read_text().splitlines()[0] == f"#!{venv / 'bin' / 'python'} -IS"
    version = subprocess.run([runtime, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("pycontainers-runtime version 0.")


def test_runtime_start_path_is_import_light() -> None:
    """pycontainers-runtime starts once per container: no heavy libraries on its path."""
    probe = (
        "import sys, pycontainers.runtime.cli as c\n"
        "heavy = {'pydantic', 'httpx', 'dbus_next', 'asyncio', 'yaml', 'cryptography'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_commands_from_the_project_venv() -> None:
    for command in ("pycontainers", "pycontainers-runtime"):
        out = subprocess.run(
            [VENV_BIN / command, "--version"], capture_output=True, text=True, check=True
        )
        assert out.stdout.startswith(command)


def test_runtime_command_starts_without_site() -> None:
    """make rewrites pip's console script (see pycontainers.runtime.launcher): no .pth
    file or editable-install import hook runs on a container start."""
    lines = (VENV_BIN / "pycontainers-runtime").read_text().splitlines()
    assert lines[0] == f"#!{sys.executable} -IS"
    (path_line,) = [line for line in lines if line.startswith("sys.path.append(")]
    root = Path(path_line.split("'")[1])
    assert (root / "pycontainers" / "runtime" / "cli.py").is_file()
