"""The one generic reconcile loop (ACK's runtime, in Python): read, diff, then create, update, replace or skip.

Called by the `apply`, `diff`, `drift` and `delete` commands and by the operator loop (`controller.operator`).
It never imports boto3 or a kind: it reaches kinds through `controller.kinds.registry` and AWS only through the
handlers' verbs. Before each pass and each tier, the kinds read in batches (`controller.kinds.prefetch`), so a
no-op pass costs about one read call per resource. After a write it re-reads until the resource shows no drift
(bounded), so a slow-to-converge API never turns into spurious drift on the next run.

Retries follow ACK's requeue model (`controller.errors.classify`): botocore retries single calls; a verb is
never retried as a whole. A failed attempt on a resource is classified; a *temporary* one is requeued after the
delay the error carries (doubling per consecutive failure, per resource), and the next attempt reads and diffs
again, so a create that succeeded before timing out is found and not created twice. A *terminal* one is reported
and not retried. `apply` requeues within its run until `ApplyOptions.requeue_deadline_s`; the operator requeues
across cycles with its own queue (`controller.operator.requeue`).

Resources in one dependency tier are reconciled concurrently by a bounded thread pool; a resource whose
dependency failed is skipped, never half-applied. Every outcome is data (`ResourceResult`), not an exception.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from controller.calls import CallGate
from controller.claims import rules_by_key
from controller.diff import Delta, compute_delta
from controller.errors import ErrorClass, HuntazeCtlError, Interrupted, LeaseLost, ReplacementRefused, Verdict, classify
from controller.kinds import registry
from controller.kinds.base import Context, FieldPolicy, FieldRule, KindHandler, LiveResource
from controller.kinds.prefetch import prefetch_tags, prefetch_tier
from controller.model import ANNOTATION_ADOPT, Manifest, Metadata, ResourceKey, Source
from controller.ownership import is_retained
from controller.retrying import wait_for
from controller.specs import LoadedStack


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
    NOT_STARTED = "not-started"  # interrupted before this resource began


FAILURES = frozenset({Action.REFUSED, Action.FAILED, Action.SKIPPED, Action.NOT_STARTED})
MAX_REQUEUE_DELAY_S = 300.0


@dataclass
class ResourceResult:
    key: ResourceKey
    action: Action
    delta: Delta | None = None
    message: str = ""
    dry_run: bool = False
    seconds: float = 0.0
    error: BaseException | None = None
    verdict: Verdict | None = None
    desired: dict[str, Any] | None = None
    live_before: dict[str, Any] | None = None  # the live fields read at the start of this attempt
    live_after: dict[str, Any] | None = None  # the live fields after our write settled (None: no write)
    attempts: int = 1
    api_calls: int = 0
    write_calls: int = 0

    @property
    def temporary(self) -> bool:
        return self.verdict is not None and self.verdict.error_class is ErrorClass.TEMPORARY

    @property
    def failed(self) -> bool:
        return self.action in FAILURES

    @property
    def changed(self) -> list[str]:
        if self.delta is None:
            return []
        return list(dict.fromkeys([*self.delta.replaced_fields, *self.delta.changed_fields]))


class PassProgress(Protocol):
    """What a pass reports as it goes (`huntazectl apply` draws it with rich). Called from the pass's thread."""

    def tier_started(self, number: int, tiers: int, size: int) -> None: ...

    def resource_done(self, result: ResourceResult) -> None: ...

    def finished(self) -> None: ...


@dataclass(frozen=True)
class ApplyOptions:
    dry_run: bool = False
    prune: bool = False
    allow_replace: frozenset[ResourceKey] = frozenset()
    concurrency: int = 4
    settle_timeout_s: float = 20.0
    # diff/drift: report a needed replacement as drift (a verdict) instead of refusing it (an error)
    report_only: bool = False
    # apply: how long to keep requeueing resources that failed with a temporary error (0: report them at once)
    requeue_deadline_s: float = 0.0
    # apply: told when each tier starts and each resource ends (every pass, requeues included)
    progress: PassProgress | None = None


class _Pending(dict[str, str]):
    """Outputs of a resource a dry run would create: any output name reads as "known after apply"."""

    def __init__(self, key: ResourceKey) -> None:
        super().__init__()
        self.key = key

    def __missing__(self, name: str) -> str:
        return f"(known after apply: {self.key}.{name})"


