"""What each make target installs on a fresh machine (`make -n`: the commands, not run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def dry_run(target: str, tmp_path: Path) -> str:
    result = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'fresh-venv'}"], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("target", ["run", "pool", "sandbox"])
def test_running_installs_the_runtime_only(target: str, tmp_path: Path) -> None:
    commands = dry_run(target, tmp_path)
    assert "pip install --quiet -e .\n" in commands
    assert "[test]" not in commands, "pytest, schemathesis, hypothesis, langchain are not needed to run"


@pytest.mark.parametrize("target", ["test", "check", "install"])
def test_testing_installs_the_test_extras(target: str, tmp_path: Path) -> None:
    assert "-e '.[test]'" in dry_run(target, tmp_path)


def test_a_missing_venv_module_says_which_package_to_install(tmp_path: Path) -> None:
    assert "apt install python3-venv" in dry_run("run", tmp_path)
