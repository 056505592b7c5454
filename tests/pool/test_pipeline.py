"""`turnout pool` and the gateway's refresh run one pipeline: the CLI prints the pool the gateway builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import OPENROUTER_TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin-key-for-the-pipeline-test"


def test_the_pool_command_prints_the_pool_the_gateway_built(start_gateway: Callable[..., Any], sandbox: Any,
                                                            tmp_path: Path) -> None:
    gw = start_gateway(admin_key=ADMIN)
    live = httpx.get(f"{gw.url}/admin/pool", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30).json()
    env = {**os.environ, "OPENROUTER_API_KEY": OPENROUTER_TEST_KEY, "OPENROUTER_BASE_URL": sandbox.base_url,
           "TURNOUT_SANDBOX": "off", "TURNOUT_DATA_DIR": str(tmp_path / "cli"), "PYTHONPATH": str(ROOT)}
    env.pop("TURNOUT_CONFIG", None)
    result = subprocess.run([sys.executable, "-m", "turnout.cli", "pool", "--format", "json"], capture_output=True,
                            text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)

    def seats(groups: dict[str, list[dict[str, Any]]]) -> dict[str, list[tuple[Any, ...]]]:
        return {name: [(m["deployment"], m["rank"], m["order"], m["weight"]) for m in members]
                for name, members in groups.items()}

    kinds = {g["name"]: g["kind"] for g in printed["groups"]}
    cli_groups = {g["name"]: [{**m, "deployment": m["deployment_id"]} for m in g["members"]]
                  for g in printed["groups"] if kinds[g["name"]] != "model"}
    assert seats(cli_groups) == seats(live["groups"])
    paid = [m for m in live["groups"]["auto"] if m["tier"] == "paid"]
    assert paid and paid[0]["rank"] == min(m["rank"] for m in paid)  # the paid #1 is in both, by the line above
