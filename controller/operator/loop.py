"""The operator's run loop: `huntazectl controller run` keeps the stack reconciled while it holds the lease.

Started by `controller.commands.controller` (locally, and in the account as the ECS service of
``ecs-specs/controller-*.yaml``). Every interval (with jitter) it resyncs the whole stack through the generic
reconciler (`Reconciler.run_pass`); in between it runs only the resources whose requeue time has come
(`controller.operator.requeue`), and a changed spec file or SIGHUP reloads the specs and resyncs at once.

- Mode: ``enforce`` corrects drift, ``observe`` only reports it; the annotation ``huntaze.io/reconcile:
  observe|enforce|paused`` overrides it per resource. Paused resources are read (their outputs feed references)
  and never written. Non-converging (`controller.operator.guard`) and parked (terminal error) resources are
  treated as observed until cleared.
- Only the lease holder reconciles; every write is checked against the lease right before it is sent
  (`controller.calls.CallGate`). A heartbeat thread renews the lease (every ttl/3) or, on a standby, tries to
  take it (every ``standby_poll_s``).
- Every cycle journals one record per resource where something happened and a summary
  (`controller.journal`), and publishes metrics (namespace ``Huntaze/Controller``, dimension ``Stack``).
- `request_stop()` (SIGTERM/SIGINT): no new resource starts, the ones in progress finish, the lease is released,
  `run()` returns 0. `abort()` (a second signal) exits at once; journal lines are single writes, never half.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.calls import CallGate
from controller.diff import Verdict, compute_delta
from controller.errors import ErrorClass, HuntazeCtlError, Interrupted, LeaseLost
from controller.journal import FieldChange, Journal, JournalRecord, now
from controller.kinds.base import Context
from controller.lease import Lease, LeaseState
from controller.lock_table import create_from_spec
from controller.model import Manifest, ResourceKey
from controller.operator.guard import Guard, GuardStore
from controller.operator.requeue import RequeueQueue, fingerprint
from controller.operator.watch import SpecWatcher
from controller.reconciler import Action, ApplyOptions, Reconciler, ResourceResult
from controller.specs import LoadedStack

ANNOTATION_RECONCILE = "huntaze.io/reconcile"
MODES = ("enforce", "observe", "paused")
WRITES = frozenset({Action.CREATED, Action.UPDATED, Action.REPLACED})
METRICS_NAMESPACE = "Huntaze/Controller"


@dataclass(frozen=True)
class OperatorSettings:
    stack: str
    mode: str = "enforce"
    interval_s: float = 60.0
    jitter: float = 0.1
    lease_ttl_s: float = 30.0
    standby_poll_s: float | None = None  # default: ttl/10 (0.2..2 s), so a handover takes about one ttl
    guard_threshold: int = 3
    concurrency: int = 4
    watch_poll_s: float = 1.0
    settle_timeout_s: float = 20.0
    metrics_namespace: str | None = METRICS_NAMESPACE
    max_cycles: int | None = None  # stop after this many full cycles (--once: 1)


def resource_mode(manifest: Manifest, default: str) -> str:
    value = manifest.metadata.annotations.get(ANNOTATION_RECONCILE, default).strip().lower()
    return value if value in MODES else "observe"  # unknown value: the safe choice (validated by the loader too)


def spec_fingerprint(manifest: Manifest) -> str:
    spec = manifest.spec.model_dump(mode="json") if hasattr(manifest.spec, "model_dump") else manifest.spec
    return fingerprint({"spec": spec, "annotations": manifest.metadata.annotations})


class Operator:
    def __init__(
        self,
        settings: OperatorSettings,
        *,
        load: Callable[[], LoadedStack],
        make_context: Callable[[LoadedStack, CallGate], Context],
        lease: Lease,
        journal: Journal,
        paths: list[str],
        guard_store: GuardStore | None = None,
        metrics: Any = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.load = load
        self.make_context = make_context
        self.lease = lease
        self.journal = journal
        self.paths = paths
        self.guard_store = guard_store
        self.metrics = metrics
        self.say = say or (lambda line: print(f"controller: {line}", file=sys.stderr, flush=True))
        self.gate = CallGate(check_write=lease.check)
        self.queue = RequeueQueue()
        self.guard = Guard(settings.guard_threshold)
        self.marks: dict[str, dict[str, Any]] = {}
        self.held: set[ResourceKey] = set()  # rolled back from the spec's release: not written (kinds.base.Hold)
        self.stopping = threading.Event()
        self.reload = threading.Event()
        self.wake = threading.Event()
        self._heartbeat_stop = threading.Event()
        self.cycles = 0
        self.cycle_id = "-"
        self.stack: LoadedStack | None = None
        self.reconciler: Reconciler | None = None
        self.last: dict[ResourceKey, ResourceResult] = {}
        self._heartbeat_error = ""
        lease.on_change = self._lease_changed

    # --- control (signal handlers call these) ----------------------------------------------------------------

    def request_stop(self) -> None:
        self.stopping.set()
        if self.reconciler is not None:
            self.reconciler.stop.set()
        self.wake.set()

    def request_reload(self) -> None:
        self.reload.set()
        self.wake.set()

    def abort(self) -> None:
        self.say("second signal: exiting now (the resource in progress may be half-written; no journal line is)")
        os._exit(143)

    # --- main loop ---------------------------------------------------------------------------------------------

    def run(self) -> int:
        self._set_stack(self.load())
        assert self.stack is not None
        assert self.reconciler is not None
        if self.lease.ensure_table(create_from_spec(self.stack.manifests, self.reconciler.ctx)):
            self.say(f"created the lock table {self.lease.table}")
        heartbeat = threading.Thread(target=self._heartbeat, name="lease-heartbeat", daemon=True)
        watcher = SpecWatcher(self.paths, self.request_reload, self.settings.watch_poll_s)
        heartbeat.start()
        watcher.start()
        next_full = 0.0
        last_standby_metric = 0.0
        try:
            while not self.stopping.is_set():
                if not self.lease.held:
                    if time.monotonic() - last_standby_metric >= self.settings.interval_s:
                        self._publish({"LeaseHeld": 0.0})
                        last_standby_metric = time.monotonic()
                    self._sleep(self.settings.lease_ttl_s / 3)
                    next_full = 0.0  # a new leader resyncs everything first
                    continue
                if self.reload.is_set():
                    self.reload.clear()
                    if self._reload():
                        next_full = 0.0
                if time.monotonic() >= next_full:
                    self._cycle(None)
                    self.cycles += 1
                    spread = random.uniform(-self.settings.jitter, self.settings.jitter)
                    next_full = time.monotonic() + self.settings.interval_s * (1 + spread)
                    if self.settings.max_cycles is not None and self.cycles >= self.settings.max_cycles:
                        break
                else:
                    due = self._with_waiting_dependents(self.queue.due())
                    if due:
                        self._cycle(due)
                wake_at = min(next_full, self.queue.next_due() or next_full)
                self._sleep(max(0.0, wake_at - time.monotonic()))
        finally:
            watcher.stop()
            self._heartbeat_stop.set()
            heartbeat.join(timeout=10)
            try:
                self.lease.release()
            except Exception as exc:  # the lease expires by itself within its ttl
                self.say(f"could not release the lease ({type(exc).__name__}); it expires within its ttl")
            self.journal.flush()
        return 0

    def _with_waiting_dependents(self, due: set[ResourceKey]) -> set[ResourceKey]:
        """``due`` plus the requeued resources that wait on one of them (skipped because a dependency failed):
        they run right after it in the same pass instead of at their own, possibly much later, time."""
        if not due or self.stack is None:
            return due
        found = set(due)
        grew = True
        while grew:
            extra = {k for k in self.queue.retries if k not in found
                     and any(d in found for d in self.stack.dependencies.get(k, []))}
            found |= extra
            grew = bool(extra)
        return found

    def _sleep(self, seconds: float) -> None:
        if self.wake.wait(seconds):
            self.wake.clear()

    def _heartbeat(self) -> None:
        standby = self.settings.standby_poll_s or max(0.2, min(2.0, self.settings.lease_ttl_s / 10))
        while not self._heartbeat_stop.is_set():
            try:
                if self.lease.fencing is None:
                    if not self.stopping.is_set():
                        self.lease.try_acquire()
                else:
                    self.lease.renew()
                self._heartbeat_error = ""
            except Exception as exc:  # AWS unreachable: the local expiry stops our writes in time
                message = f"{type(exc).__name__}: {exc}"
                if message != self._heartbeat_error:
                    self.say(f"lease heartbeat failed: {message}")
                    self._heartbeat_error = message
            period = self.settings.lease_ttl_s / 3 if self.lease.fencing is not None else standby
            self._heartbeat_stop.wait(period)

    def _lease_changed(self, event: str, state: LeaseState | None) -> None:
        fencing = state.fencing if state else None
        if event == "gained":
            self.say(f"gained the lease of stack {self.settings.stack} (fencing {fencing}); reconciling")
            self.wake.set()
        elif event.startswith("lost"):
            self.say(f"LOST the lease of stack {self.settings.stack} ({event[6:]}); writing nothing from now on")
            if self.reconciler is not None:
                self.reconciler.stop.set()
        else:
            self.say(f"{event} the lease of stack {self.settings.stack}")
        self.journal.write(JournalRecord(
            type="lease", cycle_id=self.cycle_id, time=now(), stack=self.settings.stack,
            action=event.split(":", maxsplit=1)[0], message=event, lease_holder=self.lease.holder, fencing=fencing,
        ))

    # --- specs -------------------------------------------------------------------------------------------------

    def _set_stack(self, stack: LoadedStack) -> None:
        self.stack = stack
        ctx = self.make_context(stack, self.gate)
        previous = self.reconciler
        self.reconciler = Reconciler(ctx, gate=self.gate)
        if previous is not None:
            self.reconciler.ctx.resolved.update(previous.ctx.resolved)

    def _reload(self) -> bool:
        """Load the specs again; on an error keep the running ones and journal why. True if reloaded."""
        try:
            stack = self.load()
        except HuntazeCtlError as exc:
            self.say(f"specs not reloaded, still running the previous ones: {exc}")
            self.journal.write(JournalRecord(type="spec", cycle_id=self.cycle_id, time=now(),
                                             stack=self.settings.stack, action="invalid", error=str(exc),
                                             error_class=ErrorClass.TERMINAL.value))
            return False
        old = {m.key: spec_fingerprint(m) for m in (self.stack.manifests if self.stack else [])}
        changed = [m.key for m in stack.manifests if old.get(m.key) != spec_fingerprint(m)]
        for key in changed:
            self.queue.forget(key)  # a spec change clears a terminal park
        self._set_stack(stack)
        self.say(f"specs reloaded: {len(changed)} resource(s) changed")
        self.journal.write(JournalRecord(type="spec", cycle_id=self.cycle_id, time=now(), stack=self.settings.stack,
                                         action="reloaded", message=", ".join(str(k) for k in changed)))
        return True

    # --- one cycle ---------------------------------------------------------------------------------------------

    def _mode(self, manifest: Manifest) -> str:
        mode = resource_mode(manifest, self.settings.mode)
        if mode == "enforce" and (str(manifest.key) in self.marks or manifest.key in self.queue.parked):
            return "observe"
        return mode

    def _options_for(self, manifest: Manifest) -> ApplyOptions:
        write = self._mode(manifest) == "enforce"
        return ApplyOptions(dry_run=not write, report_only=not write, settle_timeout_s=self.settings.settle_timeout_s)

    def _cycle(self, only: set[ResourceKey] | None) -> None:
        assert self.stack is not None and self.reconciler is not None
        stack = self.stack
        self.cycle_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        reads0, writes0 = self.gate.totals.reads, self.gate.totals.writes
        self.reconciler.stop.clear()
        by_key = {m.key: m for m in stack.manifests}
        self._load_marks(by_key)
        results = self.reconciler.run_pass(
            stack, self._options_for, self.settings.concurrency, only=only, previous=self.last
        )
        self.last.update(results)
        counts = dict.fromkeys(
            ("resources", "drifted", "written", "errors", "requeued", "terminal", "paused", "observed", "held"), 0)
        for key, result in results.items():
            verdicts = self._after(by_key[key], result)
            counts["resources"] += 1
            counts["drifted"] += "drift" in verdicts
            counts["written"] += result.action in WRITES and not result.dry_run
            counts["errors"] += result.error is not None
            counts["requeued"] += "requeued" in verdicts
            counts["terminal"] += "terminal" in verdicts
            counts["paused"] += "paused" in verdicts
            counts["observed"] += "observed" in verdicts
            counts["held"] += "held" in verdicts
        counts["non_converging"] = len(self.marks)
        counts["pending"] = len(self.queue.retries) + len(self.queue.parked)  # still requeued or parked
        counts["api_calls"] = self.gate.totals.reads - reads0 + self.gate.totals.writes - writes0
        counts["read_calls"] = self.gate.totals.reads - reads0
        counts["write_calls"] = self.gate.totals.writes - writes0
        duration = time.perf_counter() - started
        self.journal.write(JournalRecord(
            type="cycle", cycle_id=self.cycle_id, time=now(), stack=self.settings.stack, mode=self.settings.mode,
            action="full" if only is None else "requeue", duration_s=round(duration, 3),
            api_calls=counts["api_calls"], write_calls=counts["write_calls"], counts=counts,
            lease_holder=self.lease.holder, fencing=self.lease.fencing,
        ))
        self.journal.flush()
        if only is None:
            self._publish({
                "CycleCompleted": 1.0, "CycleDuration": duration, "Drifted": float(counts["drifted"]),
                "Errors": float(counts["errors"]), "NonConverging": float(counts["non_converging"]),
                "LeaseHeld": 1.0 if self.lease.held else 0.0,
            })

    def _load_marks(self, by_key: dict[ResourceKey, Manifest]) -> None:
        if self.guard_store is None:
            return
        try:
            marks = self.guard_store.load()
        except Exception as exc:
            self.say(f"cannot read the guard marks ({type(exc).__name__}); keeping the last known ones")
            return
        for name, mark in list(marks.items()):
            manifest = by_key.get(ResourceKey.parse(name))
            if manifest is None or spec_fingerprint(manifest) != mark.get("spec"):
                self._clear_mark(name, "spec changed")
                del marks[name]
        for name in set(self.marks) - set(marks):  # cleared by `huntazectl controller resume`
            key = ResourceKey.parse(name)
            self.guard.forget(key)
            self.journal.write(JournalRecord(type="guard", cycle_id=self.cycle_id, time=now(),
                                             stack=self.settings.stack, resource=name, action="resumed",
                                             lease_holder=self.lease.holder, fencing=self.lease.fencing))
        self.marks = marks

    def _clear_mark(self, name: str, why: str) -> None:
        assert self.guard_store is not None
        self.guard_store.clear(name)
        self.guard.forget(ResourceKey.parse(name))
        self.journal.write(JournalRecord(type="guard", cycle_id=self.cycle_id, time=now(), stack=self.settings.stack,
                                         resource=name, action="cleared", message=why))

    def _after(self, manifest: Manifest, result: ResourceResult) -> list[str]:
        """Requeue, park, guard and journal one resource's outcome; returns its verdicts."""
        key = manifest.key
        mode = resource_mode(manifest, self.settings.mode)
        effective = self._mode(manifest)
        spec_fp = spec_fingerprint(manifest)
        verdicts: list[str] = []
        retry_in: float | None = None
        error_class: str | None = None
        drifted = self._drifted(result)
        wrote = result.action in WRITES and not result.dry_run
        if result.error is not None and result.verdict is not None:
            error_class = result.verdict.error_class.value
            if isinstance(result.error, LeaseLost | Interrupted):
                verdicts.append("stopped")
                error_class = "lease_lost" if isinstance(result.error, LeaseLost) else "interrupted"
            elif result.verdict.error_class is ErrorClass.TERMINAL:
                self.queue.park(key, spec_fp, fingerprint(result.live_before), result.message, error_class)
                verdicts.append("terminal")
            else:
                retry_in = round(self.queue.schedule(key, result.verdict.delay or 1.0), 2)
                verdicts.append("requeued")
        elif result.action is Action.SKIPPED:
            retry_in = round(self.queue.schedule(key, 1.0), 2)
            verdicts.append("requeued")
        else:
            self.queue.succeeded(key)
            if key in self.queue.parked and self.queue.unpark_if_changed(key, spec_fp, fingerprint(result.live_before)):
                self.queue.schedule(key, 0.0)
                verdicts.append("unparked")
        held = bool(result.delta is not None and result.error is None and result.delta.held)
        if held:
            verdicts.append("held")  # a rollback's, not drift: never corrected, never counted by the guard
            self.held.add(key)
        elif key in self.held and result.error is None:
            verdicts.append("released")  # the spec asks for another release now (or the rollback was undone)
            self.held.discard(key)
        if drifted:
            verdicts.append("drift")
            if wrote:
                verdicts.append("corrected")
            elif mode == "paused":
                verdicts.append("paused")
            else:
                verdicts.append("observed" if str(key) not in self.marks else "non-converging")
        if effective == "enforce" or wrote:
            mark = self.guard.observe(key, spec_fp, drifted if result.action is not Action.CREATED else {}, wrote)
            if mark is not None and self.guard_store is not None:
                self.guard_store.save(str(key), mark)
                self.marks[str(key)] = mark
                verdicts.append("non-converging")
                self.say(f"{key} is non-converging: {mark['field']} flipped back {mark['flips']} times "
                         f"(desired {mark['desired']!r}, live {mark['live']!r}); no longer writing it")
                self.journal.write(JournalRecord(
                    type="guard", cycle_id=self.cycle_id, time=now(), stack=self.settings.stack, resource=str(key),
                    action="non-converging", guard=mark, lease_holder=self.lease.holder, fencing=self.lease.fencing,
                    verdicts=["non-converging"],
                ))
        noted = {"unparked", "held", "released"} & set(verdicts)
        if drifted or wrote or result.error is not None or noted or result.action is Action.SKIPPED:
            action = "held" if held and not drifted and not wrote else self._action(result, drifted, mode)
            self.journal.write(JournalRecord(
                type="resource", cycle_id=self.cycle_id, time=now(), stack=self.settings.stack, mode=effective,
                resource=str(key), action=action, changes=self._changes(manifest, result),
                verdicts=verdicts, duration_s=round(result.seconds, 3), api_calls=result.api_calls,
                write_calls=result.write_calls, error=result.message if result.error is not None else None,
                error_class=error_class, retry_in_s=retry_in, lease_holder=self.lease.holder,
                fencing=self.lease.fencing, message=result.message if result.error is None else "",
            ))
        return verdicts

    @staticmethod
    def _action(result: ResourceResult, drifted: dict[str, Any], mode: str) -> str:
        if result.error is not None:
            return "failed"
        if result.dry_run and drifted:
            return "paused" if mode == "paused" else "drifted"
        if result.dry_run and result.action is Action.CREATED:
            return "missing"
        return str(result.action)

    @staticmethod
    def _drifted(result: ResourceResult) -> dict[str, tuple[Any, Any]]:
        if result.delta is None or result.live_before is None:
            return {}
        return {f.path: (f.desired, f.live) for f in result.delta.fields if f.is_drift}

    def _changes(self, manifest: Manifest, result: ResourceResult) -> list[FieldChange]:
        if result.delta is None:
            return []
        after: dict[str, Any] = {}
        if result.live_after is not None and result.desired is not None and self.reconciler is not None:
            rules = self.reconciler.rules_for(manifest)
            after = {f.path: f.live for f in compute_delta(manifest.key, result.desired, result.live_after,
                                                            rules).fields}
        return [
            FieldChange(field=f.path, desired=_plain(f.desired), live_before=_plain(f.live),
                        live_after=_plain(after.get(f.path)))
            for f in result.delta.fields if f.is_drift or f.verdict is Verdict.HELD
        ]

    # --- metrics -----------------------------------------------------------------------------------------------

    def _publish(self, values: dict[str, float]) -> None:
        if self.metrics is None or not self.settings.metrics_namespace:
            return
        units = {"CycleDuration": "Seconds"}
        data = [
            {"MetricName": name, "Value": value, "Unit": units.get(name, "Count"),
             "Dimensions": [{"Name": "Stack", "Value": self.settings.stack}]}
            for name, value in values.items()
        ]
        try:
            self.metrics.put_metric_data(Namespace=self.settings.metrics_namespace, MetricData=data)
        except Exception as exc:
            self.say(f"cannot publish metrics: {type(exc).__name__}: {exc}")


def _plain(value: Any) -> Any:
    return None if type(value).__name__ == "_Absent" else value
