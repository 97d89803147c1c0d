"""Apply, diff, drift, prune, delete and replacement against a real moto server over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.aws import client, current_region
from controller.kinds import registry
from controller.kinds.base import Context, LiveResource
from controller.model import Manifest, ResourceKey
from controller.reconciler import Reconciler
from controller.specs import LoadedStack, LoadOptions, load
from tests.controller.drift import mutations

Ctl = Callable[..., tuple[int, str, str]]
REPO = Path(__file__).resolve().parents[2]


MUTATIONS = mutations()


def context(stack: str = "huntaze-local") -> Context:
    account = client("sts").get_caller_identity()["Account"]
    return Context(stack=stack, region=current_region(), account_id=account, client=client)


def loaded_of(path: Path, env: str = "local") -> LoadedStack:
    variables = {"ENV": env, "AWS_REGION": current_region(), "AWS_ACCOUNT_ID": "123456789012"}
    return load(LoadOptions([str(path)], env, variables))


def manifests_of(path: Path, env: str = "local") -> list[Manifest]:
    return loaded_of(path, env).manifests


def read_live(manifest: Manifest, loaded: LoadedStack) -> LiveResource | None:
    """Read through the kind's handler, after a dry-run plan resolved the references it may need."""
    ctx = context()
    Reconciler(ctx).plan(loaded)
    return registry.handler(manifest.kind).read(manifest, ctx)


def lines_with(out: str, word: str) -> list[str]:
    return [line for line in out.splitlines() if f"  {word}" in line]


def test_apply_basic_stack_from_empty_creates_all_then_second_apply_makes_zero_writes(
    aws_calls: Any, ctl: Ctl, stack_dir: Path
) -> None:
    code, out, err = ctl("apply", "-f", str(stack_dir))
    assert code == 0, out + err
    assert len(lines_with(out, "created")) == 9 and "9 created" in out
    aws_calls.clear()
    code, out, _ = ctl("apply", "-f", str(stack_dir))
    assert code == 0 and "9 unchanged" in out
    assert aws_calls.writes == []
    assert ctl("diff", "-f", str(stack_dir))[0] == 0


def test_apply_dry_run_from_empty_writes_nothing_and_lists_creations(
    aws_calls: Any, ctl: Ctl, stack_dir: Path
) -> None:
    code, out, _ = ctl("apply", "-f", str(stack_dir), "--dry-run")
    assert code == 0 and "9 created" in out and "dry run" in out
    assert aws_calls.writes == []
    assert ctl("diff", "-f", str(stack_dir))[0] == 1


# Every kind the basic test stack holds, read from the stack itself (a kind added to it is covered at once).
BASIC_KINDS = {m.kind for m in load(LoadOptions([str(Path(__file__).parent / "stacks" / "basic")], "local",
                                                {"ENV": "local", "AWS_REGION": "us-east-1",
                                                 "AWS_ACCOUNT_ID": "000000000000"})).manifests}


@pytest.mark.parametrize("kind", sorted(BASIC_KINDS))
def test_diff_after_out_of_band_change_names_field_and_apply_fixes_it(
    aws: str, ctl: Ctl, stack_dir: Path, kind: str
) -> None:
    """The kinds of the basic test stack, one at a time; the full stack's kinds are in test_full_stack.py."""
    args, loaded = ["-f", str(stack_dir)], loaded_of(stack_dir)
    manifest = next(m for m in loaded.manifests if m.kind == kind)
    code, out, err = ctl("apply", *args)
    assert code == 0, out + err
    live = read_live(manifest, loaded)
    assert live is not None
    field = MUTATIONS[kind](manifest, live)
    code, out, _ = ctl("diff", *args)
    assert code == 1, out
    assert f"~ {manifest.key}" in out and f"    {field}" in out, out
    code, out, _ = ctl("apply", *args)
    assert code == 0 and any(str(manifest.key) in line for line in lines_with(out, "updated")), out
    code, out, _ = ctl("diff", *args)
    assert code == 0, out


def write_queue(path: Path, name: str, extra: str = "", annotations: str = "") -> None:
    meta = f"\n  annotations:\n{annotations}" if annotations else ""
    path.write_text(f"apiVersion: huntaze.io/v1\nkind: Queue\nmetadata:\n  name: {name}{meta}\nspec:\n"
                    f"  visibilityTimeout: 45\n{extra}")