class Reconciler:
    def __init__(
        self,
        ctx: Context,
        handler_for: Callable[[str], KindHandler] = registry.handler,
        gate: CallGate | None = None,
    ) -> None:
        self.ctx = ctx
        self.gate = gate  # counts each resource's API calls (and writes) when given
        self.handler_for = handler_for
        self._lock = threading.Lock()
        # Kinds whose owned resources could not be listed by the last `orphans()` call, with the reason.
        self.listing_errors: dict[str, str] = {}
        # Field rules of the stack being applied, per manifest (static rules plus other resources' claims).
        self._rules: dict[ResourceKey, Mapping[str, FieldRule]] = {}
        # Set by a signal handler: resources not yet started are reported NOT_STARTED, none is begun.
        self.stop = threading.Event()
        self.wait: Callable[[float], bool] = self.stop.wait  # between requeues; True means "stop"
        self._attempt = threading.local()  # what the current thread's attempt read, for failed results
        self._progress: PassProgress | None = None  # the running apply's (ApplyOptions.progress)

    def rules_for(self, manifest: Manifest) -> Mapping[str, FieldRule]:
        """The field rules the diff uses for ``manifest`` in the stack last applied or planned."""
        found = self._rules.get(manifest.key)
        return found if found is not None else self.handler_for(manifest.kind).field_rules(manifest)

    # --- apply ---------------------------------------------------------------------------------------------

    def apply(self, stack: LoadedStack, options: ApplyOptions) -> list[ResourceResult]:
        try:
            return self._apply(stack, options)
        finally:
            self._progress = None
            if options.progress is not None:
                options.progress.finished()

    def _apply(self, stack: LoadedStack, options: ApplyOptions) -> list[ResourceResult]:
        self._rules = rules_by_key(stack.manifests, self.handler_for)
        self._progress = options.progress
        done = self.run_pass(stack, lambda m: options, options.concurrency)
        deadline = time.monotonic() + options.requeue_deadline_s
        backoff: dict[ResourceKey, float] = {}
        while not self.stop.is_set():
            temporary = {k: r.verdict for k, r in done.items() if r.temporary and r.verdict is not None}
            if not temporary:
                break
            for k, verdict in temporary.items():
                first = verdict.delay or 1.0
                backoff[k] = min(MAX_REQUEUE_DELAY_S, 2 * backoff[k] if k in backoff else first)
            delay = min(backoff[k] for k in temporary)
            if time.monotonic() + delay > deadline:
                break
            if self.wait(delay):
                break
            again = set(temporary) | {k for k, r in done.items() if r.action is Action.SKIPPED}
            retried = self.run_pass(stack, lambda m: options, options.concurrency, only=again, previous=done)
            for k, r in retried.items():
                r.attempts = done[k].attempts + 1
                done[k] = r
        results = [done[m.key] for m in stack.manifests if m.key in done]  # claim-only entries are not reconciled
        if options.prune and not any(r.failed for r in results) and not self.stop.is_set():
            results.extend(self.prune(stack, dry_run=options.dry_run))
        return results

    def run_pass(
        self,
        stack: LoadedStack,
        options_for: Callable[[Manifest], ApplyOptions],
        concurrency: int,
        *,
        only: set[ResourceKey] | None = None,
        previous: Mapping[ResourceKey, ResourceResult] | None = None,
    ) -> dict[ResourceKey, ResourceResult]:
        """One pass in dependency order over ``only`` (default: every resource), each with its own options.

        Resources outside ``only`` are not touched; their outcome in ``previous`` (if any) decides whether a
        dependent may go ahead. Used by `apply` (and its requeues) and by the operator for each cycle.
        """
        self._rules = self._rules or rules_by_key(stack.manifests, self.handler_for)
        return self._by_tier(stack, lambda m: self._apply_one(m, options_for(m)), concurrency, only, previous)

    def plan(self, stack: LoadedStack) -> list[ResourceResult]:
        """What apply would do, without writing (``diff`` and ``drift``)."""
        return self.apply(stack, ApplyOptions(dry_run=True, report_only=True))

    def _by_tier(
        self,
        stack: LoadedStack,
        work: Callable[[Manifest], ResourceResult],
        concurrency: int,
        only: set[ResourceKey] | None = None,
        previous: Mapping[ResourceKey, ResourceResult] | None = None,
    ) -> dict[ResourceKey, ResourceResult]:
        done: dict[ResourceKey, ResourceResult] = {}
        earlier = previous or {}

        def failed(key: ResourceKey) -> bool:
            found = done.get(key) or earlier.get(key)
            return found is not None and found.failed

        self.ctx.prefetched.clear()  # batched reads are per pass: nothing read in an earlier pass is reused
        # The batch reads are made here, in the calling thread, for no one resource: counted in the gate's totals.
        def counting() -> contextlib.AbstractContextManager[None]:
            return self.gate.counting() if self.gate is not None else contextlib.nullcontext()

        with counting():
            if stack.tiers:
                prefetch_tags(self.ctx)
        widest = max((len(t) for t in stack.tiers), default=1)
        workers = max(1, min(concurrency, widest))
        progress = self._progress
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile") as pool:
            for number, tier in enumerate(stack.tiers, 1):
                members = [m for m in tier if only is None or m.key in only]
                with counting():
                    prefetch_tier(members, self.ctx, self.handler_for)
                if progress is not None and members:
                    progress.tier_started(number, len(stack.tiers), len(members))
                jobs: dict[Future[ResourceResult], ResourceKey] = {}
                for manifest in members:
                    blocked = [d for d in stack.dependencies.get(manifest.key, []) if failed(d)]
                    if self.stop.is_set():
                        done[manifest.key] = ResourceResult(
                            manifest.key, Action.NOT_STARTED, message="not started: interrupted")
                    elif blocked:
                        why = f"not applied: depends on {', '.join(str(b) for b in blocked)} which failed"
                        done[manifest.key] = ResourceResult(manifest.key, Action.SKIPPED, message=why)
                    else:
                        jobs[pool.submit(self._timed, work, manifest)] = manifest.key
                        continue
                    if progress is not None:
                        progress.resource_done(done[manifest.key])
                for future in as_completed(jobs):
                    done[jobs[future]] = future.result()
                    if progress is not None:
                        progress.resource_done(done[jobs[future]])
        # A stack may carry manifests no tier holds (they only contribute field claims): not reconciled here.
        return {m.key: done[m.key] for m in stack.manifests if m.key in done}

    def _timed(self, work: Callable[[Manifest], ResourceResult], manifest: Manifest) -> ResourceResult:
        started = time.perf_counter()
        self._attempt.live_before = None
        if self.gate is not None:
            self.gate.reset()
        try:
            result = work(manifest)
        except Exception as exc:  # AWS refused, or a kind raised: classified; the run goes on for the others
            verdict = classify(exc)
            action = Action.REFUSED if isinstance(exc, ReplacementRefused) else Action.FAILED
            message = str(exc) if isinstance(exc, HuntazeCtlError) else _describe_error(exc)
            if isinstance(exc, Interrupted | LeaseLost):
                message = f"{message} (stopped before its next AWS call)"
            result = ResourceResult(manifest.key, action, message=message, error=exc, verdict=verdict)
            result.live_before = self._attempt.live_before
        result.seconds = time.perf_counter() - started
        if self.gate is not None:
            count = self.gate.count()
            result.api_calls, result.write_calls = count.total, count.writes
        return result

    def _apply_one(self, manifest: Manifest, options: ApplyOptions) -> ResourceResult:
        handler = self.handler_for(manifest.kind)
        desired = handler.desired(manifest, self.ctx)
        live = handler.read(manifest, self.ctx)
        self._attempt.live_before = live.fields if live is not None else None
        if live is None:
            return self._create(handler, manifest, desired, options)
        if not live.owned and not manifest.adopt:
            raise ReplacementRefused(
                f"{manifest.key} exists in AWS but is not owned by stack {self.ctx.stack}: add the annotation "
                f'{ANNOTATION_ADOPT}: "true" to take it over, or give it another name'
            )
        delta = compute_delta(manifest.key, desired, live.fields, self.rules_with_hold(manifest, desired, live))
        held = held_message(delta, live)
        if delta.needs_replacement:
            return self._replace(handler, manifest, desired, live=live, delta=delta, options=options)
        if not delta.changed_fields:
            self._resolve(manifest.key, live.outputs)
            return ResourceResult(manifest.key, Action.UNCHANGED, delta, dry_run=options.dry_run, desired=desired,
                                  live_before=live.fields, message=held)
        if options.dry_run:
            self._resolve(manifest.key, live.outputs)
            return ResourceResult(manifest.key, Action.UPDATED, delta, dry_run=True, desired=desired,
                                  live_before=live.fields, message=held)
        updated = handler.update(manifest, live, desired, delta.changed_fields, self.ctx)
        result = self._settled(handler, manifest, updated, action=Action.UPDATED, delta=delta, options=options)
        result.live_before = live.fields
        result.message = "; ".join(m for m in (held, result.message) if m)
        return result

    def rules_with_hold(
        self, manifest: Manifest, desired: dict[str, Any], live: LiveResource | None
    ) -> Mapping[str, FieldRule]:
        """The manifest's field rules, plus HELD for the fields a rollback set back while the spec still asks
        for the rolled-back release (`controller.kinds.base.Hold`)."""
        rules = self.rules_for(manifest)
        hold = live.hold if live is not None else None
        if hold is None or not hold.applies_to(desired):
            return rules
        return {**rules, **{name: FieldRule(FieldPolicy.HELD, hold.describe()) for name in hold.fields}}

    def _create(
        self, handler: KindHandler, manifest: Manifest, desired: dict[str, Any], options: ApplyOptions
    ) -> ResourceResult:
        delta = compute_delta(manifest.key, desired, None, self.rules_for(manifest))
        if options.dry_run:
            self._resolve(manifest.key, _Pending(manifest.key))
            return ResourceResult(manifest.key, Action.CREATED, delta, dry_run=True, desired=desired)
        created = handler.create(manifest, desired, self.ctx)
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
            impact = handler.replacement_impact(live, self.ctx)
            raise ReplacementRefused(
                f"{fields} cannot change in place. Replacing it would lose: {impact}. "
                f"Rerun with --allow-replace {manifest.key} to delete and recreate it"
            )
        if options.dry_run:
            self._resolve(manifest.key, _Pending(manifest.key))
            return ResourceResult(manifest.key, Action.REPLACED, delta, dry_run=True)
        handler.delete(live, self.ctx)
        created = handler.create(manifest, desired, self.ctx)
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

        def converged() -> LiveResource | None:
            live = handler.read(manifest, self.ctx)
            if live is None:
                return None
            rules = self.rules_with_hold(manifest, desired, live)
            if compute_delta(manifest.key, desired, live.fields, rules).has_drift:
                return None
            return live

        message = ""
        try:
            live = wait_for(converged, f"{manifest.key} to converge", options.settle_timeout_s, str(manifest.key))
        except HuntazeCtlError:
            live = written
            message = "written, but the live state did not match the spec yet: the next diff may show drift"
        self._resolve(manifest.key, {**written.outputs, **live.outputs})
        return ResourceResult(manifest.key, action, delta, message=message, desired=desired, live_after=live.fields)

    def _resolve(self, key: ResourceKey, outputs: dict[str, str]) -> None:
        with self._lock:
            self.ctx.resolved[key] = outputs

    # --- prune, delete, orphans -------------------------------------------------------------------------------

    def orphans(self, stack: LoadedStack, kinds: Iterable[str] | None = None) -> list[LiveResource]:
        """Live resources owned by this stack whose ``Kind/name`` is in no spec, dependents first."""
        wanted = stack.keys
        found: list[LiveResource] = []
        self.listing_errors = {}
        for kind in registry.delete_order(kinds):
            try:
                listed = self.handler_for(kind).list_owned(self.ctx)
            except Exception as exc:  # one kind's API failing must not hide the others' orphans
                self.listing_errors[kind] = _describe_error(exc)
                continue
            found.extend(live for live in listed if live.key not in wanted)
        return found

    def prune(self, stack: LoadedStack, dry_run: bool = False) -> list[ResourceResult]:
        results = []
        for live in self.orphans(stack):
            if self.stop.is_set():
                results.append(ResourceResult(live.key, Action.NOT_STARTED, message="not pruned: interrupted"))
                continue
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
            if self.stop.is_set():
                results.append(ResourceResult(manifest.key, Action.NOT_STARTED, message="not deleted: interrupted"))
                continue
            results.append(self._timed(lambda m: self._delete_one(m, dry_run), manifest))
        return results

    def _delete_one(self, manifest: Manifest, dry_run: bool) -> ResourceResult:
        handler = self.handler_for(manifest.kind)
        live = handler.read(manifest, self.ctx)
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
            self.handler_for(live.key.kind).delete(live, self.ctx)
        return ResourceResult(live.key, action, dry_run=dry_run)


def held_message(delta: Delta, live: LiveResource) -> str:
    """The hold's sentence when some field of ``delta`` is held (empty otherwise): apply and the journal print it."""
    if not delta.held or live.hold is None:
        return ""
    return live.hold.describe()


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
