"""The generic reconciler against an in-memory kind (a seam we own): retries, ordering, skips, verdicts."""

from __future__ import annotations

import threading
import time
from typing import Any

from controller.diff import Verdict
from controller.kinds.base import Context, FieldPolicy, FieldRule, KindHandler, LiveResource
from controller.model import Manifest, Metadata, ResourceKey, Source
from controller.reconciler import Action, ApplyOptions, Reconciler
from controller.specs import LoadedStack
from controller.specs.fields import SpecModel


class Throttled(Exception):
    def __init__(self) -> None:
        super().__init__("Rate exceeded")
        self.response = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}


class MemSpec(SpecModel):
    size: int = 1
    after: list[str] = []
    broken: bool = False


class MemoryKind(KindHandler):
    """Resources in a dict; counts writes; can throttle its first reads and fail on demand."""

    kind = "Mem"
    spec_model = MemSpec
    rules = {"owner": FieldRule(FieldPolicy.IGNORED, "owned by autoscaling"),
             "hidden": FieldRule(FieldPolicy.UNOBSERVABLE, "not returned by this API")}

    def __init__(self, throttle_reads: int = 0, delay_s: float = 0.0) -> None:
        self.store: dict[str, dict[str, Any]] = {}
        self.writes: list[str] = []
        self.throttle_reads = throttle_reads
        self.delay_s = delay_s
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return [ResourceKey(kind="Mem", name=n) for n in manifest.spec.after]

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        for ref in self.references(manifest):
            ctx.output(ref)
        return {"size": manifest.spec.size, "owner": 1, "hidden": "x"}

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        with self.lock:
            if self.throttle_reads:
                self.throttle_reads -= 1
                raise Throttled
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay_s)
        with self.lock:
            self.active -= 1
        fields = self.store.get(manifest.metadata.name)
        if fields is None:
            return None
        return LiveResource(manifest.key, manifest.metadata.name, dict(fields), {"arn": f"mem:{manifest.key.name}"},
                            owned=True)

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        if manifest.spec.broken:
            raise RuntimeError("cannot create")
        self.writes.append(f"create {manifest.key.name}")
        self.store[manifest.metadata.name] = {k: v for k, v in desired.items() if k != "hidden"}
        return LiveResource(manifest.key, manifest.metadata.name, dict(desired), {"arn": f"mem:{manifest.key.name}"},
                            owned=True)

    def update(self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str],
               ctx: Context) -> LiveResource:
        self.writes.append(f"update {manifest.key.name} {changed}")
        self.store[manifest.metadata.name].update({c: desired[c] for c in changed})
        return live

    def delete(self, live: LiveResource, ctx: Context) -> None:
        self.writes.append(f"delete {live.key.name}")
        del self.store[live.key.name]

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        return [LiveResource(ResourceKey(kind="Mem", name=n), n, f, owned=True) for n, f in self.store.items()]


def manifest(name: str, **spec: Any) -> Manifest:
    return Manifest(kind="Mem", metadata=Metadata(name=name), spec=MemSpec(**spec), source=Source(file="m", line=1))


def stack(*manifests: Manifest) -> LoadedStack:
    by_name = {m.key: m for m in manifests}
    deps = {m.key: [ResourceKey(kind="Mem", name=n) for n in m.spec.after] for m in manifests}
    tiers: list[list[Manifest]] = []
    done: set[ResourceKey] = set()
    while len(done) < len(manifests):
        tier = [m for k, m in by_name.items() if k not in done and set(deps[k]) <= done]
        tiers.append(tier)
        done.update(m.key for m in tier)
    return LoadedStack([m for t in tiers for m in t], tiers, deps, {}, "local", {})


def reconciler(kind: MemoryKind) -> Reconciler:
    ctx = Context(stack="s", region="us-east-1", account_id="1", client=lambda _: None)
    return Reconciler(ctx, handler_for=lambda _: kind)


def test_reconciler_throttled_reads_are_requeued_with_backoff_then_succeed() -> None:
    kind = MemoryKind(throttle_reads=2)
    rec = reconciler(kind)
    waited: list[float] = []
    rec.wait = lambda s: bool(waited.append(s))
    (result,) = rec.apply(stack(manifest("a")), ApplyOptions(requeue_deadline_s=60))
    assert result.action is Action.CREATED and kind.writes == ["create a"] and result.attempts == 3
    assert waited == [5.0, 10.0]  # the throttling error's delay, then doubled: per-resource backoff


def test_reconciler_without_requeue_reports_a_temporary_error_once() -> None:
    kind = MemoryKind(throttle_reads=1)
    (result,) = reconciler(kind).apply(stack(manifest("a")), ApplyOptions())
    assert result.action is Action.FAILED and result.temporary and kind.writes == []


