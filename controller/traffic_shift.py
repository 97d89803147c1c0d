"""Traffic shifting of a Lambda alias between two versions: CodeDeploy's predefined strategies and the shift record.

Used by the Function kind (`controller.kinds.function`: the first step of a shift at apply), by `huntazectl rollout
... function` (`controller.commands.rollout`) and by whatever follows a shift to its end (below). A strategy is
one of CodeDeploy's predefined Lambda deployment configurations, named without the ``CodeDeployDefault.Lambda``
prefix (``AllAtOnce``, ``Canary10Percent5Minutes``, ``Linear10PercentEvery1Minute``...). `Strategy.steps` is its
schedule: (minutes after the start, weight of the new version), the last step at weight 1.0.

The shift in progress is recorded on the alias itself, in its ``Description`` (JSON, at most 256 characters), so
the record lives where the weights live: any follower, on any machine, reads the alias and knows the old and new
versions, the strategy, when the shift started, the alarms that stop it and its state (SHIFTING, COMPLETED,
ROLLED_BACK). A description that is not such a record (an alias made by hand) reads as no record.

Two followers exist. Without a deployment group, the record is the shift: the local plane's traffic shifter
(`localplane.traffic_shifter`) moves the weights and writes the record's end state. With one (the Function spec's
``deployment.deploymentGroupRef``), a CodeDeploy deployment shifts the alias (CodeDeploy on AWS, the local plane's
`localplane.codedeploy_engine` here), the record names it (``deployment``), and `resolve` reads its state from
CodeDeploy, since CodeDeploy never writes our record.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

ALIAS = "live"
DESCRIPTION_MAX = 256  # Lambda's limit on an alias description
SHIFTING, COMPLETED, ROLLED_BACK = "SHIFTING", "COMPLETED", "ROLLED_BACK"

# CodeDeploy's predefined Lambda deployment configurations (CodeDeployDefault.Lambda<name>).
PREDEFINED = (
    "AllAtOnce",
    "Canary10Percent5Minutes", "Canary10Percent10Minutes", "Canary10Percent15Minutes", "Canary10Percent30Minutes",
    "Linear10PercentEvery1Minute", "Linear10PercentEvery2Minutes", "Linear10PercentEvery3Minutes",
    "Linear10PercentEvery10Minutes",
)
_SHAPE = re.compile(r"^(?:Canary(\d+)Percent(\d+)Minutes?|Linear(\d+)PercentEvery(\d+)Minutes?)$")


@dataclass(frozen=True)
class Strategy:
    name: str
    kind: str  # "all-at-once", "canary" or "linear"
    percent: int = 100  # the weight of the first step (and of each linear step), in percent
    interval_minutes: int = 0

    def steps(self) -> list[tuple[int, float]]:
        """(minutes after the start, weight of the new version) for each step; the last one is 1.0."""
        if self.kind == "all-at-once":
            return [(0, 1.0)]
        if self.kind == "canary":
            return [(0, self.percent / 100), (self.interval_minutes, 1.0)]
        count = -(-100 // self.percent)  # steps until 100 %
        return [(i * self.interval_minutes, min(1.0, (i + 1) * self.percent / 100)) for i in range(count)]

    def weight_after(self, elapsed_minutes: float) -> float:
        """The new version's weight the schedule gives ``elapsed_minutes`` after the start (0.0 before it)."""
        weight = 0.0
        for minutes, step_weight in self.steps():
            if elapsed_minutes >= minutes:
                weight = step_weight
        return weight

    @property
    def total_minutes(self) -> int:
        return self.steps()[-1][0]


