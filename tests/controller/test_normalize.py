"""Table tests for every normalizer in controller.normalize."""

from __future__ import annotations

from typing import Any

import pytest

from controller import normalize as n


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ('{"a": 1, "b": [1, 2]}', {"b": [1, 2], "a": 1}),
        ("", None),
        (None, None),
        ("  ", None),
        ({"x": (1, 2)}, {"x": [1, 2]}),
        ("[1, 2]", [1, 2]),
        ('"text"', "text"),
    ],
)
def test_json_text_inputs_parse_to_canonical_values(given: Any, expected: Any) -> None:
    assert n.json_text(given) == expected


def test_json_text_invalid_json_raises_value_error_naming_position() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        n.json_text("{nope")


TRUST = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"Statement": TRUST}, {"Version": "2012-10-17", "Statement": [TRUST]}),
        (
            {"Statement": [{"Effect": "Allow", "Action": ["b", "a"], "Resource": "*"}]},
            {"Statement": [{"Effect": "Allow", "Action": ["a", "b"], "Resource": ["*"]}]},
        ),
        (
            {"Statement": [{"Effect": "Allow", "Action": "a", "Resource": "1"}, {"Effect": "Deny", "Action": "b",
                                                                                "Resource": "2"}]},
            {"Statement": [{"Effect": "Deny", "Action": "b", "Resource": "2"}, {"Effect": "Allow", "Action": "a",
                                                                               "Resource": "1"}]},
        ),
        ({"Statement": [{**TRUST, "Sid": ""}]}, {"Statement": [TRUST]}),
        (
            '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}',
            {"Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]},
        ),
        (
            "%7B%22Statement%22%3A%20%5B%5D%7D",
            {"Version": "2012-10-17", "Statement": []},
        ),
        (
            {"Statement": [{"Effect": "Allow", "Action": "x", "Resource": "*",
                            "Condition": {"StringEquals": {"k": "v"}}}]},
            {"Statement": [{"Effect": "Allow", "Action": ["x"], "Resource": "*",
                            "Condition": {"StringEquals": {"k": ["v"]}}}]},
        ),
    ],
)
def test_policy_document_equivalent_forms_normalize_equal(left: Any, right: Any) -> None:
    assert n.policy_document(left) == n.policy_document(right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"Statement": [{"Effect": "Allow", "Action": "a", "Resource": "*"}]},
         {"Statement": [{"Effect": "Deny", "Action": "a", "Resource": "*"}]}),
        ({"Statement": [{"Effect": "Allow", "Action": "a", "Resource": "*"}]},
         {"Statement": [{"Effect": "Allow", "Action": ["a", "b"], "Resource": "*"}]}),
    ],
)
def test_policy_document_different_grants_normalize_unequal(left: Any, right: Any) -> None:
    assert n.policy_document(left) != n.policy_document(right)


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), ("", None)],
)
def test_policy_document_empty_inputs_give_none(given: Any, expected: Any) -> None:
    assert n.policy_document(given) == expected


def test_policy_document_non_object_raises_value_error() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        n.policy_document("[1]")


@pytest.mark.parametrize(
    ("attributes", "field", "expected"),
    [
        ({"VisibilityTimeout": "300"}, "visibilityTimeout", 300),
        ({}, "visibilityTimeout", 30),
        ({"FifoQueue": "true"}, "fifoQueue", True),
        ({}, "fifoQueue", False),
        ({"FifoQueue": "true", "ContentBasedDeduplication": "TRUE"}, "contentBasedDeduplication", True),
        ({"MessageRetentionPeriod": "1209600"}, "messageRetentionPeriod", 1209600),
        ({"RedrivePolicy": '{"deadLetterTargetArn":"arn:q","maxReceiveCount":"3"}'}, "redrivePolicy",
         {"deadLetterTargetArn": "arn:q", "maxReceiveCount": 3}),
        ({"RedrivePolicy": '{"deadLetterTargetArn":"arn:q","maxReceiveCount":3}'}, "redrivePolicy",
         {"deadLetterTargetArn": "arn:q", "maxReceiveCount": 3}),
        ({"RedrivePolicy": ""}, "redrivePolicy", None),
        ({"KmsMasterKeyId": "alias/aws/sqs", "SqsManagedSseEnabled": "true"}, "sqsManagedSseEnabled", False),
        ({"SqsManagedSseEnabled": "false"}, "sqsManagedSseEnabled", False),
        ({}, "sqsManagedSseEnabled", True),
        ({"KmsDataKeyReusePeriodSeconds": "300"}, "kmsDataKeyReusePeriodSeconds", None),
        ({"KmsMasterKeyId": "k"}, "kmsDataKeyReusePeriodSeconds", 300),
    ],
)
def test_sqs_attributes_strings_become_typed_fields(attributes: dict[str, str], field: str, expected: Any) -> None:
    assert n.sqs_attributes(attributes)[field] == expected


def test_sqs_attributes_standard_queue_has_no_fifo_only_fields() -> None:
    assert "contentBasedDeduplication" not in n.sqs_attributes({"ContentBasedDeduplication": "false"})


def test_sqs_attribute_map_round_trips_typed_fields() -> None:
    fields = {"visibilityTimeout": 300, "fifoQueue": True,
              "redrivePolicy": {"deadLetterTargetArn": "arn:q", "maxReceiveCount": 3}}
    api = n.SQS_QUEUE_ATTRIBUTES.to_api(fields)
    assert api["VisibilityTimeout"] == "300" and api["FifoQueue"] == "true"
    assert n.sqs_attributes(api)["redrivePolicy"] == fields["redrivePolicy"]


def test_to_bool_rejects_non_boolean_text() -> None:
    with pytest.raises(ValueError, match="true or false"):
        n.to_bool("yes")


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([{"Key": "a", "Value": "1"}], {"a": "1"}),
        ([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}], {"a": "1", "b": "2"}),
        (None, {}),
        ([], {}),
    ],
)
def test_tags_from_list_both_casings_give_dict(items: Any, expected: dict[str, str]) -> None:
    assert n.tags_from_list(items) == expected


def test_tags_to_list_is_sorted_and_inverts_tags_from_list() -> None:
    listed = n.tags_to_list({"b": "2", "a": "1"})
    assert listed == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    assert n.tags_from_list(listed) == {"a": "1", "b": "2"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"a": None, "b": {"c": None, "d": 1}}, {"b": {"d": 1}}),
        ([{"a": None}], [{}]),
        (3, 3),
    ],
)
def test_drop_none_removes_unset_entries(given: Any, expected: Any) -> None:
    assert n.drop_none(given) == expected


def test_sort_by_orders_dicts_by_key() -> None:
    items = [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    assert [i["name"] for i in n.sort_by(items, "name")] == ["A", "B"]


def test_unordered_lists_with_same_items_compare_equal() -> None:
    assert n.unordered([{"a": 1}, {"b": 2}]) == n.unordered([{"b": 2}, {"a": 1}])


def test_user_tags_drops_aws_reserved_tags() -> None:
    assert n.user_tags({"aws:cloudformation:stack": "x", "team": "y"}) == {"team": "y"}
