"""Every alarm of manifests/alarms.yaml points to a runbook section whose first step is a huntazectl command."""

from __future__ import annotations

import re

import yaml

from .conftest import REPO


def sections() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in (REPO / "docs" / "runbook.md").read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            out[current] = []
        elif current and re.match(r"^\d+\. ", line):
            out[current].append(line)
    return out


def test_runbook_every_alarm_links_a_section_whose_first_step_is_huntazectl() -> None:
    docs = [d for d in yaml.safe_load_all((REPO / "manifests" / "alarms.yaml").read_text()) if d]
    runbook = sections()
    assert len(docs) == 11
    for doc in docs:
        description = doc["spec"]["alarmDescription"]
        match = re.search(r"Runbook: docs/runbook\.md#([a-z0-9-]+)$", description)
        assert match, f"{doc['metadata']['name']}: description has no runbook link: {description!r}"
        steps = runbook.get(match.group(1))
        assert steps, f"{doc['metadata']['name']}: docs/runbook.md has no section {match.group(1)!r} with steps"
        assert re.match(r"^1\. `huntazectl [a-z]", steps[0]), f"{match.group(1)}: first step {steps[0]!r}"
        assert len(description) <= 1024  # CloudWatch's AlarmDescription limit