def test_apply_fifo_change_is_refused_with_impact_then_replaced_when_allowed(
    aws_calls: Any, ctl: Ctl, tmp_path: Path
) -> None:
    spec = tmp_path / "jobs.yaml"
    write_queue(spec, "t-jobs")
    assert ctl("apply", "-f", str(spec))[0] == 0
    url = client("sqs").get_queue_url(QueueName="t-jobs")["QueueUrl"]
    for body in ("one", "two"):
        client("sqs").send_message(QueueUrl=url, MessageBody=body)
    write_queue(spec, "t-jobs", "  fifo: true\n")
    aws_calls.clear()
    code, out, _ = ctl("apply", "-f", str(spec))
    assert code == 1
    assert "refused" in out and "fifoQueue" in out and "2 messages waiting" in out
    assert "--allow-replace Queue/t-jobs" in out
    assert aws_calls.writes == []
    code, out, _ = ctl("diff", "-f", str(spec))
    assert code == 1 and "requires_replacement" in out
    code, out, _ = ctl("apply", "-f", str(spec), "--allow-replace", "Queue/t-jobs")
    assert code == 0 and "replaced" in out, out
    urls = client("sqs").list_queues(QueueNamePrefix="t-jobs").get("QueueUrls", [])
    assert [u.rsplit("/", 1)[-1] for u in urls] == ["t-jobs.fifo"]
    assert ctl("diff", "-f", str(spec))[0] == 0


def test_apply_prune_removes_only_owned_resources_missing_from_specs(
    aws: str, ctl: Ctl, stack_dir: Path, tmp_path: Path
) -> None:
    assert ctl("apply", "-f", str(stack_dir))[0] == 0
    other = tmp_path / "other.yaml"
    write_queue(other, "t-other-stack")
    assert ctl("apply", "-f", str(other), "--stack", "someone-else")[0] == 0
    client("sqs").create_queue(QueueName="t-handmade")
    platform = (stack_dir / "platform.yaml").read_text()
    (stack_dir / "platform.yaml").write_text(platform.split("---\n", 1)[1])  # drop Topic/t-oncall
    code, out, _ = ctl("drift", "-f", str(stack_dir), "--format", "json")
    report = json.loads(out)
    assert code == 1 and [o["resource"] for o in report["ownedNotInSpec"]] == ["Topic/t-oncall"]
    code, out, _ = ctl("apply", "-f", str(stack_dir), "--prune")
    assert code == 0 and "Topic/t-oncall" in lines_with(out, "pruned")[0], out
    topics = [t["TopicArn"] for t in client("sns").list_topics()["Topics"]]
    assert not any(t.endswith(":t-oncall") for t in topics)
    names = [u.rsplit("/", 1)[-1] for u in client("sqs").list_queues()["QueueUrls"]]
    assert "t-handmade" in names and "t-other-stack" in names


def test_delete_keeps_retained_resource_and_removes_the_rest(aws: str, ctl: Ctl, stack_dir: Path) -> None:
    text = (stack_dir / "platform.yaml").read_text()
    retained = text.replace("  name: /huntaze/${ENV}/t-scraper\n",
                            "  name: /huntaze/${ENV}/t-scraper\n  annotations:\n"
                            "    huntaze.io/deletion-policy: retain\n")
    (stack_dir / "platform.yaml").write_text(retained)
    assert ctl("apply", "-f", str(stack_dir))[0] == 0
    code, out, _ = ctl("delete", "-f", str(stack_dir))
    assert code == 0, out
    assert "LogGroup//huntaze/local/t-scraper" in lines_with(out, "retained")[0]
    assert len(lines_with(out, "deleted")) == 8
    groups = client("logs").describe_log_groups(logGroupNamePrefix="/huntaze/local/t-scraper")["logGroups"]
    assert len(groups) == 1
    assert client("sqs").list_queues().get("QueueUrls", []) == []


def test_prune_honours_retain_tag_of_resource_removed_from_specs(aws: str, ctl: Ctl, tmp_path: Path) -> None:
    spec = tmp_path / "q.yaml"
    write_queue(spec, "t-keep", annotations="    huntaze.io/deletion-policy: retain\n")
    assert ctl("apply", "-f", str(spec))[0] == 0
    write_queue(spec, "t-new")
    code, out, _ = ctl("apply", "-f", str(spec), "--prune")
    assert code == 0 and "Queue/t-keep" in lines_with(out, "retained")[0]
    assert client("sqs").get_queue_url(QueueName="t-keep")["QueueUrl"]


