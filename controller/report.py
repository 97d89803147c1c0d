"""Render reconcile results for people (rich text, markdown) and machines (JSON).

Called by the `apply`, `diff`, `drift` and `delete` commands; it only formats the values that
`controller.reconciler` and `controller.diff` return. Values are shown as compact JSON so that ``300`` and
``"300"`` never look alike. Secret values never reach here: the Secret kind reads metadata only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.text import Text

from controller.diff import ABSENT, Delta, FieldDiff, Verdict
from controller.kinds.base import LiveResource
from controller.reconciler import Action, ResourceResult

_STYLE = {
    Action.CREATED: "green", Action.UPDATED: "yellow", Action.REPLACED: "magenta", Action.UNCHANGED: "dim",
    Action.PRUNED: "red", Action.DELETED: "red", Action.RETAINED: "cyan", Action.ABSENT: "dim",
    Action.REFUSED: "bold red", Action.FAILED: "bold red", Action.SKIPPED: "red",
}
_MAX_VALUE = 120


def show(value: Any) -> str:
    if value is ABSENT:
        return "<absent>"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def render_results(results: Iterable[ResourceResult], console: Console, *, dry_run: bool = False) -> None:
    """One line per resource (action, fields changed, message), then a summary line."""
    results = list(results)
    width = max((len(str(r.key)) for r in results), default=10)
    for result in results:
        line = Text(f"{result.key!s:<{width}}  ")
        label = str(result.action) + (" (dry run)" if dry_run and result.action not in _QUIET else "")
        line.append(label, style=_STYLE.get(result.action, ""))
        if result.changed and result.action in (Action.UPDATED, Action.REPLACED):
            line.append(f"  [{', '.join(result.changed)}]")
        if result.message:
            line.append(f"  {result.message}", style="dim" if not result.failed else "red")
        console.print(line)
    console.print(Text(summary(results) + (" (dry run: nothing was written)" if dry_run else "")))


_QUIET = frozenset({Action.UNCHANGED, Action.ABSENT, Action.FAILED, Action.REFUSED, Action.SKIPPED})


def summary(results: Iterable[ResourceResult]) -> str:
    counts = Counter(str(r.action) for r in results)
    order = [str(a) for a in Action]
    return ", ".join(f"{counts[a]} {a}" for a in order if counts[a]) or "nothing to do"


def render_diff(results: Iterable[ResourceResult], console: Console) -> None:
    """Per resource with drift: a ``~`` header, then ``field: live → desired (verdict)`` lines."""
    any_drift = False
    results = list(results)
    if any(r.delta is not None and r.delta.has_drift for r in results):
        console.print(Text("field: live -> desired  (verdict)", style="dim"))
    for result in results:
        if result.failed:
            console.print(Text(f"! {result.key}: {result.message}", style="bold red"))
            continue
        if result.delta is None or not _interesting(result):
            continue
        any_drift = any_drift or result.delta.has_drift
        sign = "+" if result.action is Action.CREATED else "~"
        header = f"{sign} {result.key}" + (" (does not exist)" if sign == "+" else "")
        console.print(Text(header, style="bold"))
        for field in _shown_fields(result):
            console.print(_field_line(field))
    if not any_drift:
        console.print(Text("no drift: the live state matches the specs"))


def _interesting(result: ResourceResult) -> bool:
    assert result.delta is not None
    return bool(_shown_fields(result))


def _shown_fields(result: ResourceResult) -> list[FieldDiff]:
    assert result.delta is not None
    if result.action is Action.CREATED:
        return result.delta.fields
    return [f for f in result.delta.fields if f.verdict is not Verdict.EQUAL]


def _field_line(field: FieldDiff) -> Text:
    style = {"changed": "yellow", "requires_replacement": "magenta"}.get(str(field.verdict), "dim")
    if field.live is ABSENT and field.verdict is Verdict.CHANGED:
        text = f"    {field.path}: {show(field.desired)}"
    else:
        text = f"    {field.path}: {show(field.live)} -> {show(field.desired)}"
    line = Text(text)
    line.append(f"  ({field.verdict}{': ' + field.reason if field.reason else ''})", style=style)
    return line


# --- drift report -----------------------------------------------------------------------------------------


def drift_data(
    results: Iterable[ResourceResult], orphans: Iterable[LiveResource], listing_errors: dict[str, str] | None = None
) -> dict[str, Any]:
    """The drift report as one JSON-ready value (also the source of the text and markdown forms)."""
    resources = []
    for result in results:
        entry: dict[str, Any] = {"resource": str(result.key), "status": _status(result)}
        if result.failed:
            entry["error"] = result.message
        if result.delta is not None and result.action is not Action.CREATED:
            entry["fields"] = [f.as_dict() for f in result.delta.fields if f.verdict is not Verdict.EQUAL]
        resources.append(entry)
    extra = [{"resource": str(o.key), "physicalId": o.physical_id} for o in orphans]
    drifted = [r for r in resources if r["status"] != "in-sync"]
    return {
        "summary": {"resources": len(resources), "drifted": len(drifted), "notInSpec": len(extra)},
        "resources": resources,
        "ownedNotInSpec": extra,
        "listingErrors": dict(listing_errors or {}),
    }


def _status(result: ResourceResult) -> str:
    if result.failed:
        return "error"
    if result.action is Action.CREATED:
        return "missing"
    if result.delta is not None and result.delta.has_drift:
        return "drifted"
    return "in-sync"


def drift_has_drift(data: dict[str, Any]) -> bool:
    summary_ = data["summary"]
    return bool(summary_["drifted"] or summary_["notInSpec"])


def drift_text(data: dict[str, Any]) -> str:
    lines = [_drift_headline(data)]
    for entry in data["resources"]:
        if entry["status"] == "in-sync" and not entry.get("fields"):
            continue
        lines.append(f"{entry['resource']}: {entry['status']}" + (f" ({entry['error']})" if "error" in entry else ""))
        for f in entry.get("fields", []):
            why = f": {f['reason']}" if f["reason"] else ""
            lines.append(f"    {f['path']}: desired {show(f['desired'])}, live {show(f['live'])} ({f['verdict']}{why})")
    for orphan in data["ownedNotInSpec"]:
        lines.append(f"{orphan['resource']}: owned by this stack but in no spec ({orphan['physicalId']})")
    for kind, error in data["listingErrors"].items():
        lines.append(f"{kind}: could not list owned resources, orphans unknown ({error})")
    return "\n".join(lines)


def drift_markdown(data: dict[str, Any]) -> str:
    lines = ["# Drift report", "", _drift_headline(data), "",
             "| Resource | Field | Desired | Live | Verdict |", "|---|---|---|---|---|"]
    for entry in data["resources"]:
        if entry["status"] == "error":
            lines.append(f"| {entry['resource']} | | | | error: {_md(entry['error'])} |")
        elif entry["status"] == "missing":
            lines.append(f"| {entry['resource']} | (all) | | | missing in AWS |")
        for f in entry.get("fields", []):
            verdict = f["verdict"] + (f": {f['reason']}" if f["reason"] else "")
            lines.append(f"| {entry['resource']} | `{f['path']}` | `{_md(show(f['desired']))}` | "
                         f"`{_md(show(f['live']))}` | {_md(verdict)} |")
    if data["ownedNotInSpec"]:
        lines += ["", "## Owned by this stack but in no spec", ""]
        lines += [f"- {o['resource']} (`{o['physicalId']}`)" for o in data["ownedNotInSpec"]]
    if data["listingErrors"]:
        lines += ["", "## Kinds whose owned resources could not be listed", ""]
        lines += [f"- {kind}: {_md(error)}" for kind, error in data["listingErrors"].items()]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _drift_headline(data: dict[str, Any]) -> str:
    s = data["summary"]
    return f"{s['drifted']} of {s['resources']} resources drifted; {s['notInSpec']} owned resources in no spec"


def results_json(results: Iterable[ResourceResult]) -> list[dict[str, Any]]:
    return [
        {"resource": str(r.key), "action": str(r.action), "changed": r.changed, "message": r.message,
         "dryRun": r.dry_run, "seconds": round(r.seconds, 3),
         "delta": _delta_json(r.delta)}
        for r in results
    ]


def _delta_json(delta: Delta | None) -> list[dict[str, Any]] | None:
    if delta is None:
        return None
    return [f.as_dict() for f in delta.fields if f.verdict is not Verdict.EQUAL]
