"""The registry is the one list of kinds: names, references, delete order, not-found codes and help texts all
come from the kind modules, so adding a kind is one module (plus its tests). Checked for every registered kind,
never for a hand-written list."""

from __future__ import annotations

import pytest

from controller import cli
from controller.kinds import registry
from controller.kinds.base import Kind
from controller.packaging import REPO_ROOT
from controller.specs import LoadOptions, load
from controller.specs.fields import SpecModel

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
