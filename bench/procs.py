"""Processes the benchmark starts, and what /proc says about them.

Every process is started in its own session (so its whole group can be killed) and its
group id is appended to `out/pgids`; `run.sh` kills whatever is listed there on exit, so
nothing outlives the run even if this driver dies.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


class Procs:
    """Starts processes pinned to a core and stops them (and their groups) again."""

    def __init__(self, out: Path) -> None:
        self._out = out
        self._pgids_file = out / "pgids"
        self._live: list[Proc] = []

    def start(self, name: str, argv: list[str], *, core: int, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Proc:
        log = self._out / f"{name}.log"
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                ["taskset", "-c", str(core), *argv], stdout=sink, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True,
            )
        with self._pgids_file.open("a") as f:
            f.write(f"{popen.pid}\n")
        proc = Proc(name=name, popen=popen, log=log)
        self._live.append(proc)
        return proc

    def stop(self, proc: Proc, *, grace_s: float = 5.0) -> None:
        if proc.popen.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.popen.wait(timeout=grace_s)
        _signal_group(proc.pid, signal.SIGKILL)  # stragglers left in the group
        if proc in self._live:
            self._live.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._live)):
            self.stop(proc)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, ()))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its live descendants, in seconds."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    """VmRSS of `pid` and its live descendants."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def wait_port(port: int, *, timeout_s: float, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on port {port} after {timeout_s}s")