def test_reconciler_second_apply_writes_nothing_and_reports_verdicts() -> None:
    kind = MemoryKind()
    s = stack(manifest("a", size=2), manifest("b", after=["a"]))
    reconciler(kind).apply(s, ApplyOptions())
    kind.store["a"]["owner"] = 9  # autoscaling changed it
    kind.writes.clear()
    results = reconciler(kind).apply(s, ApplyOptions())
    assert [r.action for r in results] == [Action.UNCHANGED, Action.UNCHANGED] and kind.writes == []
    verdicts = {f.path: f.verdict for f in results[0].delta.fields}  # type: ignore[union-attr]
    assert verdicts == {"size": Verdict.EQUAL, "owner": Verdict.IGNORED, "hidden": Verdict.UNOBSERVABLE}


def test_reconciler_update_sends_only_changed_fields() -> None:
    kind = MemoryKind()
    reconciler(kind).apply(stack(manifest("a", size=1)), ApplyOptions())
    (result,) = reconciler(kind).apply(stack(manifest("a", size=5)), ApplyOptions())
    assert result.action is Action.UPDATED and result.changed == ["size"]
    assert kind.writes[-1] == "update a ['size']"


def test_reconciler_failed_dependency_skips_dependents_but_not_independents() -> None:
    kind = MemoryKind()
    s = stack(manifest("bad", broken=True), manifest("child", after=["bad"]), manifest("free"))
    results = {r.key.name: r for r in reconciler(kind).apply(s, ApplyOptions())}
    assert results["bad"].action is Action.FAILED and "cannot create" in results["bad"].message
    assert results["child"].action is Action.SKIPPED and "Mem/bad" in results["child"].message
    assert results["free"].action is Action.CREATED


def test_reconciler_tier_runs_concurrently_within_the_bound() -> None:
    kind = MemoryKind(delay_s=0.05)
    s = stack(*(manifest(f"r{i}") for i in range(12)))
    reconciler(kind).apply(s, ApplyOptions(concurrency=3))
    assert 1 < kind.peak <= 3


def test_reconciler_dry_run_resolves_pending_outputs_for_dependents() -> None:
    kind = MemoryKind()
    results = reconciler(kind).apply(stack(manifest("a"), manifest("b", after=["a"])), ApplyOptions(dry_run=True))
    assert [r.action for r in results] == [Action.CREATED, Action.CREATED] and kind.writes == []


def test_reconciler_prune_deletes_owned_resources_missing_from_specs() -> None:
    kind = MemoryKind()
    reconciler(kind).apply(stack(manifest("a"), manifest("old")), ApplyOptions())
    rec = reconciler(kind)
    rec.orphans = lambda s, kinds=None: [  # type: ignore[method-assign]
        live for live in kind.list_owned(rec.ctx) if live.key not in s.keys]
    results = rec.apply(stack(manifest("a")), ApplyOptions(prune=True))
    assert [(r.key.name, r.action) for r in results] == [("a", Action.UNCHANGED), ("old", Action.PRUNED)]
    assert "old" not in kind.store


class _RecordedProgress:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def tier_started(self, number: int, tiers: int, size: int) -> None:
        self.events.append(("tier", number, tiers, size))

    def resource_done(self, result: Any) -> None:
        self.events.append(("done", result.key.name, result.action))

    def finished(self) -> None:
        self.events.append(("finished",))


def test_reconciler_progress_reports_each_tier_then_each_of_its_resources_once() -> None:
    kind = MemoryKind(delay_s=0.01)
    s = stack(manifest("bad", broken=True), manifest("free"), manifest("child", after=["bad"]),
              manifest("leaf", after=["free"]))
    progress = _RecordedProgress()
    results = reconciler(kind).apply(s, ApplyOptions(progress=progress, concurrency=2))
    tiers = [e for e in progress.events if e[0] == "tier"]
    assert tiers == [("tier", 1, 2, 2), ("tier", 2, 2, 2)]
    second = progress.events.index(tiers[1])
    assert sorted(e[1] for e in progress.events[1:second]) == ["bad", "free"]
    assert {e[1]: e[2] for e in progress.events[second + 1:-1]} == {"child": Action.SKIPPED, "leaf": Action.CREATED}
    assert progress.events[-1] == ("finished",)
    assert len([e for e in progress.events if e[0] == "done"]) == len(results) == 4


def test_tier_progress_draws_the_tier_and_the_last_resource_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from controller.commands._progress import TierProgress

    out = io.StringIO()
    progress = TierProgress(Console(file=out, force_terminal=True, width=100))
    (result,) = reconciler(MemoryKind()).apply(stack(manifest("a")), ApplyOptions(progress=progress))
    assert result.action is Action.CREATED
    assert "tier 1/1: Mem/a created" in out.getvalue()
