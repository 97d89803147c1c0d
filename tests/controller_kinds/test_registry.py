"""The registry is the one list of kinds: names, references, delete order, not-found codes and help texts all
come from the kind modules, so adding a kind is one module (plus its tests). Checked for every registered kind,
never for a hand-written list."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from controller import cli
from controller.errors import SpecError
from controller.kinds import registry
from controller.kinds.base import Context, Kind, LiveResource
from controller.model import Manifest, ResourceKey
from controller.packaging import REPO_ROOT
from controller.specs import LoadOptions, load
from controller.specs.fields import ANY_VALUE_SOURCE, SpecModel, ref_kinds

KINDS = registry.known_kinds()
FULL_STACK = [str(REPO_ROOT / "manifests"), str(REPO_ROOT / "ecs-specs")]
VARIABLES = {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012",
             "REDIS_URL": "redis://127.0.0.1:6379/0", "SITE_URL": "http://127.0.0.1:8900"}


def test_registry_kind_names_from_file_names_match_the_registered_kinds() -> None:
    assert registry.kind_names() == KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_registry_kind_is_typed_over_its_spec_model_and_declares_not_found_codes(kind: str) -> None:
    handler = registry.handler(kind)
    assert isinstance(handler, Kind)
    assert issubclass(handler.spec_model, SpecModel)
    assert handler.not_found_codes, f"{kind}: declare the AWS codes meaning 'does not exist' in not_found_codes"


def test_registry_delete_order_puts_every_kind_before_the_kinds_it_references() -> None:
    order = registry.delete_order()
    assert sorted(order) == KINDS
    position = {kind: i for i, kind in enumerate(order)}
    for kind in KINDS:
        for target in registry.referenced_kinds(kind):
            if target in position:
                assert position[kind] < position[target], f"{kind} must be deleted before {target}"


def test_registry_delete_order_of_a_subset_keeps_the_same_relative_order() -> None:
    full = registry.delete_order()
    subset = [k for k in KINDS if k not in {"Role", "Queue"}]
    assert registry.delete_order(subset) == [k for k in full if k in subset]


def test_registry_kinds_taking_values_are_deleted_before_every_kind_giving_one() -> None:
    """A `valueFrom` can name any kind with a `value_output`: what holds one goes first (a TaskDefinition before
    the Queue and Secret its containers read, a Function before the Table its environment names)."""
    sources = set(registry.value_sources())
    assert {"Queue", "Secret", "Table", "Topic", "Role"} <= sources
    takers = [k for k in KINDS if ANY_VALUE_SOURCE in ref_kinds(registry.handler(k).spec_model)]
    assert {"TaskDefinition", "Function"} <= set(takers)
    order = registry.delete_order()
    for taker in takers:
        assert sources - {taker} <= registry.referenced_kinds(taker)
        for source in sources - {taker}:
            assert order.index(taker) < order.index(source), f"{taker} must be deleted before {source}"


class WidgetSpec(SpecModel):
    size: int = 1


class WidgetKind(Kind[WidgetSpec]):
    """A kind that exists only in this test, declared as a new module would declare it: nothing else names it."""

    kind = "Widget"
    spec_model = WidgetSpec
    not_found_codes = frozenset({"WidgetNotFound"})
    value_output = "id"

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        return {"size": self.spec(manifest).size}

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        return None

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        raise NotImplementedError("no AWS in this test")

    def update(self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str],
               ctx: Context) -> LiveResource:
        raise NotImplementedError("no AWS in this test")

    def delete(self, live: LiveResource, ctx: Context) -> None:
        raise NotImplementedError("no AWS in this test")

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        return []


WIDGET_STACK = """apiVersion: huntaze.io/v1
kind: Widget
metadata: {name: w}
spec: {size: 2}
---
apiVersion: huntaze.io/v1
kind: TaskDefinition
metadata: {name: td}
spec:
  family: td
  cpu: 256
  memory: 512
  containerDefinitions:
    - name: c
      image: busybox
      environment:
        - {name: WIDGET, valueFrom: {widgetRef: w}}
      secrets:
        - {name: WIDGET_ARN, valueFrom: {widgetRef: w, output: arn}}
"""


def test_registry_a_new_kind_with_a_value_output_is_taken_from_with_no_edit_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stack.yaml").write_text(WIDGET_STACK)
    options = LoadOptions([str(tmp_path)], "local", VARIABLES)
    # Before the kind is registered, both the Widget and the widgetRef naming it are refused: what makes
    # widgetRef valid (and orders the TaskDefinition's delete before the Widget's) is the registration alone.
    with pytest.raises(SpecError, match=re.escape("valueFrom.widgetRef: no kind gives values through widgetRef")):
        load(options)

    monkeypatch.setitem(registry._HANDLERS, "Widget", WidgetKind())  # what @register does on import
    stack = load(options)
    [task] = [m for m in stack.manifests if m.kind == "TaskDefinition"]
    widget = ResourceKey(kind="Widget", name="w")
    assert registry.handler("TaskDefinition").references(task) == [widget]
    assert [[m.kind for m in tier] for tier in stack.tiers] == [["Widget"], ["TaskDefinition"]]
    order = registry.delete_order()
    assert order.index("TaskDefinition") < order.index("Widget")
    assert order.index("Function") < order.index("Widget")

    container = task.spec.container_definitions[0]
    ctx = Context(stack="s", region="us-east-1", account_id="123456789012", client=lambda _: None,
                  resolved={widget: {"id": "w-0001", "arn": "arn:aws:widget:us-east-1:123456789012:widget/w"}})
    assert container.environment[0].value_from.resolve(ctx) == "w-0001"  # the kind's value_output
    assert container.secrets[0].value_from.resolve(ctx) == "arn:aws:widget:us-east-1:123456789012:widget/w"


def test_registry_references_of_the_full_stack_are_declared_in_the_spec_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `references()` returns is what the RefTo marks say, so the derived delete order is complete."""
    monkeypatch.chdir(REPO_ROOT)
    stack = load(LoadOptions(FULL_STACK, "local", VARIABLES))
    for manifest in stack.manifests:
        handler = registry.handler(manifest.kind)
        declared = registry.referenced_kinds(manifest.kind) | {manifest.kind}
        undeclared = {ref.kind for ref in handler.references(manifest)} - declared
        assert not undeclared, f"{manifest.key} references {undeclared} without a RefTo mark in its spec model"


def test_get_help_lists_every_registered_kind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["get", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for kind in KINDS:
        assert kind in text
