"""The cancel criteria language: each operator, nesting, and hostile input from the network."""

from __future__ import annotations

import json

import pytest

from gofer.agent import criteria
from gofer.agent.criteria import MAX_DEPTH, MAX_NODES, CriteriaError
from gofer.errors import GoferError

DATA = {"task_id": 7, "batch": {"id": 3, "owner": "ops", "tags": ["a", "b"]}, "name": "sync"}


def matches(spec: object, value: object) -> bool:
    return criteria.compile(spec)(value)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"match": {"task_id": 7}}, True),
        ({"match": {"task_id": 8}}, False),
        ({"match": {"task_id": 7, "name": "sync"}}, True),
        ({"match": {"task_id": 7, "name": "other"}}, False),
        ({"match": {"batch": {"id": 3}}}, True),  # nested objects match as subsets
        ({"match": {"batch": {"id": 3, "owner": "dev"}}}, False),
        ({"match": {"batch": {"tags": ["a", "b"]}}}, True),
        ({"match": {"batch": {"tags": ["a"]}}}, False),  # lists compare whole
        ({"match": {"missing": None}}, False),  # a missing key never matches
        ({"match": {"batch": {}}}, True),  # an empty sub-object asks only for an object
        ({"match": {"name": {}}}, False),
    ],
)
def test_match(spec: object, expected: bool) -> None:
    assert matches(spec, DATA) is expected


@pytest.mark.parametrize("value", [None, 7, "sync", [DATA], True])
def test_match_applies_only_to_objects(value: object) -> None:
    assert matches({"match": {"task_id": 7}}, value) is False


@pytest.mark.parametrize(
    ("operand", "value", "expected"),
    [
        (7, 7, True),
        (7, 7.0, True),
        (7, 8, False),
        (7, "7", False),
        (1, True, False),  # JSON: true is not 1
        (True, 1, False),
        (True, True, True),
        (False, False, True),
        (None, None, True),
        (None, 0, False),
        ("x", "x", True),
        ([1, [2]], [1, [2]], True),
        ([1, 2], [1], False),
        ([1, 2], (1, 2), True),
        ({"a": 1}, {"a": 1}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),  # eq is exact; match is the subset test
        ({"a": 1}, {"b": 1}, False),
        ({"a": True}, {"a": 1}, False),
    ],
)
def test_eq_and_neq(operand: object, value: object, expected: bool) -> None:
    assert matches({"eq": operand}, value) is expected
    assert matches({"neq": operand}, value) is not expected


def test_in() -> None:
    assert matches({"in": [1, 2, 3]}, 2) is True
    assert matches({"in": [1, 2, 3]}, 4) is False
    assert matches({"in": [[1], {"a": 1}]}, {"a": 1}) is True
    assert matches({"in": [1]}, True) is False
    assert matches({"in": []}, 1) is False


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ({"gt": 5}, 6, True),
        ({"gt": 5}, 5, False),
        ({"gt": 5}, 5.5, True),
        ({"lt": 5}, 4, True),
        ({"lt": 5}, 5, False),
        ({"lt": 1.5}, 1, True),
        ({"gt": "2024-01-01"}, "2024-06-01", True),
        ({"lt": "b"}, "a", True),
        # values of another kind are not comparable: no match, no exception
        ({"gt": 5}, "6", False),
        ({"lt": "b"}, 1, False),
        ({"gt": 0}, True, False),
        ({"gt": 0}, None, False),
        ({"lt": 10}, [1], False),
        ({"gt": 0}, {"a": 1}, False),
        ({"gt": 1e308}, 10**400, True),
    ],
)
def test_gt_and_lt(spec: object, value: object, expected: bool) -> None:
    assert matches(spec, value) is expected


def test_and_or() -> None:
    between = {"and": [{"gt": 1}, {"lt": 10}]}
    assert matches(between, 5) is True
    assert matches(between, 10) is False
    either = {"or": [{"eq": 1}, {"in": [5, 6]}]}
    assert matches(either, 6) is True
    assert matches(either, 2) is False
    assert matches({"and": [{"eq": 3}]}, 3) is True


