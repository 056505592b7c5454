"""The provisioned Grafana dashboard against a real Prometheus (Debian `prometheus`; .ci/run
installs it) scraping a real gateway every second: every panel's query evaluates, and the
panels this traffic should light up do show data, with the labels their legends name.

Traffic is sent in two waves with scrapes in between: `rate()` and `increase()` need a
series to change between two samples, and a labelled series is born at its first value.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CHAIN_BACKUP, CHAIN_PRIMARY, free_port
from turnout.sandbox import FaultPlan, ModelFaults

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/dashboards/turnout.json"
HELLO = [{"role": "user", "content": "hello"}]
ADMIN = {"Authorization": "Bearer admin-key"}
# Grafana's interval variables: the whole test fits in a minute, so one window sees all of it.
WINDOW = "1m"
WAVE = 6  # client requests per traffic wave

Sample = tuple[dict[str, str], float]


class LivePrometheus:
    """A Prometheus server on loopback, scraping one gateway's /metrics every second."""

    def __init__(self, binary: str, *, target: str, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "prometheus.log"
        config = workdir / "prometheus.yml"  # JSON is YAML
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "turnout", "metrics_path": "/metrics",
                                "static_configs": [{"targets": [target]}]}],
        }))
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def samples(self, expr: str) -> list[Sample]:
        """An instant query now, through /api/v1/query; a PromQL error fails the test."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
        data = answer["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def wait_for(self, what: str, check: Callable[[], bool], *, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus: {what} within {timeout} s; log: "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def wait_until_scraping(self) -> None:
        self.wait_for("ready", self._ready)
        self.wait_for("target up", lambda: [t["health"] for t in self._targets()] == ["up"])
        self.wait_for("three scrapes", lambda: self._value('count_over_time(up{job="turnout"}[1m])') >= 3)

    def wait_for_value(self, expr: str, expected: float) -> None:
        self.wait_for(f"{expr} == {expected}", lambda: self._value(expr) == expected)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def _targets(self) -> list[dict[str, Any]]:
        found = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        return list(found)

    def _value(self, expr: str) -> float:
        found = self.samples(expr)
        return found[0][1] if found else math.nan


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[str], LivePrometheus]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (.ci/run installs Debian's prometheus)")
    started: list[LivePrometheus] = []

    def start(target: str) -> LivePrometheus:
        workdir = tmp_path / f"prometheus{len(started)}"
        workdir.mkdir()
        started.append(LivePrometheus(binary, target=target, workdir=workdir))
        started[-1].wait_until_scraping()
        return started[-1]

    yield start
    for prometheus in started:
        prometheus.stop()


# -- the dashboard ----------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def targets(board: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(panel title, refId, target) for every query of every panel."""
    return [(panel["title"], target["refId"], target)
            for panel in board["panels"] for target in panel.get("targets", [])]


def as_prometheus_query(expr: str, variables: dict[str, str]) -> str:
    """The PromQL Grafana would send, its `$__*` intervals fitted to this short test."""
    expr = re.sub(r"\$__(rate_interval|range|interval)\b", WINDOW, expr)
    for name, value in variables.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"a dashboard variable the test does not know: {expr}"
    return expr


def all_values(board: dict[str, Any]) -> dict[str, str]:
    """Each dashboard variable at its default, "All" (Grafana sends its `allValue`)."""
    found: dict[str, str] = {}
    for variable in board["templating"]["list"]:
        assert variable["includeAll"] and variable["current"]["value"] == ["$__all"], variable["name"]
        found[variable["name"]] = variable["allValue"]
    return found


# -- traffic ----------------------------------------------------------------------------


