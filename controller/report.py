"""Render reconcile results for people (rich text, markdown) and machines (JSON).

Called by the `apply`, `diff`, `drift`, `describe` and `delete` commands; it only formats the values that
`controller.reconciler` and `controller.diff` return. Values are shown as compact JSON so that ``300`` and
``"300"`` never look alike, always whole (a long document, such as a policy, as a unified diff), and always
through `controller.redact` so a password inside a URL never reaches the screen or a file. One order
everywhere: desired (the spec) first, then live (AWS). Secret values never reach here at all: the Secret kind
reads metadata only.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.text import Text

from controller.diff import ABSENT, FieldDiff, Verdict
from controller.kinds.base import LiveResource
from controller.reconciler import Action, ResourceResult
from controller.redact import mask_text, redact

_STYLE = {
    Action.CREATED: "green", Action.UPDATED: "yellow", Action.REPLACED: "magenta", Action.UNCHANGED: "dim",
    Action.PRUNED: "red", Action.DELETED: "red", Action.RETAINED: "cyan", Action.ABSENT: "dim",
    Action.REFUSED: "bold red", Action.FAILED: "bold red", Action.SKIPPED: "red",
}
# Longer structured values (policies, container definitions) are shown as a unified diff of their JSON.
_INLINE_MAX = 100
EXIT_IN_SYNC, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
PRUNE_HINT = "apply --prune deletes them"


def show(value: Any) -> str:
    """One value, whole, as compact JSON with credentials masked."""
    if value is ABSENT:
        return "<absent>"
    return json.dumps(redact(value), sort_keys=True, default=str)


def _pretty(value: Any) -> list[str]:
    if value is ABSENT:
        return ["<absent>"]
    return json.dumps(redact(value), sort_keys=True, indent=2, default=str).splitlines()


def field_lines(field: FieldDiff, indent: str = "    ") -> list[str]:
    """``path: desired X, live Y (verdict)``; a long mapping or list on both sides as a unified diff."""
    why = f"{field.verdict}{': ' + field.reason if field.reason else ''}"
    desired, live = show(field.desired), show(field.live)
    if desired == live and field.is_drift:
        why += ": the masked credentials differ"
    structured = isinstance(field.desired, dict | list) or isinstance(field.live, dict | list)
    if structured and len(desired) + len(live) > 2 * _INLINE_MAX and field.live is not ABSENT:
        lines = [f"{indent}{field.path}: ({why})"]
        diff = difflib.unified_diff(_pretty(field.desired), _pretty(field.live), "desired (spec)", "live (AWS)",
                                    lineterm="", n=3)
        return lines + [f"{indent}  {line}" for line in diff]
    if field.live is ABSENT and field.verdict is Verdict.CHANGED:
        return [f"{indent}{field.path}: desired {desired} ({why or 'not set in AWS'})"]
    return [f"{indent}{field.path}: desired {desired}, live {live} ({why})"]


def render_results(results: Iterable[ResourceResult], console: Console, *, dry_run: bool = False) -> None:
    """One line per resource (action, fields changed, message), then a summary line.

    A dry run also shows each change's values (desired, live), as ``diff`` does.
    """
    results = list(results)
    width = max((len(str(r.key)) for r in results), default=10)
    for result in results:
        line = Text(f"{result.key!s:<{width}}  ")
        label = str(result.action) + (" (dry run)" if dry_run and result.action not in _QUIET else "")
        line.append(label, style=_STYLE.get(result.action, ""))
        if result.changed and result.action in (Action.UPDATED, Action.REPLACED):
            line.append(f"  [{', '.join(result.changed)}]")
        if result.message:
            line.append(f"  {mask_text(result.message)}", style="dim" if not result.failed else "red")
        console.print(line)
        if dry_run and result.delta is not None and result.action in _CHANGES:
            for field in shown_fields(result, verbose=False):
                console.print(Text("\n".join(field_lines(field)), style=_field_style(field)))
    console.print(Text(summary(results) + (" (dry run: nothing was written)" if dry_run else "")))


_QUIET = frozenset({Action.UNCHANGED, Action.ABSENT, Action.FAILED, Action.REFUSED, Action.SKIPPED})
_CHANGES = frozenset({Action.CREATED, Action.UPDATED, Action.REPLACED})


def summary(results: Iterable[ResourceResult]) -> str:
    counts = Counter(str(r.action) for r in results)
    order = [str(a) for a in Action]
    return ", ".join(f"{counts[a]} {a}" for a in order if counts[a]) or "nothing to do"


# --- diff -------------------------------------------------------------------------------------------------


def plan_outcome(
    results: Iterable[ResourceResult],
    orphans: Iterable[LiveResource] = (),
    listing_errors: dict[str, str] | None = None,
) -> tuple[str, int]:
    """The summary line of a plan and the exit code, from the same counts so that they can never disagree.

    Exit 0: in sync; 1: something to create, update or replace, or owned resources in no spec; 2: a resource
    could not be compared (an error, a refusal such as an unadopted resource, or a kind that could not be
    listed): the plan is incomplete.
    """
    results = list(results)
    counts = Counter(r.action for r in results)
    failed = sum(1 for r in results if r.failed)
    orphan_count = len(list(orphans))
    parts = [f"{counts[a]} to {verb}" for a, verb in
             ((Action.CREATED, "create"), (Action.UPDATED, "update"), (Action.REPLACED, "replace")) if counts[a]]
    if orphan_count:
        parts.append(f"{orphan_count} owned resource{'s' if orphan_count != 1 else ''} in no spec ({PRUNE_HINT})")
    held = sum(1 for r in results if r.delta is not None and r.delta.held and not r.failed)
    held_note = f" ({held} held: rolled back by a deployment engine or `rollout undo`, not drift)" if held else ""
    errors = failed + len(listing_errors or {})
    if errors:
        what = f"{errors} error{'s' if errors != 1 else ''}: the plan is incomplete"
        return (f"{what}; " + ", ".join(parts) if parts else what) + held_note, EXIT_ERROR
    if parts:
        return "drift: " + ", ".join(parts) + held_note, EXIT_DRIFT
    if held:
        return f"no drift{held_note}", EXIT_IN_SYNC
    return "no drift: the live state matches the specs", EXIT_IN_SYNC


def render_diff(
    results: Iterable[ResourceResult],
    console: Console,
    *,
    verbose: bool = False,
    orphans: Iterable[LiveResource] = (),
    listing_errors: dict[str, str] | None = None,
) -> int:
    """Per resource with drift: a ``+``/``~``/``-/+`` header and ``field: desired X, live Y (verdict)`` lines,
    then owned resources in no spec and one summary line. Returns the exit code that goes with the summary.

    Ignored and unobservable fields (never drift) are shown only with ``verbose``.
    """
    results, orphans = list(results), list(orphans)
    for result in results:
        if result.failed:
            console.print(Text(f"! {result.key}: {mask_text(result.message)}", style="bold red"))
            continue
        fields = shown_fields(result, verbose=verbose) if result.delta is not None else []
        if not fields:
            continue
        sign = {Action.CREATED: "+", Action.REPLACED: "-/+"}.get(result.action, "~")
        note = {Action.CREATED: " (does not exist)", Action.REPLACED: " (must be replaced)"}.get(result.action, "")
        if result.action is Action.UNCHANGED:
            sign, note = " ", " (held: rolled back, not drift)" if result.delta and result.delta.held else " (in sync)"
        console.print(Text(f"{sign} {result.key}{note}", style="bold"))
        for field in fields:
            console.print(Text("\n".join(field_lines(field)), style=_field_style(field)))
        if result.message and result.action is Action.REPLACED:
            console.print(Text(f"    {result.message}", style="dim"))
    for orphan in orphans:
        console.print(Text(f"- {orphan.key} (owned by this stack, in no spec: {PRUNE_HINT})", style="bold red"))
    for kind, error in (listing_errors or {}).items():
        console.print(Text(f"! {kind}: could not list owned resources, orphans unknown ({mask_text(error)})",
                           style="bold red"))
    text, code = plan_outcome(results, orphans, listing_errors)
    console.print(Text(text))
    return code


def shown_fields(result: ResourceResult, *, verbose: bool) -> list[FieldDiff]:
    """The fields worth showing: a new resource's every field; else drift, plus never-drift ones if verbose."""
    if result.delta is None:
        return []
    if result.action is Action.CREATED:
        return [f for f in result.delta.fields if f.desired is not ABSENT and f.desired is not None]
    if verbose:
        return [f for f in result.delta.fields if f.verdict is not Verdict.EQUAL]
    return [f for f in result.delta.fields if f.is_drift or f.verdict is Verdict.HELD]


