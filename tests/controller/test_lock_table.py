"""The stack lock's table (controller/lock_table.py): when the stack declares it (manifests/
controller-lease-table.yaml), the lock creates it from that spec, so the first apply does not report it updated
and the second one writes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.aws import client
from controller.lease import LEASE_TABLE

Ctl = Callable[..., tuple[int, str, str]]
LEASE_TABLE_SPEC = Path(__file__).parents[2] / "manifests" / "controller-lease-table.yaml"


def _stack(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(LEASE_TABLE_SPEC, specs / LEASE_TABLE_SPEC.name)
    (specs / "queue.yaml").write_text("apiVersion: huntaze.io/v1\nkind: Queue\nmetadata:\n  name: t-locked\n"
                                      "spec:\n  visibilityTimeout: 45\n")
    return specs


def _line(out: str, resource: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(resource))


def test_apply_lock_table_created_from_its_spec_is_unchanged_then_second_apply_writes_nothing(
    aws_calls: Any, ctl: Ctl, tmp_path: Path
) -> None:
    args = ["apply", "-f", str(_stack(tmp_path)), "--env", "local"]
    code, out, err = ctl(*args)
    assert code == 0, out + err
    assert f"created the lock table {LEASE_TABLE} from its Table spec" in err
    assert _line(out, f"Table/{LEASE_TABLE}").split()[1] == "unchanged", out  # never "updated [...]"
    assert _line(out, "Queue/t-locked").split()[1] == "created", out
    db = client("dynamodb")
    backups = db.describe_continuous_backups(TableName=LEASE_TABLE)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert db.describe_time_to_live(TableName=LEASE_TABLE)["TimeToLiveDescription"]["AttributeName"] == "expiresAt"

    aws_calls.clear()
    code, out, err = ctl(*args)
    assert code == 0, out + err
    assert "created the lock table" not in err
    assert _line(out, f"Table/{LEASE_TABLE}").split()[1] == "unchanged", out
    assert aws_calls.writes == [], aws_calls.writes  # the lock's own item updates aside


def test_apply_without_the_table_spec_bootstraps_an_unowned_lock_table(
    aws_calls: Any, ctl: Ctl, tmp_path: Path
) -> None:
    specs = _stack(tmp_path)
    (specs / LEASE_TABLE_SPEC.name).unlink()
    code, out, err = ctl("apply", "-f", str(specs), "--env", "local")
    assert code == 0 and f"created the lock table {LEASE_TABLE}\n" in err, out + err
    db = client("dynamodb")
    arn = db.describe_table(TableName=LEASE_TABLE)["Table"]["TableArn"]
    tags = {t["Key"]: t["Value"] for t in db.list_tags_of_resource(ResourceArn=arn)["Tags"]}
    assert "huntaze.io/stack" not in tags  # unowned: `apply --prune` never deletes the lock it holds