def parse(name: str) -> Strategy:
    """The strategy called ``name``; ValueError naming the predefined ones otherwise."""
    if name not in PREDEFINED:
        raise ValueError(f"unknown deployment strategy {name!r}: use one of CodeDeploy's predefined Lambda "
                         f"configurations: {', '.join(PREDEFINED)}")
    if name == "AllAtOnce":
        return Strategy(name, "all-at-once")
    match = _SHAPE.match(name)
    assert match is not None, name
    if match.group(1):
        return Strategy(name, "canary", int(match.group(1)), int(match.group(2)))
    return Strategy(name, "linear", int(match.group(3)), int(match.group(4)))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ShiftRecord:
    """The release the alias is in: from version ``old`` to ``new`` by ``strategy``, started at ``started``."""

    new: str
    old: str | None
    strategy: str
    started: str
    state: str = SHIFTING
    alarms: list[str] = field(default_factory=list)
    reason: str = ""
    deployment: str = ""  # the CodeDeploy deployment shifting the alias, when a deployment group does it

    def encode(self) -> str:
        body = {"huntaze": 1, **{k: v for k, v in asdict(self).items() if v not in ("", [], None)}}
        text = json.dumps(body, separators=(",", ":"))
        if len(text) > DESCRIPTION_MAX and self.reason:  # the reason is free text: shorten it, keep the rest exact
            over = len(text) - DESCRIPTION_MAX
            kept = self.reason[: max(0, len(self.reason) - over - 3)]
            return replace(self, reason=kept + "..." if kept else "").encode()
        return text

    def finished(self, state: str, reason: str) -> ShiftRecord:
        return replace(self, state=state, reason=reason)

    def weight_at(self, when: datetime, scale: float = 1.0) -> float:
        """The new version's weight the schedule gives at ``when`` (minutes divided by ``scale`` locally)."""
        return parse(self.strategy).weight_after((when - started_at(self)).total_seconds() / 60 * scale)

    def next_step_at(self, scale: float = 1.0) -> datetime | None:
        """When the schedule moves the weight next (None when at its last step or finished)."""
        if self.state != SHIFTING:
            return None
        start = started_at(self)
        for minutes, _ in parse(self.strategy).steps():
            at = start + timedelta(minutes=minutes / scale)
            if at > datetime.now(UTC):
                return at
        return None


def started_at(record: ShiftRecord) -> datetime:
    return datetime.strptime(record.started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def decode(description: str | None) -> ShiftRecord | None:
    """The record in an alias description, or None when the description is not one."""
    try:
        body: Any = json.loads(description or "")
    except ValueError:
        return None
    if not isinstance(body, dict) or body.pop("huntaze", None) != 1:
        return None
    body.setdefault("old", None)  # encode() leaves out a first release's empty ``old``
    try:
        return ShiftRecord(**body)
    except TypeError:
        return None


# CodeDeploy deployment status -> the record's state; a stopped or failed deployment is a rolled back release
# (with rollback, the alias serves the old version again; without, it stays where CodeDeploy stopped it).
_DEPLOYMENT_STATES = {"Succeeded": COMPLETED, "Stopped": ROLLED_BACK, "Failed": ROLLED_BACK}


def resolve(record: ShiftRecord | None, codedeploy: Any) -> ShiftRecord | None:
    """``record`` with its state and reason read from CodeDeploy when a deployment shifts the alias: on AWS
    CodeDeploy moves the alias but never writes our record, so its deployment status is the truth."""
    if record is None or not record.deployment:
        return record
    info = codedeploy.get_deployment(deploymentId=record.deployment)["deploymentInfo"]
    status = str(info.get("status"))
    state = _DEPLOYMENT_STATES.get(status, SHIFTING)
    error = (info.get("errorInformation") or {}).get("message")
    rollback = (info.get("rollbackInfo") or {}).get("rollbackMessage")
    reason = "; ".join(p for p in (f"CodeDeploy deployment {record.deployment} {status}", error, rollback) if p)
    return replace(record, state=state, reason=reason)


def alarms_fit(alarms: list[str]) -> bool:
    """Whether a record naming ``alarms`` fits in an alias description (with the longest other fields)."""
    longest = ShiftRecord(new="9" * 6, old="9" * 6, strategy=max(PREDEFINED, key=len), started=now_iso(),
                          state=ROLLED_BACK, alarms=alarms)
    return len(longest.encode()) <= DESCRIPTION_MAX


def weights(alias: dict[str, Any]) -> dict[str, float]:
    """Version -> share of invocations, from an alias (GetAlias/CreateAlias answer)."""
    extra = {v: float(w) for v, w in ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items()}
    return {str(alias["FunctionVersion"]): round(1.0 - sum(extra.values()), 6), **extra}