def _field_style(field: FieldDiff) -> str:
    return {"changed": "yellow", "requires_replacement": "magenta", "held": "cyan"}.get(str(field.verdict), "dim")


# --- drift report -----------------------------------------------------------------------------------------


def drift_data(
    results: Iterable[ResourceResult],
    orphans: Iterable[LiveResource],
    listing_errors: dict[str, str] | None = None,
    *,
    verbose: bool = False,
) -> dict[str, Any]:
    """The drift report as one JSON-ready value (also the source of the text and markdown forms).

    Without ``verbose`` only drifted fields are listed; with it, ignored and unobservable ones too (with why).
    """
    results, orphans = list(results), list(orphans)
    resources = []
    for result in results:
        entry: dict[str, Any] = {"resource": str(result.key), "status": _status(result)}
        if result.failed:
            entry["error"] = mask_text(result.message)
        if result.delta is not None and result.action is not Action.CREATED:
            entry["fields"] = [f.as_dict() for f in shown_fields(result, verbose=verbose)]
        resources.append(entry)
    extra = [{"resource": str(o.key), "physicalId": mask_text(o.physical_id)} for o in orphans]
    drifted = [r for r in resources if r["status"] not in ("in-sync", "error", "held: rolled back")]
    errors = {k: mask_text(v) for k, v in (listing_errors or {}).items()}
    text, code = plan_outcome(results, orphans, errors)
    return {
        "summary": {"resources": len(resources), "drifted": len(drifted), "notInSpec": len(extra),
                    "errors": sum(1 for r in resources if r["status"] == "error") + len(errors),
                    "text": text, "exitCode": code},
        "resources": resources,
        "ownedNotInSpec": extra,
        "listingErrors": errors,
    }


