"""Report formatting: long values whole, documents as a unified diff (desired then live), masked secrets."""

from __future__ import annotations

from controller.diff import ABSENT, FieldDiff, Verdict
from controller.report import field_lines, show


def _policy(resource: str) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": f"S{i}", "Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"],
         "Resource": f"arn:aws:sqs:us-east-1:123456789012:queue-{i}"} for i in range(4)] + [
        {"Sid": "Widened", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": resource}]}


def test_field_lines_widened_policy_is_a_unified_diff_desired_then_live() -> None:
    desired = _policy("arn:aws:secretsmanager:us-east-1:123456789012:secret:redis/auth-token-??????")
    field = FieldDiff("inlinePolicies.gate", desired, _policy("*"), Verdict.CHANGED)
    text = "\n".join(field_lines(field))
    assert "--- desired (spec)" in text and "+++ live (AWS)" in text
    assert '-      "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:redis/auth-token-??????"' in text
    assert '+      "Resource": "*"' in text
    assert "..." not in text


def test_field_lines_long_scalar_is_shown_whole() -> None:
    long = "x" * 500
    (line,) = field_lines(FieldDiff("description", long, "short", Verdict.CHANGED))
    assert long in line and line.index("desired") < line.index("live")


def test_show_masks_url_password_and_marks_absent() -> None:
    assert show("rediss://:hunter2@cache:6379/0") == '"rediss://:***@cache:6379/0"'
    assert show(ABSENT) == "<absent>"
