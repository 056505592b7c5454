"""`turnout probe` against the sandbox with faults: classification, streams, pacing, resume, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.probe.conftest import FREE, PAID, ProbeRun, probe_command, probe_env


def test_each_fault_is_reported_with_its_kind(run_probe: Callable[..., ProbeRun], sandbox: Any) -> None:
    ok, payment, gone, limited, hung = PAID
    sandbox.server.set_plan({"models": {
        payment: {"fail_next": 9, "fail_next_code": 402},
        gone: {"fail_next": 9, "fail_next_code": 404},
        limited: {"rate_limit_rate": 1.0, "retry_after_s": 7},
        hung: {"hang_rate": 1.0},
    }})
    run = run_probe("--source", "catalogue", "--ids", *PAID, "--timeout", "2", "--concurrency", "5")
    assert run.code == 0, run.stderr
    results = run.by_model()
    assert results[ok]["ok"] is True and results[ok]["status"] == 200
    assert results[ok]["completion_tokens"] > 0 and results[ok]["cost_usd"] > 0
    assert (results[payment]["kind"], results[payment]["status"]) == ("payment", 402)
    assert (results[gone]["kind"], results[gone]["status"]) == ("unsupported", 404)
    assert (results[limited]["kind"], results[limited]["retry_after_s"]) == ("rate_limited", 7)
    assert results[hung]["kind"] == "timeout" and results[hung]["latency_s"] >= 1.9
    summary = run.report["summary"]
    assert (summary["tested"], summary["succeeded"], summary["failed"]) == (5, 1, 4)
    assert summary["failed_by_reason"] == {"payment": 1, "unsupported": 1, "rate_limited": 1, "timeout": 1}
    assert summary["success_rate"] == 0.2 and summary["fastest"][0]["model"] == ok
    assert "Probe summary" in run.stdout and "success rate" in run.stdout and "20.0%" in run.stdout


def test_stream_measures_time_to_first_token(run_probe: Callable[..., ProbeRun], sandbox: Any) -> None:
    slow = PAID[0]
    sandbox.server.set_plan({"models": {slow: {"first_token_delay_ms": 400, "chunk_delay_ms": 20}}})
    run = run_probe("--source", "catalogue", "--ids", slow, PAID[1], "--stream")
    assert run.code == 0, run.stderr
    result = run.by_model()[slow]
    assert result["ok"] and result["ttft_s"] >= 0.4 and result["latency_s"] >= result["ttft_s"]
    assert result["prompt_tokens"] > 0 and result["completion_tokens"] > 0
    assert all(call.stream for call in sandbox.server.calls)


def test_free_models_stay_inside_the_daily_quota(run_probe: Callable[..., ProbeRun], sandbox: Any) -> None:
    """3 free calls a day (the setting): the other two free models are skipped, and the sandbox,
    enforcing the same quota, never had to refuse one."""
    sandbox.server.set_plan({"free_tier": {"enforce": True, "per_day": 3, "per_minute": 20}})
    run = run_probe("--source", "catalogue", "--ids", *FREE, PAID[0],
                    env={"TURNOUT_POOL__FREE_TIER__REQUESTS_PER_DAY": "3", "TURNOUT_POOL__FREE_TIER__HEADROOM": "0"})
    assert run.code == 0, run.stderr
    results = run.report["results"]
    assert sum(r["ok"] for r in results if r["tier"] == "free") == 3
    assert [r["skipped"] for r in results if r["skipped"]] == ["free quota spent"] * 2
    assert run.by_model()[PAID[0]]["ok"] is True
    assert sandbox.server.free_tier.status()["used_today"] == 3
    assert not [c for c in sandbox.server.calls if c.outcome == "429"]


def test_daily_quota_429_stops_the_free_calls(run_probe: Callable[..., ProbeRun], sandbox: Any) -> None:
    """The account's quota is smaller than GET /key promised: OpenRouter's daily-quota 429
    ends free probing (no more calls spent on it); paid models go on."""
    sandbox.server.set_plan({"free_tier": {"enforce": True, "per_day": 2, "per_minute": 20}})
    run = run_probe("--source", "catalogue", "--ids", *FREE, PAID[0], "--concurrency", "1")
    assert run.code == 0, run.stderr
    free = [r for r in run.report["results"] if r["tier"] == "free"]
    assert [r["kind"] for r in free if r["skipped"] is None and not r["ok"]] == ["daily_quota"]
    assert sum(r["ok"] for r in free) == 2 and sum(bool(r["skipped"]) for r in free) == 2
    assert run.by_model()[PAID[0]]["ok"] is True
    assert len([c for c in sandbox.server.calls if c.model.endswith(":free")]) == 3


def test_max_requests_then_resume_probes_only_the_rest(run_probe: Callable[..., ProbeRun], sandbox: Any,
                                                       tmp_path: Path) -> None:
    first = run_probe("--source", "catalogue", "--ids", *PAID[:4], "--max-requests", "2")
    assert first.code == 0, first.stderr
    assert first.report["summary"]["tested"] == 2
    assert first.report["summary"]["skipped_by_reason"] == {"over --max-requests": 2}
    sandbox.server.reset_calls()
    second = run_probe("--source", "catalogue", "--ids", *PAID[:4], "--resume", str(first.report_path),
                       report="second.json")
    assert second.code == 0, second.stderr
    assert sorted(c.model for c in sandbox.server.calls) == sorted(PAID[2:4])
    assert second.report["summary"]["tested"] == 4 and "2 models skipped: probed within" in second.stdout
    # an old report is probed again
    stale = second.report
    for result in stale["results"]:
        result["probed_at"] -= 7200
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    sandbox.server.reset_calls()
    third = run_probe("--source", "catalogue", "--ids", *PAID[:4], "--resume", str(tmp_path / "stale.json"))
    assert third.code == 0 and len(sandbox.server.calls) == 4


def test_dry_run_prints_the_plan_and_calls_nothing(run_probe: Callable[..., ProbeRun], sandbox: Any) -> None:
    run = run_probe("--source", "catalogue", "--ids", *FREE, *PAID, "--dry-run",
                    env={"TURNOUT_POOL__FREE_TIER__REQUESTS_PER_MINUTE": "3", "TURNOUT_POOL__FREE_TIER__HEADROOM": "1"})
    assert run.code == 0, run.stderr
    assert "probe plan: 10 models" in run.stdout and "free 5, paid 5" in run.stdout
    assert "free paced at 2/min" in run.stdout
    # five free calls at two a minute: two more minutes after the first burst
    assert "estimated duration: ~2 min 5 s" in run.stdout
    assert not sandbox.server.calls and not run.report_path.exists()


def test_the_live_pool_is_the_default_source(run_probe: Callable[..., ProbeRun], sandbox: Any) -> None:
    run = run_probe("--tier", "free", "--max-requests", "3", "--dry-run")
    assert run.code == 0, run.stderr
    assert "probe plan: 3 models" in run.stdout and "free 3, paid 0" in run.stdout


def _ctrl_c_reaches_it() -> None:
    """A suite started in the background (`cmd &`, nohup, some CI runners) has SIGINT ignored,
    and an ignored signal stays ignored across exec: the probe would never see the test's Ctrl-C,
    as a shell's background job does not. The probe gets the terminal's default back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_writes_the_partial_report(sandbox: Any, tmp_path: Path) -> None:
    hung = PAID[2]
    sandbox.server.set_plan({"models": {hung: {"hang_rate": 1.0}}})
    report = tmp_path / "partial.json"
    process = subprocess.Popen(probe_command("--report", str(report), "--source", "catalogue", "--ids", *PAID[:3],
                                             "--timeout", "120", "--concurrency", "3"),
                               cwd=tmp_path, env=probe_env(sandbox, tmp_path, PYTHONFAULTHANDLER="1"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_ctrl_c_reaches_it)
    try:
        deadline = time.monotonic() + 60
        while not (sandbox.server.calls_for(hung) and len(sandbox.server.calls) >= 3):
            assert time.monotonic() < deadline and process.poll() is None, "the probe never reached the hung model"
            time.sleep(0.05)
        time.sleep(0.5)  # the two quick answers reach the probe
        process.send_signal(signal.SIGINT)
        try:
            stdout, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # where it hangs: faulthandler prints every thread's stack
            process.send_signal(signal.SIGABRT)
            _, stderr = process.communicate(timeout=30)
            raise AssertionError(f"the probe did not stop on Ctrl-C; its threads:\n{stderr[-6000:]}") from None
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # closes the pipes even when the test failed
    assert process.returncode == 130
    data = json.loads(report.read_text())
    assert data["interrupted"] is True and data["finished_at"] is not None
    assert sorted(r["model"] for r in data["results"]) == sorted(PAID[:2])
    assert "interrupted" in stdout


def test_without_a_key_only_the_dry_run_works(run_probe: Callable[..., ProbeRun], sandbox: Any) -> None:
    # No key at all (a key set but empty is refused at start: a secret that failed to mount).
    planned = run_probe("--source", "catalogue", "--tier", "free", "--dry-run", unset=("OPENROUTER_API_KEY",))
    assert planned.code == 0 and "probe plan:" in planned.stdout, planned.stderr
    refused = run_probe("--source", "catalogue", "--tier", "free", unset=("OPENROUTER_API_KEY",))
    assert refused.code == 2 and "no OPENROUTER_API_KEY" in refused.stdout
    assert not sandbox.server.calls
