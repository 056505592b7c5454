"""The operator's status page as HTML: server-rendered, no scripts and no external assets (it
works offline and reloads itself every 15 s). `turnout.api.status` gathers a `StatusView` from
the live app state and serves what `render` makes of it.

It shows the pool per alias (rank, model, tier, health, score, weight, recent success rate,
benched or not), the last refresh, the free-tier budget and the upstream error mix of the
last minutes. Like /metrics it needs no key and shows no secret.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from importlib import resources
from string import Template
from typing import Any

from turnout.observability.activity import Minute
from turnout.upstream.failures import FAILURES

REFRESH_S = 15
# Outcome colours, in stacking order (ok at the bottom of each bar).
OUTCOME_COLOURS = (("ok", "#1f9d55"), *((kind, failure.colour) for kind, failure in FAILURES.items()))
_COLOUR = dict(OUTCOME_COLOURS)


@dataclass(frozen=True, slots=True)
class MemberRow:
    rank: int
    order: int
    model: str
    tier: str
    health: float | None
    score: float
    weight: int
    ok: int
    total: int
    cooling_s: float | None


@dataclass(frozen=True, slots=True)
class AliasView:
    name: str
    kind: str
    description: str
    fallbacks: tuple[str, ...]
    rows: tuple[MemberRow, ...]


@dataclass(frozen=True, slots=True)
class StatusView:
    now: float
    version: str
    state: str
    reason: str | None
    source: str
    built_at: float | None
    aliases: tuple[AliasView, ...]
    tiers: Mapping[str, int]
    gated: Mapping[str, str]
    refresh: Mapping[str, Any]
    budget: Mapping[str, Any]
    minutes: Sequence[Minute]
    answered: Mapping[str, int]


def render(view: StatusView) -> str:
    body = [_notice(view), _tiles(view),
            f'<div class="row2">{_chart_panel(view)}{_mix_panel(view)}</div>',
            f'<div class="aliases">{"".join(_alias(a) for a in view.aliases)}</div>' if view.aliases
            else '<div class="panel"><div class="empty">No pool yet.</div></div>',
            _gated_panel(view)]
    return _page().substitute(
        refresh=REFRESH_S, css=_css(), version=escape(view.version), state=escape(view.state),
        state_class={"ready": "ready", "degraded": "degraded"}.get(view.state, "down"),
        source=escape(view.source), built=_ago(view.now, view.built_at),
        now=time.strftime("%H:%M:%S", time.gmtime(view.now)), minutes=len(view.minutes),
        body="\n".join(part for part in body if part),
    )


def _notice(view: StatusView) -> str:
    return f'<div class="notice"><b>{escape(view.state.capitalize())}:</b> {escape(view.reason)}</div>' \
        if view.reason else ""


def _tiles(view: StatusView) -> str:
    minutes = view.minutes
    span = f"{len(minutes)} min"
    requests: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    apis: dict[str, int] = {}
    for minute in minutes:
        for klass, count in minute.requests.items():
            requests[klass] = requests.get(klass, 0) + count
        for api, count in minute.apis.items():
            apis[api] = apis.get(api, 0) + count
        for (_, outcome), count in minute.attempts.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    total_req = sum(requests.values())
    total_att = sum(outcomes.values())
    ok_req, ok_att = requests.get("2xx", 0), outcomes.get("ok", 0)
    req_sub = f'{_pct(ok_req, total_req)} 2xx · {requests.get("4xx", 0)} 4xx · {requests.get("5xx", 0)} 5xx'
    if set(apis) - {"chat"}:  # say which APIs the traffic came through once agents use the others
        req_sub += "<br>" + " · ".join(f"{n:,} {escape(api)}" for api, n in sorted(apis.items()))
    att_sub = f"{_pct(ok_att, total_att)} ok · {total_att - ok_att} failed"
    tiers = " · ".join(f"{n} {escape(t)}" for t, n in sorted(view.tiers.items())) or "empty"
    benched = len({r.model for a in view.aliases for r in a.rows if r.cooling_s})
    cards = [
        _tile(f"Requests · {span}", f"{total_req:,}", req_sub, _rate_class(ok_req, total_req)),
        _tile(f"Upstream · {span}", f"{total_att:,}", att_sub, _rate_class(ok_att, total_att)),
        _pool_tile(view, tiers),
        _budget_tile(view),
        _refresh_tile(view),
        _tile("Benched now", str(benched), f"{len(view.gated)} gated by health", "bad" if benched else "good"),
    ]
    return f'<section class="tiles">{"".join(cards)}</section>'


def _tile(title: str, big: str, sub: str, tone: str = "") -> str:
    return (f'<div class="tile"><h3>{escape(title)}</h3><div class="big {tone}">{big}</div>'
            f'<div class="sub">{sub}</div></div>')


def _pool_tile(view: StatusView, tiers: str) -> str:
    credits = view.refresh.get("paid_credits") or {}
    if credits.get("out"):
        return _tile("Pool", f"{sum(view.tiers.values())}<small>deployments</small>",
                     f"{tiers}<br>paid OpenRouter models off: no credits (402) · until a refresh finds credit", "bad")
    return _tile("Pool", f"{sum(view.tiers.values())}<small>deployments</small>", tiers)


def _budget_tile(view: StatusView) -> str:
    budget = view.budget
    until = budget["exhausted_until"]
    if until is not None and until > view.now:
        reset = time.strftime("%H:%M UTC", time.gmtime(until))
        return _tile("Free-tier budget", "spent", f"daily quota spent · resets {reset}", "bad")
    day = budget["day"]
    sub = f"{day:,} left today" if day is not None else "daily limit not known yet"
    tone = "good" if budget["available"] else "warn"
    return _tile("Free-tier budget", f'{budget["minute"]}<small>left this minute</small>', sub, tone)


def _refresh_tile(view: StatusView) -> str:
    refresh = view.refresh
    last = refresh.get("last_attempt") or {}
    counts = refresh.get("refreshes") or {}
    if not last:
        return _tile("Last refresh", "—", "none yet")
    ok = last.get("outcome") == "ok"
    kind = escape(str(last.get("kind", "")))
    detail = f'{kind} · {last.get("duration_s", 0):.2f} s · {_ago(view.now, last.get("at"))}'
    sub = f'{detail} · {counts.get("ok", 0)}&nbsp;ok / {counts.get("failed", 0)}&nbsp;failed · ' \
          f'catalogue&nbsp;{refresh.get("catalogue_models", 0)}'
    if not ok:
        sub = f'{escape(str(last.get("error", "")))} · {sub}'
    return _tile("Last refresh", "ok" if ok else "failed", sub, "good" if ok else "bad")


def _chart_panel(view: StatusView) -> str:
    width, height, left, bottom, top = 600, 150, 30, 16, 6
    minutes = view.minutes
    totals = [sum(m.attempts.values()) for m in minutes]
    peak = max(totals, default=0) or 1
    slot = (width - left) / max(1, len(minutes))
    scale = (height - bottom - top) / peak
    parts = [f'<line class="grid" x1="{left}" x2="{width}" y1="{top}" y2="{top}"/>',
             f'<text class="axis" x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>',
             f'<line class="grid" x1="{left}" x2="{width}" y1="{height - bottom}" y2="{height - bottom}"/>',
             f'<text class="axis" x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>']
    for index, minute in enumerate(minutes):
        x = left + index * slot + slot * 0.15
        y: float = height - bottom
        by_outcome: dict[str, int] = {}
        for (_, outcome), count in minute.attempts.items():
            by_outcome[outcome] = by_outcome.get(outcome, 0) + count
        for outcome, colour in OUTCOME_COLOURS:
            count = by_outcome.get(outcome, 0)
            if count:
                h = count * scale
                y -= h
                label = f"{time.strftime('%H:%M', time.gmtime(minute.minute * 60))} {outcome}: {count}"
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                             f'fill="{colour}"><title>{escape(label)}</title></rect>')
        if index % 5 == 0 or index == len(minutes) - 1:
            ago = len(minutes) - 1 - index
            parts.append(f'<text class="axis" x="{x + slot * 0.35:.1f}" y="{height - 3}" text-anchor="middle">'
                         f'{"now" if ago == 0 else f"-{ago}m"}</text>')
    seen = {o for m in minutes for (_, o) in m.attempts}
    legend = "".join(f'<span><i style="background:{c}"></i>{escape(o)}</span>'
                     for o, c in OUTCOME_COLOURS if o in seen) or '<span>no upstream traffic yet</span>'
    svg = (f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
           f'aria-label="Upstream attempts per minute by outcome">{"".join(parts)}</svg>')
    return (f'<section class="panel chart"><h2>Upstream attempts per minute <span class="meta">by outcome, '
            f'last {len(minutes)} min</span></h2><div class="body">{svg}<div class="legend">{legend}</div>'
            f'</div></section>')


def _mix_panel(view: StatusView) -> str:
    errors: dict[str, int] = {}
    by_model: dict[str, int] = {}
    total = 0
    for minute in view.minutes:
        for (model, outcome), count in minute.attempts.items():
            total += count
            if outcome != "ok":
                errors[outcome] = errors.get(outcome, 0) + count
                by_model[model] = by_model.get(model, 0) + count
    title = f'<h2>Upstream error mix <span class="meta">last {len(view.minutes)} min</span></h2>'
    share = _share(view)
    if not errors:
        message = "No upstream errors." if total else "No upstream traffic yet."
        return f'<section class="panel" id="error-mix">{title}<div class="empty">{message}</div>{share}</section>'
    rows = []
    for outcome, count in sorted(errors.items(), key=lambda kv: -kv[1]):
        part = count / total
        rows.append(f'<tr><td><i style="background:{_COLOUR.get(outcome, "#888")}"></i>{escape(outcome)}</td>'
                    f'<td class="num">{count:,}</td><td class="num">{part:.1%}</td><td class="bar"><div class="hbar">'
                    f'<span style="width:{part * 100:.1f}%;background:{_COLOUR.get(outcome, "#888")}"></span>'
                    f'</div></td></tr>')
    worst = sorted(by_model.items(), key=lambda kv: -kv[1])[:3]
    worst_line = " · ".join(f"<code>{escape(m)}</code> {n}" for m, n in worst)
    return (f'<section class="panel" id="error-mix">{title}<table class="mix"><thead><tr><th>outcome</th>'
            f'<th class="num">attempts</th><th class="num">of all</th><th></th></tr></thead><tbody>{"".join(rows)}'
            f'</tbody></table><div class="body meta">Most failing: {worst_line}</div>{share}</section>')


def _share(view: StatusView) -> str:
    """Answered attempts by tier: how much of the traffic the free tier carries."""
    total = sum(view.answered.values())
    if not total:
        return ""
    order = sorted(view.answered.items(), key=lambda kv: ("free", "paid", "static").index(kv[0])
                   if kv[0] in ("free", "paid", "static") else 9)
    bars = "".join(f'<span class="{escape(t)}" style="width:{n / total * 100:.1f}%" title="{escape(t)} {n}"></span>'
                   for t, n in order)
    text = " · ".join(f'<span class="tier {escape(t)}">{escape(t)}</span> {n / total:.0%} ({n:,})' for t, n in order)
    return (f'<div class="body" id="tier-share"><div class="meta">Answered by tier</div>'
            f'<div class="share free-paid">{bars}</div><div class="meta">{text}</div></div>')


def _alias(alias: AliasView) -> str:
    fallbacks = "".join(f'<span class="chip">→ {escape(f)}</span>' for f in alias.fallbacks)
    members = f'{len(alias.rows)} member{"" if len(alias.rows) == 1 else "s"}'
    head = (f'<h2><code>{escape(alias.name)}</code><span class="desc">{_inline_code(escape(alias.description))}</span>'
            f'{fallbacks}<span class="meta">{members}</span></h2>')
    if not alias.rows:
        return f'<section class="panel alias" data-alias="{escape(alias.name)}">{head}' \
               f'<div class="empty">No members right now.</div></section>'
    rows = "".join(_member(r, first_of_tier=i > 0 and r.order != alias.rows[i - 1].order)
                   for i, r in enumerate(alias.rows))
    return (f'<section class="panel alias" data-alias="{escape(alias.name)}">{head}<table><thead><tr>'
            '<th class="num">#</th><th>model</th><th>tier</th><th>health</th><th class="num">score</th>'
            '<th class="num">weight</th><th class="num">success</th><th>state</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></section>')


def _member(row: MemberRow, *, first_of_tier: bool) -> str:
    health = "<span class=dim>not read</span>" if row.health is None else _meter(row.health)
    rate = _pct(row.ok, row.total)
    success = '<span class="dim">—</span>' if not row.total else \
        f'<span class="{_rate_class(row.ok, row.total)}" title="{row.ok} of {row.total}">{rate}</span>'
    state = f'<span class="state bad">benched {row.cooling_s:.0f}s</span>' if row.cooling_s else \
        '<span class="state good">serving</span>'
    classes = " ".join(c for c, on in (("benched", row.cooling_s), ("tier-start", first_of_tier)) if on)
    return (f'<tr class="{classes}"><td class="num">{row.rank}</td>'
            f'<td class="model mono" title="{escape(row.model)}">{escape(row.model)}</td>'
            f'<td><span class="tier {escape(row.tier)}">{escape(row.tier)}</span></td><td>{health}</td>'
            f'<td class="num">{row.score:.3f}</td><td class="num">{row.weight}</td><td class="num">{success}</td>'
            f'<td>{state}</td></tr>')


def _gated_panel(view: StatusView) -> str:
    if not view.gated:
        return ""
    rows = "".join(f'<tr><td class="mono">{escape(m)}</td><td>{escape(r)}</td></tr>'
                   for m, r in sorted(view.gated.items()))
    return (f'<section class="panel"><h2>Gated by health <span class="meta">candidates kept out of the pool</span>'
            f'</h2><table><thead><tr><th>model</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table></section>')


def _meter(value: float) -> str:
    colour = "var(--ok)" if value >= 0.75 else ("var(--warn)" if value >= 0.4 else "var(--bad)")
    return (f'<span class="meter"><span style="width:{value * 100:.0f}%;background:{colour}"></span></span>'
            f'{value:.2f}')


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def _rate_class(part: int, whole: int) -> str:
    if not whole:
        return "dim"
    rate = part / whole
    return "good" if rate >= 0.95 else ("warn" if rate >= 0.8 else "bad")


def _ago(now: float, then: float | None) -> str:
    if then is None:
        return "never"
    seconds = max(0.0, now - then)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


@functools.cache
def _css() -> str:
    return resources.files("turnout.observability").joinpath("templates/status.css").read_text(encoding="utf-8")


@functools.cache
def _page() -> Template:
    return Template(resources.files("turnout.observability").joinpath("templates/status.html").read_text(encoding="utf-8"))


def _inline_code(html: str) -> str:
    """Descriptions are written as Markdown: `name` becomes <code>name</code> (after escaping)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