def _status(result: ResourceResult) -> str:
    if result.failed:
        return "error"
    if result.action is Action.CREATED:
        return "missing"
    if result.action is Action.REPLACED:
        return "drifted"
    if result.delta is not None and result.delta.has_drift:
        return "drifted"
    if result.delta is not None and result.delta.held:
        return "held: rolled back"
    return "in-sync"


def drift_exit_code(data: dict[str, Any]) -> int:
    return int(data["summary"]["exitCode"])


def drift_has_drift(data: dict[str, Any]) -> bool:
    return drift_exit_code(data) != EXIT_IN_SYNC


def drift_text(data: dict[str, Any]) -> str:
    lines = [_drift_headline(data)]
    for entry in data["resources"]:
        if entry["status"] == "in-sync" and not entry.get("fields"):
            continue
        lines.append(f"{entry['resource']}: {entry['status']}" + (f" ({entry['error']})" if "error" in entry else ""))
        for f in entry.get("fields", []):
            lines.extend(field_lines(FieldDiff.from_dict(f)))
    for orphan in data["ownedNotInSpec"]:
        lines.append(f"{orphan['resource']}: owned by this stack but in no spec ({orphan['physicalId']}; "
                     f"{PRUNE_HINT})")
    for kind, error in data["listingErrors"].items():
        lines.append(f"{kind}: could not list owned resources, orphans unknown ({error})")
    lines.append(data["summary"]["text"])
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
            field = FieldDiff.from_dict(f)
            verdict = f["verdict"] + (f": {f['reason']}" if f["reason"] else "")
            lines.append(f"| {entry['resource']} | `{f['path']}` | `{_md(show(field.desired))}` | "
                         f"`{_md(show(field.live))}` | {_md(verdict)} |")
    if data["ownedNotInSpec"]:
        lines += ["", f"## Owned by this stack but in no spec ({PRUNE_HINT})", ""]
        lines += [f"- {o['resource']} (`{o['physicalId']}`)" for o in data["ownedNotInSpec"]]
    if data["listingErrors"]:
        lines += ["", "## Kinds whose owned resources could not be listed", ""]
        lines += [f"- {kind}: {_md(error)}" for kind, error in data["listingErrors"].items()]
    lines += ["", data["summary"]["text"]]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _drift_headline(data: dict[str, Any]) -> str:
    s = data["summary"]
    return f"{s['drifted']} of {s['resources']} resources drifted; {s['notInSpec']} owned resources in no spec"


def results_json(results: Iterable[ResourceResult], *, verbose: bool = True) -> list[dict[str, Any]]:
    return [
        {"resource": str(r.key), "action": str(r.action), "changed": r.changed, "message": mask_text(r.message),
         "dryRun": r.dry_run, "seconds": round(r.seconds, 3),
         "delta": _delta_json(r, verbose=verbose)}
        for r in results
    ]


def _delta_json(result: ResourceResult, *, verbose: bool) -> list[dict[str, Any]] | None:
    if result.delta is None:
        return None
    return [f.as_dict() for f in shown_fields(result, verbose=verbose)]
