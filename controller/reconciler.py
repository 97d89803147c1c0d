"""The one generic reconcile loop (ACK's runtime, in Python): read, diff, then create, update, replace or skip.

Called by the `apply`, `diff`, `drift` and `delete` commands. It never imports boto3 or a kind: it reaches
kinds through `controller.kinds.registry` and AWS only through the handlers' verbs, each wrapped in
`controller.retrying.aws_retry` (throttling, eventual consistency). After a write it re-reads until the
resource shows no drift (bounded), so a slow-to-converge API never turns into spurious drift on the next run.

Resources in one dependency tier are reconciled concurrently by a bounded thread pool; a resource whose
dependency failed is skipped, never half-applied. Every outcome is data (`ResourceResult`), not an exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controller.claims import rules_by_key
from controller.diff import Delta, compute_delta
from controller.errors import HuntazeCtlError, ReplacementRefused
from controller.kinds import registry
from controller.kinds.base import Context, FieldRule, KindHandler, LiveResource
from controller.model import ANNOTATION_ADOPT, Manifest, Metadata, ResourceKey, Source
from controller.ownership import is_retained
from controller.retrying import call, wait_for
from controller.specs import LoadedStack

# Dependents before what they depend on, for prune (no references are known for resources in no spec).
DELETE_ORDER = (
    "EventSourceMapping", "ScalingPolicy", "Alarm", "Dashboard", "Service", "TaskDefinition", "Function",
    "Cluster", "Queue", "Topic", "Bucket", "LogGroup", "Secret", "Role",
)


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REPLACED = "replaced"
    PRUNED = "pruned"
    DELETED = "deleted"
    RETAINED = "retained"
    ABSENT = "absent"
    REFUSED = "refused"
    FAILED = "failed"
    SKIPPED = "skipped"


FAILURES = frozenset({Action.REFUSED, Action.FAILED, Action.SKIPPED})


@dataclass
class ResourceResult:
    key: ResourceKey
    action: Action
    delta: Delta | None = None
    message: str = ""
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.action in FAILURES

    @property
    def changed(self) -> list[str]:
        if self.delta is None:
            return []
        return list(dict.fromkeys([*self.delta.replaced_fields, *self.delta.changed_fields]))


@dataclass(frozen=True)
class ApplyOptions:
    dry_run: bool = False
    prune: bool = False
    allow_replace: frozenset[ResourceKey] = frozenset()
    concurrency: int = 4
    settle_timeout_s: float = 20.0
    # diff/drift: report a needed replacement as drift (a verdict) instead of refusing it (an error)
    report_only: bool = False


class _Pending(dict[str, str]):
    """Outputs of a resource a dry run would create: any output name reads as "known after apply"."""

    def __init__(self, key: ResourceKey) -> None:
        super().__init__()
        self.key = key

    def __missing__(self, name: str) -> str:
        return f"(known after apply: {self.key}.{name})"


class Reconciler:
    def __init__(self, ctx: Context, handler_for: Callable[[str], KindHandler] = registry.handler) -> None:
        self.ctx = ctx
        self.handler_for = handler_for
        self._lock = threading.Lock()
        # Kinds whose owned resources could not be listed by the last `orphans()` call, with the reason.
        self.listing_errors: dict[str, str] = {}
        # Field rules of the stack being applied, per manifest (static rules plus other resources' claims).
        self._rules: dict[ResourceKey, Mapping[str, FieldRule]] = {}

    def rules_for(self, manifest: Manifest) -> Mapping[str, FieldRule]:
        """The field rules the diff uses for ``manifest`` in the stack last applied or planned."""
        found = self._rules.get(manifest.key)
        return found if found is not None else self.handler_for(manifest.kind).field_rules(manifest)

    # --- apply ---------------------------------------------------------------------------------------------

    def apply(self, stack: LoadedStack, options: ApplyOptions) -> list[ResourceResult]:
        self._rules = rules_by_key(stack.manifests, self.handler_for)
        results = self._by_tier(stack, lambda m: self._apply_one(m, options), options.concurrency)
        if options.prune and not any(r.failed for r in results):
            results.extend(self.prune(stack, dry_run=options.dry_run))
        return results

    def plan(self, stack: LoadedStack) -> list[ResourceResult]:
        """What apply would do, without writing (``diff`` and ``drift``)."""
        return self.apply(stack, ApplyOptions(dry_run=True, report_only=True))

    def _by_tier(
        self, stack: LoadedStack, work: Callable[[Manifest], ResourceResult], concurrency: int
    ) -> list[ResourceResult]:
        done: dict[ResourceKey, ResourceResult] = {}
        widest = max((len(t) for t in stack.tiers), default=1)
        workers = max(1, min(concurrency, widest))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile") as pool:
            for tier in stack.tiers:
                jobs = {}
                for manifest in tier:
                    blocked = [d for d in stack.dependencies.get(manifest.key, []) if done[d].failed]
                    if blocked:
                        why = f"not applied: depends on {', '.join(str(b) for b in blocked)} which failed"
                        done[manifest.key] = ResourceResult(manifest.key, Action.SKIPPED, message=why)
                    else:
                        jobs[manifest.key] = pool.submit(self._timed, work, manifest)
                for key, future in jobs.items():
                    done[key] = future.result()
        return [done[m.key] for m in stack.manifests]

    def _timed(self, work: Callable[[Manifest], ResourceResult], manifest: Manifest) -> ResourceResult:
        started = time.perf_counter()
        try:
            result = work(manifest)
        except ReplacementRefused as exc:
            result = ResourceResult(manifest.key, Action.REFUSED, message=str(exc))
        except HuntazeCtlError as exc:
            result = ResourceResult(manifest.key, Action.FAILED, message=str(exc))
        except Exception as exc:  # AWS refused: the run goes on for independent resources
            result = ResourceResult(manifest.key, Action.FAILED, message=_describe_error(exc))
        result.seconds = time.perf_counter() - started
        return result

    def _apply_one(self, manifest: Manifest, options: ApplyOptions) -> ResourceResult:
        handler = self.handler_for(manifest.kind)
        desired = handler.desired(manifest, self.ctx)
        live = call(handler.read, manifest, self.ctx)
        if live is None:
            return self._create(handler, manifest, desired, options)
        if not live.owned and not manifest.adopt:
            raise ReplacementRefused(
                f"{manifest.key} exists in AWS but is not owned by stack {self.ctx.stack}: add the annotation "
                f'{ANNOTATION_ADOPT}: "true" to take it over, or give it another name'
            )
        delta = compute_delta(manifest.key, desired, live.fields, self.rules_for(manifest))
        if delta.needs_replacement:
            return self._replace(handler, manifest, desired, live=live, delta=delta, options=options)
        if not delta.changed_fields:
            self._resolve(manifest.key, live.outputs)
            return ResourceResult(manifest.key, Action.UNCHANGED, delta, dry_run=options.dry_run)
        if options.dry_run:
            self._resolve(manifest.key, live.outputs)
            return ResourceResult(manifest.key, Action.UPDATED, delta, dry_run=True)
        updated = call(handler.update, manifest, live, desired, delta.changed_fields, self.ctx)
        return self._settled(handler, manifest, updated, action=Action.UPDATED, delta=delta, options=options)

    def _create(
        self, handler: KindHandler, manifest: Manifest, desired: dict[str, Any], options: ApplyOptions
    ) -> ResourceResult:
        delta = compute_delta(manifest.key, desired, None, self.rules_for(manifest))
        if options.dry_run:
            self._resolve(manifest.key, _Pending(manifest.key))
            return ResourceResult(manifest.key, Action.CREATED, delta, dry_run=True)
        created = call(handler.create, manifest, desired, self.ctx)
        return self._settled(handler, manifest, created, action=Action.CREATED, delta=delta, options=options)

    def _replace(
        self,
        handler: KindHandler,
        manifest: Manifest,
        desired: dict[str, Any],
        *,
        live: LiveResource,
        delta: Delta,
        options: ApplyOptions,
    ) -> ResourceResult:
        fields = ", ".join(delta.replaced_fields)
        if options.report_only:
            self._resolve(manifest.key, _Pending(manifest.key))
            hint = f"apply refuses this unless run with --allow-replace {manifest.key}"
            return ResourceResult(manifest.key, Action.REPLACED, delta, message=hint, dry_run=True)
        if manifest.key not in options.allow_replace:
            impact = call(handler.replacement_impact, live, self.ctx)
            raise ReplacementRefused(
                f"{fields} cannot change in place. Replacing it would lose: {impact}. "
                f"Rerun with --allow-replace {manifest.key} to delete and recreate it"
            )
        if options.dry_run:
            self._resolve(manifest.key, _Pending(manifest.key))
            return ResourceResult(manifest.key, Action.REPLACED, delta, dry_run=True)
        call(handler.delete, live, self.ctx)
        created = call(handler.create, manifest, desired, self.ctx)
        return self._settled(handler, manifest, created, action=Action.REPLACED, delta=delta, options=options)

    def _settled(
        self,
        handler: KindHandler,
        manifest: Manifest,
        written: LiveResource,
        *,
        action: Action,
        delta: Delta,
        options: ApplyOptions,
    ) -> ResourceResult:
        """Re-read until the resource shows no drift (AWS is eventually consistent), bounded in time."""
        desired = handler.desired(manifest, self.ctx)
        rules = self.rules_for(manifest)

        def converged() -> LiveResource | None:
            live = call(handler.read, manifest, self.ctx)
            if live is None or compute_delta(manifest.key, desired, live.fields, rules).has_drift:
                return None
            return live

        message = ""
        try:
            live = wait_for(converged, f"{manifest.key} to converge", options.settle_timeout_s, str(manifest.key))
        except HuntazeCtlError:
            live = written
            message = "written, but the live state did not match the spec yet: the next diff may show drift"
        self._resolve(manifest.key, {**written.outputs, **live.outputs})
        return ResourceResult(manifest.key, action, delta, message=message)

    def _resolve(self, key: ResourceKey, outputs: dict[str, str]) -> None:
        with self._lock:
            self.ctx.resolved[key] = outputs

    # --- prune, delete, orphans -------------------------------------------------------------------------------

    def orphans(self, stack: LoadedStack, kinds: Iterable[str] | None = None) -> list[LiveResource]:
        """Live resources owned by this stack whose ``Kind/name`` is in no spec, dependents first."""
        wanted = stack.keys
        found: list[LiveResource] = []
        self.listing_errors = {}
        for kind in _delete_order(kinds if kinds is not None else registry.known_kinds()):
            try:
                listed = call(self.handler_for(kind).list_owned, self.ctx)
            except Exception as exc:  # one kind's API failing must not hide the others' orphans
                self.listing_errors[kind] = _describe_error(exc)
                continue
            found.extend(live for live in listed if live.key not in wanted)
        return found

    def prune(self, stack: LoadedStack, dry_run: bool = False) -> list[ResourceResult]:
        results = []
        for live in self.orphans(stack):
            results.append(self._timed(self._pruner(live, dry_run), _stub(live)))
        for kind, error in self.listing_errors.items():
            key = ResourceKey(kind=kind, name="*")
            results.append(ResourceResult(key, Action.FAILED, message=f"cannot list owned {kind}: {error}"))
        return results

    def _pruner(self, live: LiveResource, dry_run: bool) -> Callable[[Manifest], ResourceResult]:
        def prune_one(_: Manifest) -> ResourceResult:
            return self._remove(live, Action.PRUNED, dry_run)

        return prune_one

    def delete(self, stack: LoadedStack, dry_run: bool = False) -> list[ResourceResult]:
        """Delete every resource of the stack (dependents first), owned ones only, honouring retain."""
        results = []
        for manifest in reversed(stack.manifests):
            results.append(self._timed(lambda m: self._delete_one(m, dry_run), manifest))
        return results

    def _delete_one(self, manifest: Manifest, dry_run: bool) -> ResourceResult:
        handler = self.handler_for(manifest.kind)
        live = call(handler.read, manifest, self.ctx)
        if live is None:
            return ResourceResult(manifest.key, Action.ABSENT, message="does not exist", dry_run=dry_run)
        if not live.owned:
            return ResourceResult(
                manifest.key, Action.REFUSED, dry_run=dry_run,
                message=f"not owned by stack {self.ctx.stack}: left alone (delete it by hand if you mean it)",
            )
        if manifest.retained:
            return ResourceResult(manifest.key, Action.RETAINED, message="deletion-policy: retain", dry_run=dry_run)
        return self._remove(live, Action.DELETED, dry_run)

    def _remove(self, live: LiveResource, action: Action, dry_run: bool) -> ResourceResult:
        if is_retained(live.tags):
            return ResourceResult(live.key, Action.RETAINED, message="deletion-policy: retain", dry_run=dry_run)
        if not dry_run:
            call(self.handler_for(live.key.kind).delete, live, self.ctx)
        return ResourceResult(live.key, action, dry_run=dry_run)


def _delete_order(kinds: Iterable[str]) -> list[str]:
    rank = {kind: i for i, kind in enumerate(DELETE_ORDER)}
    return sorted(kinds, key=lambda k: rank.get(k, -1))


def _stub(live: LiveResource) -> Manifest:
    """A stand-in manifest so `_timed` can label a prune result (pruned resources have no manifest)."""
    return Manifest(kind=live.key.kind, metadata=Metadata(name=live.key.name), spec=None,
                    source=Source(file="<live>", line=0))


def _describe_error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"AWS refused: {error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
    if isinstance(exc, LookupError):
        return str(exc.args[0]) if exc.args else str(exc)
    return f"{type(exc).__name__}: {exc}"


__all__ = ["Action", "ApplyOptions", "Reconciler", "ResourceResult"]
