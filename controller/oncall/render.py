"""The human view of a status snapshot (rich renderables), used by `huntazectl status` and `--watch`."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _n(value: Any, fmt: str = "{:g}") -> str:
    return "-" if value is None else fmt.format(value)


def render(data: dict[str, Any]) -> Group:
    parts: list[Any] = []
    head, *rest = data["diagnosis"]
    style = "green" if head["rule"] == "healthy" else "bold red"
    parts.append(Text(f"DIAGNOSIS: {head['cause']}", style=style))
    if head["rule"] != "healthy":
        parts.append(Text(f"  evidence: {head['evidence']}"))
        parts.append(Text(f"  next:     {head['next']}", style="bold"))
    for f in rest:
        label = "note" if f.get("kind") == "note" else "also"
        parts.append(Text(f"  {label}: {f['cause']}  ->  {f['next']}", style="dim" if label == "note" else ""))
    alarms = data.get("alarms", {})
    firing = alarms.get("in_alarm", [])
    table = Table("ALARM", "SINCE", "VALUE", "THRESHOLD", "RUNBOOK", title=f"Alarms: {len(firing)} of "
                  f"{alarms.get('total', '?')} in ALARM", title_justify="left")
    for a in firing:
        table.add_row(a["name"], a["since"], _n(a.get("value")), _n(a.get("threshold")), a.get("runbook") or "-")
    parts.append(table)
    queues = Table("QUEUE", "DEPTH", "IN FLIGHT", "DELAYED", "OLDEST (s)", "IN/min", "OUT/min", title="Queues",
                   title_justify="left")
    for q in data.get("queues", []):
        queues.add_row(q["name"], str(q["depth"]), str(q["in_flight"]), str(q["delayed"]),
                       _n(q.get("oldest_age_s"), "{:.0f}"), _n(q.get("in_per_min")), _n(q.get("out_per_min")))
    parts.append(queues)
    parts += _gate(data.get("gate", {}))
    s = data.get("scraper", {})
    parts.append(Text(f"Scraper: {s.get('running', '?')}/{s.get('desired', '?')} tasks; {_n(s.get('jobs_per_min'))} "
                      f"jobs/min; failure rate {_n(s.get('failure_rate_pct'))}%{_by_class(s)}; 429 "
                      f"{_n(s.get('count_429'))}, 5xx {_n(s.get('count_5xx'))}; dead-lettered by class "
                      f"{s.get('dead_lettered_by_class') or {}}"))
    for stop in s.get("recent_stops", [])[-3:]:
        parts.append(Text(f"  stopped {stop['task'][:12]}: {stop['reason']}"))
    c = data.get("controller", {})
    if c.get("present"):
        last = c.get("last_cycle") or {}
        parts.append(Text(f"Controller: last cycle {last.get('at', '-')}; resources {c.get('resources_by_state')}; "
                          f"lease holder {c.get('lease_holder') or '-'}"))
        for h in c.get("held") or []:
            parts.append(Text(f"  {h['resource']} {h.get('message') or 'held: rolled back'}", style="yellow"))
    else:
        parts.append(Text("Controller: no journal (huntazectl controller run writes one)"))
    for name, error in data.get("errors", {}).items():
        parts.append(Text(f"could not read {name}: {error}", style="yellow"))
    parts.append(Text(f"{data.get('at')} - {data.get('api_calls')} API calls, {data.get('refresh_ms')} ms",
                      style="dim"))
    return Group(*parts)


def _gate(gate: dict[str, Any]) -> list[Any]:
    """The gate: each configured limit (scoped ones by their busiest value), then deferrals, breaker, Redis."""
    limits = Table("LIMIT", "N / WINDOW", "IN WINDOW", "RESERVED AHEAD", "FREES IN (s)", "BUSIEST", "AT LIMIT",
                   title=f"Gate limits ({gate.get('algorithm', 'window')})", title_justify="left")
    for lim in gate.get("limits", []):
        scoped = lim["scope"] != "global"
        limits.add_row(lim["scope"], f"{lim['limit']} / {lim['window_s']:g}s", str(lim["admitted_in_window"]),
                       str(lim.get("reserved_ahead", 0)), _n(lim.get("frees_in_s")),
                       (lim.get("busiest") or "-") if scoped else "",
                       (f"{lim.get('values_at_limit', 0)} of {lim.get('values_active', 0)}"
                        + (" (partial scan)" if lim.get("partial") else "")) if scoped else "")
    breaker = gate.get("breaker", {})
    closes = ""
    if breaker.get("closes_in_s") is not None:
        closes = f", closes in {breaker['closes_in_s']:g}s ({breaker.get('closes_at')})"
    if breaker.get("reason"):
        closes += f": {breaker['reason']}"
    redis = "reachable" if gate.get("redis_reachable") else f"UNREACHABLE ({gate.get('redis_error')})"
    memory = gate.get("limiter_memory", {})
    order = gate.get("order_lines") or {}
    longest = ", ".join(f"{x['creator']} {x['waiting']}" for x in order.get("longest", []))
    in_lines = (f", {order.get('jobs_waiting', 0)} in {order.get('creators_waiting', 0)} creator line(s)"
                + (f" ({longest})" if longest else "") + (" (partial scan)" if order.get("partial") else ""))
    lines = [Text(f"Gate: deferred waiting {gate.get('deferred_waiting', 0)} delayed in ingress{in_lines}; "
                  f"breaker {breaker.get('state')}"
                  f"{closes}; Redis {redis}; Lambda errors {_n(gate.get('lambda', {}).get('errors'))}")]
    if memory.get("state") not in (None, "ok"):
        lines.append(Text(f"  limiter memory {memory['state']}: {memory.get('note')}", style="yellow"))
    return ([limits] if gate.get("limits") else [Text(f"Gate limits: {gate.get('limits_error') or 'no data'}")]) + lines


def _by_class(scraper: dict[str, Any]) -> str:
    rates = scraper.get("failure_rate_by_class_pct") or {}
    return f" ({', '.join(f'{kind} {pct:g}%' for kind, pct in rates.items())})" if rates else ""