def test_nesting() -> None:
    spec = {
        "or": [
            {"match": {"task_id": 8}},
            {
                "and": [
                    {"match": {"batch": {"owner": "ops"}}},
                    {"or": [{"match": {"name": "sync"}}, {"match": {"name": "copy"}}]},
                ]
            },
        ]
    }
    assert matches(spec, DATA) is True
    assert matches(spec, {**DATA, "name": "delete"}) is False
    assert matches(spec, {"task_id": 8}) is True


def test_old_gofer_examples() -> None:
    """The old Builder's documented forms (two-item and/or, tuples) still compile."""
    assert matches({"match": {"id": 100}}, {"id": 100}) is True
    assert matches({"and": ({"gt": 1}, {"lt": 10})}, 5) is True
    assert matches({"or": ({"eq": 10}, {"in": [1, 2]})}, 2) is True
    assert matches({"or": ({"eq": 10}, {"or": ({"eq": 1}, {"eq": 2})})}, 1) is True


def test_from_json_text() -> None:
    spec = json.loads('{"and": [{"match": {"task_id": 7}}, {"neq": null}]}')
    assert matches(spec, DATA) is True


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (None, "one operator"),
        ([], "one operator"),
        ("eq", "one operator"),
        ({}, "one operator"),
        ({"eq": 1, "neq": 2}, "one operator"),
        ({"like": "x"}, "unknown operator 'like'"),
        ({1: 2}, "unknown operator 1"),
        ({"match": []}, "'match' takes a non-empty object"),
        ({"match": {}}, "'match' takes a non-empty object"),
        ({"match": {1: 2}}, "keys must be strings"),
        ({"in": 3}, "'in' takes a list"),
        ({"gt": [1]}, "'gt' takes a number or a string"),
        ({"lt": None}, "'lt' takes a number or a string"),
        ({"gt": True}, "'gt' takes a number or a string"),
        ({"and": []}, "'and' takes a non-empty list"),
        ({"or": {"eq": 1}}, "'or' takes a non-empty list"),
        ({"and": [{"eq": 1}, 5]}, "one operator"),
        ({"or": [{"nope": 1}]}, "unknown operator 'nope'"),
        ({"eq": {1, 2}}, "not a JSON value"),
        ({"eq": object()}, "not a JSON value"),
        ({"eq": float("nan")}, "NaN"),
    ],
)
def test_malformed(spec: object, message: str) -> None:
    with pytest.raises(CriteriaError, match=message) as caught:
        criteria.compile(spec)
    assert isinstance(caught.value, GoferError)


def test_depth_limit() -> None:
    nested: object = {"eq": 1}
    for _ in range((MAX_DEPTH - 1) // 2):  # each "and" adds an object and a list
        nested = {"and": [nested]}
    assert matches(nested, 1) is True
    with pytest.raises(CriteriaError, match="deeper"):
        criteria.compile({"and": [{"and": [nested]}]})


def test_hostile_depth_is_refused_without_recursion_errors() -> None:
    logic: object = {"eq": 1}
    operand: object = 1
    for _ in range(100_000):
        logic = {"or": [logic]}
        operand = [operand]
    for spec in (logic, {"eq": operand}, {"match": {"a": operand}}, {"and": operand}):
        with pytest.raises(CriteriaError):
            criteria.compile(spec)


def test_hostile_size_is_refused() -> None:
    with pytest.raises(CriteriaError, match="more than"):
        criteria.compile({"in": list(range(MAX_NODES + 1))})
    with pytest.raises(CriteriaError, match="more than"):
        criteria.compile({"or": [{"eq": n} for n in range(MAX_NODES)]})
    assert matches({"in": list(range(MAX_NODES - 10))}, 5) is True


def test_error_messages_stay_short() -> None:
    with pytest.raises(CriteriaError) as caught:
        criteria.compile({"gt": ["x" * 10_000] * 1000})
    assert len(str(caught.value)) < 300


def test_matching_deep_data_is_bounded_by_the_criteria() -> None:
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    assert matches({"eq": [[1]]}, deep) is False
    assert matches({"match": {"a": {"b": 1}}}, {"a": {"b": 1, "c": deep}}) is True
    assert matches({"eq": {"a": 1}}, {"a": deep}) is False
