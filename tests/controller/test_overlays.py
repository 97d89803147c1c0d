"""Overlay merging: mappings by key, lists of mappings by ``name``/``containerPort``, other lists replaced;
and the repository's staging/production overlays pinning the scraper image tag by variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.model import ResourceKey
from controller.specs import LoadOptions, load
from controller.specs.overlays import apply_overlays
from controller.specs.yamlsource import RawDocument, read_documents
from gate.settings import parse_limits
from scraper.platform_slot import parse_limit

REPO = Path(__file__).resolve().parents[2]
HEAD = "kind: X\nmetadata: {name: x}\n"

# (case id, base spec, overlay spec, merged spec)
TABLE: list[tuple[str, str, str, dict[str, Any]]] = [
    ("mapping-merges-by-key", "spec: {a: 1, b: {c: 2, d: 3}}", "spec: {b: {d: 4}, e: 5}",
     {"a": 1, "b": {"c": 2, "d": 4}, "e": 5}),
    ("scalar-list-replaced", "spec: {subnets: [a, b]}", "spec: {subnets: [c]}", {"subnets": ["c"]}),
    ("containers-merge-by-name",
     "spec: {containerDefinitions: [{name: app, image: 'app:latest', cpu: 1}, {name: side, image: 'side:1'}]}",
     "spec: {containerDefinitions: [{name: app, image: 'app:v2'}]}",
     {"containerDefinitions": [{"name": "app", "image": "app:v2", "cpu": 1}, {"name": "side", "image": "side:1"}]}),
    ("environment-changes-one-adds-one",
     "spec: {environment: [{name: A, value: '1'}, {name: B, value: '2'}]}",
     "spec: {environment: [{name: C, value: '3'}, {name: A, value: '9'}]}",
     {"environment": [{"name": "A", "value": "9"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}),
    ("nested-lists-merge-by-name",
     "spec: {containerDefinitions: [{name: app, environment: [{name: A, value: '1'}, {name: B, value: '2'}]}]}",
     "spec: {containerDefinitions: [{name: app, environment: [{name: B, value: '7'}]}]}",
     {"containerDefinitions": [{"name": "app", "environment": [{"name": "A", "value": "1"},
                                                               {"name": "B", "value": "7"}]}]}),
    ("ports-merge-by-container-port",
     "spec: {portMappings: [{containerPort: 80, protocol: tcp}, {containerPort: 443}]}",
     "spec: {portMappings: [{containerPort: 443, protocol: udp}]}",
     {"portMappings": [{"containerPort": 80, "protocol": "tcp"}, {"containerPort": 443, "protocol": "udp"}]}),
    ("patch-delete-removes-element",
     "spec: {secrets: [{name: A, valueFrom: a}, {name: B, valueFrom: b}, {name: C, valueFrom: c}]}",
     "spec: {secrets: [{name: B, $patch: delete}, {name: Z, $patch: delete}]}",
     {"secrets": [{"name": "A", "valueFrom": "a"}, {"name": "C", "valueFrom": "c"}]}),
    ("unkeyed-mappings-replaced",
     "spec: {strategy: [{capacityProvider: FARGATE_SPOT, weight: 70}, {capacityProvider: FARGATE, weight: 30}]}",
     "spec: {strategy: [{capacityProvider: FARGATE, weight: 1}]}",
     {"strategy": [{"capacityProvider": "FARGATE", "weight": 1}]}),
    ("empty-list-clears", "spec: {environment: [{name: A, value: '1'}]}", "spec: {environment: []}",
     {"environment": []}),
    ("null-replaces", "spec: {valueFrom: {env: A}}", "spec: {valueFrom: {env: null, file: f}}",
     {"valueFrom": {"env": None, "file": "f"}}),
]


def _merge(tmp_path: Path, base: str, overlay: str) -> tuple[RawDocument, list[str]]:
    problems: list[str] = []
    (tmp_path / "base.yaml").write_text(HEAD + base + "\n")
    (tmp_path / "overlay.yaml").write_text(HEAD + overlay + "\n")
    [doc] = read_documents(tmp_path / "base.yaml", "base.yaml", problems)
    overlays = read_documents(tmp_path / "overlay.yaml", "overlay.yaml", problems)
    apply_overlays([doc], overlays, problems)
    return doc, problems


@pytest.mark.parametrize(("base", "overlay", "merged"), [c[1:] for c in TABLE], ids=[c[0] for c in TABLE])
def test_overlay_merge_table_gives_expected_spec(
    tmp_path: Path, base: str, overlay: str, merged: dict[str, Any]
) -> None:
    doc, problems = _merge(tmp_path, base, overlay)
    assert problems == []
    assert doc.data["spec"] == merged


def test_overlay_merge_by_name_keeps_lines_of_each_side(tmp_path: Path) -> None:
    base = "spec:\n  list:\n    - name: a\n      image: one\n    - name: b\n      image: two\n    - name: c\n"
    overlay = "spec:\n  list:\n    - {name: a, $patch: delete}\n    - name: c\n      image: three\n"
    doc, _ = _merge(tmp_path, base, overlay)
    assert [i["name"] for i in doc.data["spec"]["list"]] == ["b", "c"]
    assert str(doc.where(("spec", "list", 0, "image"))) == "base.yaml:8"  # b moved from index 1 to 0
    assert str(doc.where(("spec", "list", 1, "image"))) == "overlay.yaml:7"  # set by the overlay
    assert str(doc.where(("spec", "list", 1))) == "base.yaml:9"  # the element itself stays the base's


def test_overlay_list_with_duplicate_name_is_a_problem(tmp_path: Path) -> None:
    _, problems = _merge(tmp_path, "spec: {env: [{name: A}, {name: A}]}", "spec: {env: [{name: A, value: v}]}")
    [problem] = problems
    assert "overlay.yaml:3: spec.env: cannot merge a list by name: A appears twice in base.yaml" in problem


@pytest.mark.parametrize("env", ["staging", "production"])
def test_overlay_staging_and_production_pin_scraper_image_tag_by_variable(env: str) -> None:
    variables = {"ENV": env, "AWS_REGION": "eu-west-1", "AWS_ACCOUNT_ID": "123456789012", "REDIS_URL": "rediss://r",
                 "SITE_URL": "https://s", "PRIVATE_SUBNET_A": "subnet-a", "PRIVATE_SUBNET_B": "subnet-b",
                 "SCRAPER_SECURITY_GROUP": "sg-1", "SCRAPER_IMAGE_TAG": "1.4.2"}
    paths = [str(REPO / "manifests"), str(REPO / "ecs-specs")]
    local = load(LoadOptions(paths, "local", {**variables, "ENV": "local"}))
    pinned = load(LoadOptions(paths, env, variables))
    key = ResourceKey(kind="TaskDefinition", name="huntaze-onlyfans-scraper")
    [container] = pinned.get(key).spec.container_definitions  # type: ignore[union-attr]
    [base] = local.get(key).spec.container_definitions  # type: ignore[union-attr]
    assert container.image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/huntaze/onlyfans-scraper:1.4.2"
    assert ":latest" not in base.image  # the local overlay pins a fixed local tag
    dumped, local_dumped = container.model_dump(exclude={"image"}), base.model_dump(exclude={"image"})
    assert len(dumped["environment"]) == len(local_dumped["environment"])  # nothing else restated or lost
    assert yaml.safe_dump(dumped["secrets"]) == yaml.safe_dump(local_dumped["secrets"])
    with pytest.raises(Exception, match=r"unknown variable \$\{SCRAPER_IMAGE_TAG\}"):
        load(LoadOptions(paths, env, {k: v for k, v in variables.items() if k != "SCRAPER_IMAGE_TAG"}))


@pytest.mark.parametrize("env", ["local", "staging", "production"])
def test_overlay_scraper_platform_limit_is_the_gates_global_limit_in_every_environment(env: str) -> None:
    """The hard limit is kept twice (the gate paces, each scraper task takes a platform slot): one value. A platform
    limit above the gate's would not hold the limit at the platform; one below would let the FIFO queue grow."""
    variables = {"ENV": env, "AWS_REGION": "eu-west-1", "AWS_ACCOUNT_ID": "123456789012", "REDIS_URL": "rediss://r",
                 "SITE_URL": "https://s", "PRIVATE_SUBNET_A": "subnet-a", "PRIVATE_SUBNET_B": "subnet-b",
                 "SCRAPER_SECURITY_GROUP": "sg-1", "SCRAPER_IMAGE_TAG": "1.4.2"}
    stack = load(LoadOptions([str(REPO / "manifests"), str(REPO / "ecs-specs")], env, variables))
    gate = stack.get(ResourceKey(kind="Function", name="huntaze-rate-limiter"))
    task = stack.get(ResourceKey(kind="TaskDefinition", name="huntaze-onlyfans-scraper"))
    assert gate is not None and task is not None
    [container] = task.spec.container_definitions  # type: ignore[union-attr]
    platform = {e.name: e.value for e in container.environment}.get("HUNTAZE_PLATFORM_LIMIT")
    [global_limit] = [s for s in parse_limits(gate.spec.environment["HUNTAZE_RATE_LIMITS"])  # type: ignore[union-attr]
                      if s.scope == "global"]
    assert platform is not None, f"{env}: the scraper task sets no HUNTAZE_PLATFORM_LIMIT"
    assert parse_limit(str(platform)) == (global_limit.limit, global_limit.window_ms / 1000), (env, platform)
