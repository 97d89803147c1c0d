"""Spec loading: line-aware errors for malformed manifests (no AWS call), variables, overlays, tiers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.errors import SpecError
from controller.model import ResourceKey
from controller.specs import LoadOptions, load

HEADER = "apiVersion: huntaze.io/v1\n"
VARS = {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "000000000000"}


def queue(name: str, spec: str = "{}") -> str:
    return f"{HEADER}kind: Queue\nmetadata:\n  name: {name}\nspec: {spec}\n"


def task_value_from(first: str, second: str) -> str:
    """A TaskDefinition whose one environment variable is ``valueFrom:`` with two keys, on lines 15 and 16."""
    return (f"{HEADER}kind: TaskDefinition\nmetadata:\n  name: td\nspec:\n  family: td\n  cpu: 256\n  memory: 512\n"
            "  containerDefinitions:\n    - name: c\n      image: busybox\n      environment:\n        - name: A\n"
            f"          valueFrom:\n            {first}\n            {second}\n")


VALUE_FROM = "spec.containerDefinitions[0].environment[0].valueFrom"
# The kinds a valueFrom may name come from the registry (their `value_output`), sorted: the error lists them.
REFS = "bucketRef, functionRef, logGroupRef, queueRef, roleRef, secretRef, tableRef, topicRef"

# (case id, {file: text}, expected "file:line: field: message" fragment)
MALFORMED: list[tuple[str, dict[str, str], str]] = [
    ("bad-yaml", {"a.yaml": "kind: Queue\nmetadata: [oops\nspec: {}\n"}, "a.yaml:3: invalid YAML"),
    ("tab-indent", {"a.yaml": "kind: Queue\nmetadata:\n\tname: x\n"}, "a.yaml:3: invalid YAML"),
    ("unknown-kind", {"a.yaml": f"{HEADER}kind: Queu\nmetadata:\n  name: x\nspec: {{}}\n"},
     "a.yaml:2: kind: unknown kind 'Queu' (known: "),
    ("wrong-api-version", {"a.yaml": "apiVersion: v1\nkind: Queue\nmetadata:\n  name: x\nspec: {}\n"},
     "a.yaml:1: apiVersion: must be huntaze.io/v1 (got 'v1')"),
    ("missing-metadata", {"a.yaml": f"{HEADER}kind: Queue\nspec: {{}}\n"},
     "a.yaml:1: metadata: required field is missing"),
    ("missing-name", {"a.yaml": f"{HEADER}kind: Queue\nmetadata:\n  labels: {{}}\nspec: {{}}\n"},
     "a.yaml:3: metadata.name: required field is missing"),
    ("metadata-typo", {"a.yaml": f"{HEADER}kind: Queue\nmetadata:\n  name: x\n  lables: {{}}\nspec: {{}}\n"},
     "a.yaml:5: metadata.lables: unknown field"),
    ("missing-spec", {"a.yaml": f"{HEADER}kind: Queue\nmetadata:\n  name: x\n"},
     "a.yaml:1: spec: required field is missing"),
    ("int-wrong-type", {"a.yaml": queue("x", "\n  visibilityTimeout: abc")},
     "a.yaml:6: spec.visibilityTimeout: Input should be a valid integer"),
    ("int-out-of-range", {"a.yaml": queue("x", "\n  visibilityTimeout: 90000")},
     "a.yaml:6: spec.visibilityTimeout: must be 0..43200 (got 90000)"),
    ("spec-typo", {"a.yaml": queue("x", "\n  visibilityTimout: 30")},
     "a.yaml:6: spec.visibilityTimout: unknown field"),
    ("bool-wrong-type", {"a.yaml": queue("x", "\n  fifo: maybe")},
     "a.yaml:6: spec.fifo: Input should be a valid boolean"),
    ("dangling-ref", {"a.yaml": queue("x", "\n  deadLetter:\n    queueRef: nope")},
     "a.yaml:7: spec.deadLetter.queueRef: Queue/nope is not defined in any manifest"),
    ("cycle", {"a.yaml": queue("a", "\n  deadLetter:\n    queueRef: b") + "---\n"
               + queue("b", "\n  deadLetter:\n    queueRef: a")},
     "dependency cycle Queue/a -> Queue/b -> Queue/a"),
    ("self-reference", {"a.yaml": queue("a", "\n  deadLetter:\n    queueRef: a")},
     "a.yaml:1: spec: dependency cycle Queue/a -> Queue/a"),
    ("duplicate-name", {"a.yaml": queue("x"), "b.yaml": queue("x")},
     "b.yaml:4: metadata.name: duplicate Queue/x (first defined at "),
    ("duplicate-key", {"a.yaml": queue("x", "\n  delaySeconds: 1\n  delaySeconds: 2")},
     "a.yaml:7: spec.delaySeconds: duplicate key (first at line 6)"),
    ("unknown-variable", {"a.yaml": queue("x-${NOPE}")},
     "a.yaml:4: metadata.name: unknown variable ${NOPE}"),
    ("retention-not-allowed", {"a.yaml": f"{HEADER}kind: LogGroup\nmetadata:\n  name: /x\nspec:\n"
                                         "  retentionInDays: 8\n"},
     "a.yaml:6: spec.retentionInDays: must be one of 1, 3, 5, 7"),
    ("secret-without-source", {"a.yaml": f"{HEADER}kind: Secret\nmetadata:\n  name: s\nspec:\n"
                                         "  description: d\n"},
     "a.yaml:5: spec.valueFrom: required field is missing"),
    ("secret-two-sources", {"a.yaml": f"{HEADER}kind: Secret\nmetadata:\n  name: s\nspec:\n  valueFrom:\n"
                                      "    env: A\n    file: b\n"},
     "a.yaml:6: spec.valueFrom: give exactly one of env or file"),
    ("role-without-trust", {"a.yaml": f"{HEADER}kind: Role\nmetadata:\n  name: r\nspec:\n  description: d\n"},
     "a.yaml:5: spec: give exactly one of trustedServices or assumeRolePolicy"),
    ("document-not-mapping", {"a.yaml": "- a\n- b\n"}, "a.yaml:1: <document>: expected a mapping"),
    ("dedup-without-fifo", {"a.yaml": queue("x", "\n  contentBasedDeduplication: true")},
     "a.yaml:5: spec: contentBasedDeduplication needs fifo: true"),
    ("max-receive-zero", {"a.yaml": queue("d") + "---\n" + queue("x", "\n  deadLetter:\n    queueRef: d\n"
                                                                     "    maxReceiveCount: 0")},
     "a.yaml:14: spec.deadLetter.maxReceiveCount: must be 1..1000 (got 0)"),
    ("unknown-top-level", {"a.yaml": queue("x") + "status: {}\n"}, "a.yaml:6: status: unknown top-level field"),
    ("lifecycle-wrong-type", {"a.yaml": f"{HEADER}kind: Bucket\nmetadata:\n  name: b-1234\nspec:\n"
                                        "  lifecycle:\n    - id: r\n      expirationDays: soon\n"},
     "a.yaml:8: spec.lifecycle[0].expirationDays: Input should be a valid integer"),
    ("fifo-name-mismatch", {"a.yaml": queue("x", "\n  queueName: x.fifo")},
     "a.yaml:5: spec: queueName must end with .fifo exactly when fifo is true"),
    ("not-huntaze-document", {"a.yaml": "family: scraper\ncpu: '1024'\n"},
     "a.yaml:1: <document>: not a huntaze document"),
    ("value-from-unknown-ref", {"a.yaml": task_value_from("output: url", "clusterRef: c")},
     f"a.yaml:16: {VALUE_FROM}.clusterRef: no kind gives values through clusterRef (check the spelling); "
     f"valueFrom takes one of {REFS} (got 'c')"),
    ("value-from-misspelt-key", {"a.yaml": task_value_from("queueRef: q", "outptu: url")},
     f"a.yaml:16: {VALUE_FROM}.outptu: unknown field (check the spelling)"),
    ("value-from-two-refs", {"a.yaml": task_value_from("queueRef: q", "secretRef: s")},
     f"a.yaml:14: {VALUE_FROM}: set exactly one of {REFS} (got {{'queueRef': 'q', 'secretRef': 's'}})"),
    ("value-from-json-key-without-secret", {"a.yaml": task_value_from("queueRef: q", "jsonKey: url")},
     f"a.yaml:14: {VALUE_FROM}: jsonKey only applies to secretRef"),
    ("overlay-without-match", {"a.yaml": queue("x"), "overlays/local.yaml": queue("y")},
     "overlays/local.yaml:1: metadata.name: overlay for Queue/y matches no manifest"),
]


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_apply_malformed_manifest_reports_file_line_field_and_calls_no_aws(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    offline_calls: object,
    ctl: Callable[..., tuple[int, str, str]],
    files: dict[str, str],
    expected: str,
) -> None:
    root = tmp_path / "m"
    write_files(root, files)
    monkeypatch.chdir(tmp_path)
    code, _, err = ctl("apply", "-f", "m")
    assert code == 2
    assert expected in err.replace("m/", "", 1).replace("\nm/", "\n"), err
    assert offline_calls.calls == []  # type: ignore[attr-defined]


def test_malformed_cases_number_at_least_twenty() -> None:
    assert len(MALFORMED) >= 20


def test_load_many_problems_lists_every_one(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.yaml": queue("x", "\n  visibilityTimeout: -1\n  delaySeconds: 901")
                           + "---\n" + f"{HEADER}kind: Nope\nmetadata:\n  name: y\nspec: {{}}\n"})
    with pytest.raises(SpecError) as caught:
        load(LoadOptions([str(tmp_path)], "local", VARS))
    assert len(caught.value.problems) == 3
    assert any(":6: spec.visibilityTimeout: must be 0..43200 (got -1)" in p for p in caught.value.problems)
    assert any(":7: spec.delaySeconds: must be 0..900 (got 901)" in p for p in caught.value.problems)


def test_validate_basic_stack_needs_no_aws(offline_calls: object, ctl: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = ctl("validate", "-f", "tests/controller/stacks/basic")
    assert code == 0 and "9 resources valid" in out
    assert offline_calls.calls == []  # type: ignore[attr-defined]


def test_load_variables_and_overlay_apply_per_environment() -> None:
    base = load(LoadOptions(["tests/controller/stacks/basic"], "local", VARS))
    prod = load(LoadOptions(["tests/controller/stacks/basic"], "production", {**VARS, "ENV": "production"}))
    key = ResourceKey(kind="Queue", name="t-rate-limiter")
    assert base.get(key).spec.visibility_timeout == 60  # type: ignore[union-attr]
    assert prod.get(key).spec.visibility_timeout == 120  # type: ignore[union-attr]
    assert prod.get(ResourceKey(kind="Bucket", name="t-huntaze-results-production")) is not None


def test_load_tiers_put_dead_letter_queues_before_their_sources() -> None:
    stack = load(LoadOptions(["tests/controller/stacks/basic"], "local", VARS))
    tier_of = {m.key.name: i for i, tier in enumerate(stack.tiers) for m in tier}
    assert tier_of["t-rate-limiter-dlq"] < tier_of["t-rate-limiter"]
    assert tier_of["t-workflows-dlq"] < tier_of["t-workflows"]
    assert len(stack.tiers) == 2


def test_load_overlay_error_points_at_overlay_line(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.yaml": queue("x"),
                           "overlays/staging.yaml": queue("x", "\n  visibilityTimeout: 99999")})
    with pytest.raises(SpecError) as caught:
        load(LoadOptions([str(tmp_path)], "staging", VARS))
    (problem,) = caught.value.problems
    assert "overlays/staging.yaml:6: spec.visibilityTimeout: must be 0..43200 (got 99999)" in problem


def test_load_escaped_variable_stays_literal(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.yaml": f"{HEADER}kind: Topic\nmetadata:\n  name: t\nspec:\n"
                                     "  displayName: cost $${ENV}\n"})
    stack = load(LoadOptions([str(tmp_path)], "local", VARS))
    assert stack.manifests[0].spec.display_name == "cost ${ENV}"


def test_load_missing_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file or directory"):
        load(LoadOptions([str(tmp_path / "nope")], "local", VARS))


def test_load_overlay_may_replace_a_value_holding_an_unknown_variable(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.yaml": f"{HEADER}kind: Topic\nmetadata:\n  name: t-${{ENV}}\nspec:\n"
                                     "  displayName: ${MISSING}\n",
                           "overlays/staging.yaml": f"{HEADER}kind: Topic\nmetadata:\n  name: t-staging\nspec:\n"
                                                    "  displayName: ok-${ENV}\n"})
    stack = load(LoadOptions([str(tmp_path)], "staging", {**VARS, "ENV": "staging"}))
    assert stack.manifests[0].spec.display_name == "ok-staging"
    with pytest.raises(SpecError, match=r"a.yaml:6: spec.displayName: unknown variable \$\{MISSING\}"):
        load(LoadOptions([str(tmp_path)], "local", VARS))
