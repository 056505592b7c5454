"""The status page at GET / and /status: self-contained HTML that shows the live sandbox
pool, rendered and screenshotted in headless Chromium (Debian `chromium`; .ci/run installs it).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CHAIN_PRIMARY
from turnout.sandbox import FaultPlan, ModelFaults

HELLO = [{"role": "user", "content": "hello"}]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000")


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium)")
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_status_page_renders_the_sandbox_pool_in_chromium(chain: Callable[..., Any], sandbox: Any,
                                                          tmp_path: Path) -> None:
    gw = chain()
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(rate_limit_rate=1.0, retry_after_s=60)}))
    for model in ("primary", "auto", "auto", "paid"):
        assert httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": HELLO},
                          timeout=30).status_code == 200
    shot = tmp_path / "status.png"
    chromium(f"--screenshot={shot}", f"{gw.url}/status", profile=tmp_path / "profile")
    assert shot.exists(), "chromium wrote no screenshot"
    data = shot.read_bytes()
    assert png_size(data) == (1400, 1000)
    assert len(data) > 50_000  # a blank or error page compresses to a few kB

    dom = chromium("--dump-dom", f"{gw.url}/", profile=tmp_path / "profile").stdout
    assert "<title>Turnout" in dom and 'id="state">ready<' in dom
    pool = gw.state.holder.current.pool
    for name, group in pool.groups.items():
        if group.kind == "model":
            continue
        section = re.search(rf'data-alias="{re.escape(name)}">(.*?)</section>', dom, re.S)
        assert section is not None, f"no section for {name}"
        for member in group.members:
            assert pool.deployments[member.deployment_id].model in section.group(1), (name, member)
    benched = re.search(r'data-alias="primary">.*?</section>', dom, re.S)
    assert benched is not None and "benched" in benched.group(0)  # the 429 benched it
    mix = re.search(r'id="error-mix">.*?</section>', dom, re.S)
    assert mix is not None and "rate_limited" in mix.group(0)
    assert 'id="tier-share"' in dom


def test_status_page_is_self_contained(chain: Callable[..., Any]) -> None:
    gw = chain()
    for path in ("/", "/status"):
        resp = httpx.get(f"{gw.url}{path}", timeout=10)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        page = resp.text
        assert "<script" not in page.lower()
        assert not re.search(r'(src|href)="(https?:)?//', page), "no external assets"
        assert "<style>" in page and ":root" in page
        assert 'data-alias="auto"' in page and 'data-alias="primary"' in page
        assert "No upstream traffic yet." in page


def test_status_page_says_why_the_pool_is_degraded(chain: Callable[..., Any], sandbox: Any) -> None:
    sandbox.server.set_plan(FaultPlan(catalogue_error=503))
    gw = chain()
    page = httpx.get(f"{gw.url}/status", timeout=10).text
    assert 'id="state">degraded<' in page
    assert "serving static deployments only" in page
    assert 'data-alias="primary"' in page and "failed" in page  # the last refresh failed
