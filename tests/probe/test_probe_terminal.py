"""`turnout probe` in a real terminal (tmux): the progress bar redraws while it runs, the summary follows."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.probe.conftest import PAID, probe_command, probe_env


def test_a_terminal_shows_the_progress_bar_then_the_summary(sandbox: Any, tmp_path: Path) -> None:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux not installed (.ci/run installs Debian's tmux)")
    sandbox.server.set_plan({"default": {"latency_ms": 700}})
    env = probe_env(sandbox, tmp_path)
    exports = "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items()
                        if name.startswith(("OPENROUTER_", "TURNOUT_", "LITELLM_", "PATH", "HOME")))
    command = shlex.join(probe_command("--report", str(tmp_path / "r.json"), "--source", "catalogue",
                                       "--ids", *PAID, "--concurrency", "1"))
    script = tmp_path / "probe.sh"
    script.write_text(f"unset COLUMNS LINES\n{exports}\ncd {shlex.quote(str(tmp_path))}\n{command}\n"
                      "echo PROBE-EXIT=$?\nsleep 600\n")
    socket = f"turnout-probe-{tmp_path.name}"
    base = [tmux, "-L", socket]
    subprocess.run([*base, "new-session", "-d", "-s", "probe", "-x", "140", "-y", "50", f"bash {script}"],
                   check=True, timeout=30)
    try:
        mid_run: str | None = None
        screen = ""
        deadline = time.monotonic() + 120
        while "PROBE-EXIT=" not in screen:
            assert time.monotonic() < deadline, f"the probe did not finish; the screen:\n{screen}"
            screen = subprocess.run([*base, "capture-pane", "-p", "-t", "probe"], capture_output=True, text=True,
                                    timeout=30).stdout
            if mid_run is None and "probing" in screen and "Probe summary" not in screen and re.search(r"\b[1-4]/5\b", screen):
                mid_run = screen
            time.sleep(0.1)
    finally:
        subprocess.run([*base, "kill-server"], timeout=30, check=False)
    assert mid_run is not None, "never saw the progress bar while the probe ran"
    assert "━" in mid_run and "ok " in mid_run  # the bar, and the running tally
    print(mid_run)
    assert "PROBE-EXIT=0" in screen
    assert "Probe summary" in screen and "models tested" in screen and "5/5" in screen
    assert "succeeded" in screen and "100.0%" in screen and "fastest" in screen
    print(screen)