def test_apply_existing_unowned_resource_is_refused_until_adopted(aws: str, ctl: Ctl, tmp_path: Path) -> None:
    client("sqs").create_queue(QueueName="t-legacy", Attributes={"VisibilityTimeout": "30"})
    spec = tmp_path / "q.yaml"
    write_queue(spec, "t-legacy")
    code, out, _ = ctl("apply", "-f", str(spec))
    assert code == 1 and 'huntaze.io/adopt: "true"' in out
    write_queue(spec, "t-legacy", annotations='    huntaze.io/adopt: "true"\n')
    code, out, _ = ctl("apply", "-f", str(spec))
    assert code == 0 and "updated" in out and "visibilityTimeout" in out
    live = read_live(manifests_of(spec)[0], loaded_of(spec))
    assert live is not None and live.owned and live.fields["visibilityTimeout"] == 45


def test_drift_report_formats_list_field_desired_live_and_verdict(aws: str, ctl: Ctl, stack_dir: Path) -> None:
    assert ctl("apply", "-f", str(stack_dir))[0] == 0
    url = client("sqs").get_queue_url(QueueName="t-rate-limiter")["QueueUrl"]
    client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "5"})
    code, out, _ = ctl("drift", "-f", str(stack_dir), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["summary"]["drifted"] == 1
    (entry,) = [r for r in report["resources"] if r["status"] == "drifted"]
    assert entry["resource"] == "Queue/t-rate-limiter"
    assert {"path": "receiveWaitTimeSeconds", "desired": 20, "live": 5, "verdict": "changed", "reason": ""} \
        in entry["fields"]
    code, out, _ = ctl("drift", "-f", str(stack_dir), "--format", "markdown")
    assert code == 1 and "| Queue/t-rate-limiter | `receiveWaitTimeSeconds` | `20` | `5` | changed |" in out
    code, out, _ = ctl("drift", "-f", str(stack_dir))
    assert "receiveWaitTimeSeconds: desired 20, live 5 (changed)" in out


def test_get_and_describe_never_print_the_secret_value(aws: str, ctl: Ctl, stack_dir: Path) -> None:
    assert ctl("apply", "-f", str(stack_dir))[0] == 0
    token = "not-a-real-token-value-7f3a"
    outputs = [
        ctl("get", "secret", "-o", "yaml"),
        ctl("get", "all", "-o", "json"),
        ctl("describe", "Secret/t-redis-auth-token"),
        ctl("describe", "Secret/t-redis-auth-token", "-f", str(stack_dir)),
        ctl("drift", "-f", str(stack_dir), "--format", "json"),
    ]
    for code, out, err in outputs:
        assert code == 0, out + err
        assert token not in out + err
    assert "hasValue: true" in outputs[2][1]
    rows = json.loads(outputs[1][1])
    assert {r["resource"] for r in rows} >= {"Queue/t-workflows", "Role/t-rate-limiter-lambda"}


def test_get_wide_lists_owned_queues_with_fields(aws: str, ctl: Ctl, stack_dir: Path) -> None:
    assert ctl("apply", "-f", str(stack_dir))[0] == 0
    code, out, _ = ctl("get", "queues", "-o", "wide")
    assert code == 0 and "Queue/t-workflows" in out and "visibilityTimeout=300" in out
    assert ctl("get", "Queue", "t-missing")[0] == 1


def test_secret_create_without_its_env_var_fails_with_what_to_set(
    aws: str, ctl: Ctl, stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("T_REDIS_AUTH_TOKEN")
    code, out, _ = ctl("apply", "-f", str(stack_dir))
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("Secret/")]
    assert "failed" in line and "set the environment variable T_REDIS_AUTH_TOKEN" in line
    assert len(lines_with(out, "created")) == 8


def test_resource_key_of_reads_is_the_manifest_key(aws: str, ctl: Ctl, stack_dir: Path) -> None:
    assert ctl("apply", "-f", str(stack_dir))[0] == 0
    loaded = loaded_of(stack_dir)
    for manifest in loaded.manifests:
        live = read_live(manifest, loaded)
        assert live is not None and live.key == manifest.key and live.owned
        assert live.key == ResourceKey.parse(live.tags["huntaze.io/resource"])