def chat(gw: Any, model: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": HELLO}, timeout=30)


def stream(gw: Any, model: str) -> None:
    body = {"model": model, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as resp:
        assert resp.status_code == 200
        assert [line for line in resp.iter_lines() if line][-1] == "data: [DONE]"


def send_wave(gw: Any, *, free_model: str, paid_model: str) -> None:
    """WAVE requests: a fallback after a 429, free and paid answers as JSON and as streams, an unknown model."""
    resp = chat(gw, "primary")
    assert resp.status_code == 200 and resp.headers["x-turnout-fallback"] == "true"
    assert chat(gw, free_model).status_code == 200
    assert chat(gw, paid_model).status_code == 200
    stream(gw, "paid")
    stream(gw, "free")
    assert chat(gw, "no-such-model").status_code == 404


def pick(gw: Any, group: str) -> str:
    """A pool model of `group` that the fault plan leaves alone, asked for by its id every wave
    (an alias may pick another model each time, and a new series alone has no rate)."""
    pool = gw.state.holder.current.pool
    models = [pool.deployments[m.deployment_id].model for m in pool.groups[group].members]
    return next(m for m in models if m not in (CHAIN_PRIMARY, CHAIN_BACKUP))


# -- what the panels must show after the two waves ---------------------------------------


def values(samples: list[Sample], label: str) -> dict[str, float]:
    return {metric.get(label, ""): value for metric, value in samples}


def one(samples: list[Sample]) -> float:
    assert len(samples) == 1, samples
    return samples[0][1]


def positive_for(label: str, *wanted: str) -> Callable[[list[Sample]], bool]:
    return lambda samples: all(values(samples, label).get(w, 0) > 0 for w in wanted)


def share(samples: list[Sample]) -> bool:
    return 0 < one(samples) < 1


# (panel title, refId) -> what its answer must satisfy for this traffic.
EXPECTED: dict[tuple[str, str], Callable[[list[Sample]], bool]] = {
    ("Requests / s", "A"): lambda s: one(s) > 0,
    ("Success (2xx share)", "A"): share,  # the unknown model is a 404
    ("In flight", "A"): lambda s: one(s) == 0,
    ("Free share of answers", "A"): share,
    ("Cost (range)", "A"): lambda s: one(s) > 0,
    ("Free daily quota", "A"): lambda s: one(s) == 0,
    ("Requests by alias", "A"): positive_for("alias", "primary", "paid", "free", "model", "other"),
    ("Requests by status class", "A"): positive_for("status_class", "2xx", "4xx"),
    ("Time to first token (streams)", "B"): lambda s: one(s) > 0,
    ("Upstream error mix", "A"): positive_for("outcome", "rate_limited"),
    ("Fallbacks and retries", "A"): lambda s: one(s) > 0 and s[0][0] == {"from_group": "primary", "to_group": "backup"},
    ("Fallbacks and retries", "B"): lambda s: one(s) > 0,
    ("Fallbacks and retries", "C"): positive_for("reason", "rate_limited"),
    # The 429s follow CHAIN_PRIMARY's id, so the pool's own free copy of it may fail too.
    ("Most failing models (range)", "A"): positive_for("model", "primary"),
    ("Upstream attempt duration p95", "A"): positive_for("tier", "free", "paid", "static"),
    ("Free vs paid (answered attempts)", "A"): positive_for("tier", "free", "paid", "static"),
    ("Tokens / s", "A"): positive_for("kind", "prompt", "completion"),
    ("Pool members by alias and tier", "A"): lambda s: {("primary", "static"), ("auto", "free"), ("auto", "paid")}
    <= {(m["alias"], m["tier"]) for m, _ in s},
    ("Deployment health", "A"): lambda s: all(0 <= v <= 1 for _, v in s),
    ("Free-tier budget left", "A"): lambda s: values(s, "window").get("minute", 0) > 0,
    ("Refreshes", "A"): lambda s: values(s, "outcome").get("ok", 0) > 0,  # the admin refresh between the waves
    ("Refreshes", "B"): lambda s: one(s) > 0,
    ("Since last good refresh", "A"): lambda s: 0 <= one(s) < 60,
    ("Pool degraded", "A"): lambda s: one(s) == 0,
    ("Catalogue models", "A"): lambda s: one(s) > 0,
}
# Panels this traffic may leave empty, and why:
MAY_BE_EMPTY = {
    # Primary is benched only for its 429's Retry-After (1 s): whether that is still running when
    # the panels are read is a matter of timing.
    ("Benched now", "A"),
}


def test_every_dashboard_panel_shows_the_traffic_in_a_real_prometheus(
    chain: Callable[..., Any], sandbox: Any, start_prometheus: Callable[[str], LivePrometheus]
) -> None:
    gw = chain(admin_key="admin-key", pool={"health": {"enabled": True}})  # health feeds "Deployment health"
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(rate_limit_rate=1.0, retry_after_s=1)}))
    prometheus = start_prometheus(f"127.0.0.1:{gw.port}")
    free_model, paid_model = pick(gw, "free"), pick(gw, "paid")

    send_wave(gw, free_model=free_model, paid_model=paid_model)
    prometheus.wait_for_value("sum(turnout_requests_total)", WAVE)
    # Back from its bench, so the second wave's first call is a 429 and a fallback again.
    prometheus.wait_for_value('max(turnout_deployment_cooling_down{model="primary"})', 0)
    assert httpx.post(f"{gw.url}/admin/refresh", headers=ADMIN, timeout=30).status_code == 200
    send_wave(gw, free_model=free_model, paid_model=paid_model)
    prometheus.wait_for_value("sum(turnout_requests_total)", 2 * WAVE)
    prometheus.wait_for_value('sum(turnout_pool_refreshes_total{kind="catalogue"})', 2)

    board = dashboard()
    variables = all_values(board)
    empty: list[str] = []
    wrong: list[str] = []
    for title, ref, target in targets(board):
        expr = as_prometheus_query(target["expr"], variables)
        shown = [(m, v) for m, v in prometheus.samples(expr) if not math.isnan(v)]  # Grafana draws NaN as no data
        if not shown:
            if (title, ref) not in MAY_BE_EMPTY:
                empty.append(f"{title} {ref}: {expr}")
            continue
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")):
            assert all(label in m for m, _ in shown), f"{title} {ref}: legend {{{{{label}}}}} not in {shown}"
        check = EXPECTED.get((title, ref))
        if check is not None and not check(shown):
            wrong.append(f"{title} {ref}: {expr} -> {shown}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    assert not wrong, "panels that do not show this traffic:\n" + "\n".join(wrong)
    assert set(EXPECTED) | MAY_BE_EMPTY <= {(t, r) for t, r, _ in targets(board)}, "EXPECTED names a lost panel"

    # The `alias` variable lists what Grafana will offer: the aliases that served traffic.
    offered = httpx.get(f"{prometheus.url}/api/v1/label/alias/values",
                        params={"match[]": "turnout_requests_total"}, timeout=10).json()["data"]
    assert {"primary", "paid", "free", "model", "other"} <= set(offered)
