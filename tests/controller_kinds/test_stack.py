"""The whole Huntaze stack (manifests/ + ecs-specs/): loads offline for every environment, and applies to moto
through the real reconciler, where a second apply changes nothing and makes no write call."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from common import aws
from controller.errors import SpecError
from controller.kinds import registry
from controller.kinds.base import Context
from controller.packaging import REPO_ROOT
from controller.reconciler import Action, ApplyOptions, Reconciler
from controller.specs import ENVIRONMENTS, LoadOptions, load

PATHS = [str(REPO_ROOT / "manifests"), str(REPO_ROOT / "ecs-specs")]
VARIABLES = {
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID": "123456789012",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SITE_URL": "http://127.0.0.1:8900",
    "PRIVATE_SUBNET_A": "subnet-0a",
    "PRIVATE_SUBNET_B": "subnet-0b",
    "SCRAPER_SECURITY_GROUP": "sg-0scraper",
    "SCRAPER_IMAGE_TAG": "git-3f2a9c1",
}
SEED_ALARMS = {
    "workflows_queue_age_critical",
    "lambda_errors_critical",
    "scraper_failure_rate_critical",
    "dlq_messages_critical",
    "workflows_queue_depth_high",
    "workflows_queue_age_high",
    "lambda_throttles_high",
    "scraper_5xx_rate_high",
    "ecs_cpu_high",
}
SERVICES = (
    "sqs",
    "sns",
    "s3",
    "logs",
    "secretsmanager",
    "iam",
    "lambda",
    "ecs",
    "application-autoscaling",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "resourcegroupstaggingapi",
)
# Issue 10: a no-op pass reads in batches, at most 1.2 read calls per resource on the full stack (was 2.45).
MAX_NOOP_READS_PER_RESOURCE = 1.2


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stack_every_file_loads_offline_for_each_environment(env: str) -> None:
    stack = load(LoadOptions(PATHS, env, {**VARIABLES, "ENV": env}))
    # Every registered kind is exercised against moto: by the full stack, or by its own kind tests (a new kind
    # needs a manifest in manifests/ only if the product needs the resource, docs/adding-a-kind.md).
    in_stack = {m.kind for m in stack.manifests}
    untested = [kind for kind in registry.known_kinds() if kind not in in_stack
                and not (Path(__file__).parent / f"test_{re.sub(r'(?<!^)(?=[A-Z])', '_', kind).lower()}.py").exists()]
    assert not untested, f"{untested}: use the kind in manifests/ or add tests/controller_kinds/test_<kind>.py"
    assert {m.metadata.name for m in stack.manifests if m.kind == "Alarm"} >= SEED_ALARMS  # + the controller's
    [dashboard] = [m for m in stack.manifests if m.kind == "Dashboard"]
    assert len(dashboard.spec.body.widgets) == 10
    text = "\n".join(Path(p).read_text() for d in PATHS for p in sorted(Path(d).rglob("*.yaml")))
    assert "317805897534" not in text  # the seed's account id is never copied


def test_stack_production_overlay_sets_seed_capacity_and_real_subnets() -> None:
    stack = load(LoadOptions(PATHS, "production", {**VARIABLES, "ENV": "production"}))
    by_kind = {m.kind: m for m in stack.manifests if m.kind in ("ScalingPolicy", "Service", "Function")}
    assert (by_kind["ScalingPolicy"].spec.min_capacity, by_kind["ScalingPolicy"].spec.max_capacity) == (1, 10)
    vpc = by_kind["Service"].spec.network_configuration.awsvpc_configuration
    assert vpc.subnets == ["subnet-0a", "subnet-0b"] and vpc.subnets_from is None
    assert by_kind["Function"].spec.reserved_concurrency == 5


def test_stack_out_of_range_value_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    for folder in ("manifests", "ecs-specs"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder)
    gate = tmp_path / "manifests" / "gate.yaml"
    gate.write_text(gate.read_text().replace("  timeout: 30\n", "  timeout: 901\n"))
    paths = [str(tmp_path / "manifests"), str(tmp_path / "ecs-specs")]
    with pytest.raises(SpecError) as caught:
        load(LoadOptions(paths, "local", {**VARIABLES, "ENV": "local"}))
    line = gate.read_text().splitlines().index("  timeout: 901") + 1
    expected = f"gate.yaml:{line}: spec.timeout: must be 1..900 (got 901)"
    assert caught.value.problems[0].endswith(expected), caught.value.problems


def test_stack_local_apply_twice_second_apply_writes_nothing(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the local overlay's secret files are relative to the repository root
    stack = load(LoadOptions(PATHS, "local", {**VARIABLES, "ENV": "local"}))
    ctx = Context(stack="huntaze-local", region="us-east-1", account_id="123456789012", client=_client)
    first = Reconciler(ctx).apply(stack, ApplyOptions())
    failures = [(str(r.key), r.action, r.message) for r in first if r.failed or r.message]
    assert failures == []
    assert {r.action for r in first} == {Action.CREATED}
    # Each kind's `value_output` (what `valueFrom: {<kind>Ref: NAME}` takes by default) is an output it gives.
    sources = registry.value_sources()
    given = {key: outputs for key, outputs in ctx.resolved.items() if key.kind in sources}
    assert {key.kind for key in given} >= {"Queue", "Secret", "Table", "Function"}
    assert {str(k): sorted(o) for k, o in given.items() if sources[k.kind] not in o} == {}

    counter = _WriteCounter()
    for service in SERVICES:
        aws_client = _client(service)
        aws_client.meta.events.register("before-call.*.*", counter)
    try:
        again = Reconciler(
            Context(stack="huntaze-local", region="us-east-1", account_id="123456789012", client=_client)
        ).apply(stack, ApplyOptions())
    finally:
        for service in SERVICES:
            _client(service).meta.events.unregister("before-call.*.*", counter)
    assert [(str(r.key), r.action) for r in again if r.action is not Action.UNCHANGED] == []
    assert counter.calls == []
    assert len(counter.reads) <= MAX_NOOP_READS_PER_RESOURCE * len(stack.manifests), sorted(counter.reads)
    service = next(r for r in again if str(r.key) == "Service/huntaze-onlyfans-scraper")  # autoscaled
    assert service.delta is not None
    verdicts = {f.path: f.verdict for f in service.delta.fields}
    assert verdicts["desiredCount"] == "ignored"
    assert verdicts["capacityProviderStrategy"] == "unobservable"


def test_stack_plan_on_empty_account_creates_everything_without_writing(aws: str) -> None:
    stack = load(LoadOptions(PATHS, "local", {**VARIABLES, "ENV": "local"}))
    ctx = Context(stack="huntaze-local", region="us-east-1", account_id="123456789012", client=_client)
    counter = _WriteCounter()
    for service in SERVICES:
        _client(service).meta.events.register("before-call.*.*", counter)
    try:
        plan = Reconciler(ctx).plan(stack)
    finally:
        for service in SERVICES:
            _client(service).meta.events.unregister("before-call.*.*", counter)
    assert [(str(r.key), r.action, r.message) for r in plan if r.action is not Action.CREATED] == []
    assert counter.calls == []


class _WriteCounter:
    """Write calls in ``calls``; read calls (Describe/List/Get/Head) in ``reads``."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.reads: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        is_read = model.name.startswith(("Describe", "List", "Get", "Head"))
        (self.reads if is_read else self.calls).append(model.name)


def _client(service: str) -> Any:
    return aws.client(service)
