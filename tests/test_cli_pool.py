"""`turnout pool` as a shell user runs it: piped into a reader that stops early, given bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TURNOUT = Path(sys.executable).with_name("turnout")


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"OPENROUTER_API_KEY", "TURNOUT_CONFIG"}}
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_pool_piped_into_a_reader_that_leaves_early_exits_quietly(tmp_path: Path) -> None:
    # `true` exits before the pool is printed: every write meets a closed pipe.
    result = run(f"{TURNOUT} pool --format json | true; echo \"status=${{PIPESTATUS[0]}}\"", tmp_path)
    assert "status=0" in result.stdout
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    head = run(f"{TURNOUT} pool | head -n 2", tmp_path)
    assert head.stdout.splitlines()[0].split()[:3] == ["alias", "rank", "model"]
    assert "Traceback" not in head.stderr


@pytest.mark.parametrize(("content", "says"), [
    (None, "no such file"),
    ('{"models": []}', "not an OpenRouter catalogue"),
    ("[1, 2]", "not an OpenRouter catalogue"),
    ('{"data": [{"name": "x"}]}', "no model with an 'id'"),
    ("{not json", "not JSON"),
])
def test_a_bad_catalogue_file_is_one_line_naming_it_and_a_failure(tmp_path: Path, content: str | None,
                                                                   says: str) -> None:
    path = tmp_path / "catalogue.json"
    if content is not None:
        path.write_text(content)
    result = run(f"{TURNOUT} pool --catalogue {path}", tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and says in lines[0]


def test_a_good_catalogue_file_still_prints_the_pool(tmp_path: Path) -> None:
    from turnout.pool.report import BUNDLED_CATALOGUE

    result = run(f"{TURNOUT} pool --format json --catalogue {BUNDLED_CATALOGUE}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "auto" in {g["name"] for g in json.loads(result.stdout)["groups"]}
