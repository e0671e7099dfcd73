"""The criteria language of ``Admin.cancel(criteria=...)``: which requests to cancel.

A criterion is a JSON object with one operator; it applies to one value
(a request's user ``data``, or a dict of the request's fields)::

    {"eq": v}              the value equals v
    {"neq": v}             it does not
    {"in": [v1, v2, ...]}  it equals one of them
    {"gt": x}, {"lt": x}   it is greater (less) than x, a number or a string;
                           a value of another kind never is
    {"match": {k: v, ...}} it is an object holding every key k with value v;
                           where v is an object, the value's k is matched the
                           same way (a subset, recursively); otherwise equal
    {"and": [c1, c2, ...]} every criterion applies
    {"or": [c1, c2, ...]}  at least one applies

Example: ``{"or": [{"match": {"task_id": 7}}, {"match": {"batch": {"id": 3}}}]}``
cancels the requests whose data is ``{"task_id": 7, ...}`` or
``{"batch": {"id": 3, ...}, ...}``.

Equality is JSON's: ``true`` is not ``1``, ``1`` equals ``1.0``, lists are
equal item by item, objects key by key.

Criteria come from the network, so :func:`compile` checks them before
anything runs: one operator per object, operands of the right kind, no
empty ``match``, ``and`` or ``or`` (which would match everything or
nothing by accident), at most :data:`MAX_DEPTH` levels of nesting and
:data:`MAX_NODES` values in all. Matching never raises: values that cannot
be compared do not match. The work of one match is bounded by the size of
the criteria, whatever the data.

Unlike the old gofer, a ``match`` key missing from the data does not match.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping

from gofer.errors import GoferError

#: The deepest nesting of objects and lists accepted, the criteria itself being level 1.
MAX_DEPTH = 32

#: The most values (objects, lists and scalars together) accepted in one criteria.
MAX_NODES = 1000

Predicate = Callable[[object], bool]


class CriteriaError(GoferError):
    """Criteria are malformed: unknown operator, wrong operand, too deep or too large."""


class _Budget:
    """Counts the values of one criteria as they are checked."""

    def __init__(self) -> None:
        self.nodes = 0

    def enter(self, depth: int) -> None:
        """Account for one value at ``depth``.

        Raises:
            CriteriaError: the criteria is too deep or too large.
        """
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise CriteriaError(f"criteria nested deeper than {MAX_DEPTH} levels")
        if self.nodes > MAX_NODES:
            raise CriteriaError(f"criteria holds more than {MAX_NODES} values")


def compile(criteria: object) -> Predicate:
    """Check criteria and turn them into a predicate.

    Args:
        criteria: a criterion (see the module documentation), as decoded from JSON.

    Returns:
        A function of one value, true when the criteria apply to it.

    Raises:
        CriteriaError: the criteria are malformed, too deep or too large.
    """
    return _criterion(criteria, 1, _Budget())


def _criterion(node: object, depth: int, budget: _Budget) -> Predicate:
    budget.enter(depth)
    if not isinstance(node, Mapping) or len(node) != 1:
        raise CriteriaError(
            f"a criterion is an object with one operator ({', '.join(_OPERATORS)}), "
            f"not {_show(node)}"
        )
    ((operator, operand),) = node.items()
    build = _OPERATORS.get(operator) if isinstance(operator, str) else None
    if build is None:
        raise CriteriaError(
            f"unknown operator {_show(operator)}: expected one of {', '.join(_OPERATORS)}"
        )
    return build(operator, operand, depth + 1, budget)


def _check_json(value: object, depth: int, budget: _Budget) -> None:
    """Check that an operand is plain JSON, counting its values."""
    budget.enter(depth)
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CriteriaError(f"object keys must be strings, not {_show(key)}")
            _check_json(item, depth + 1, budget)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_json(item, depth + 1, budget)
    elif isinstance(value, float) and math.isnan(value):
        raise CriteriaError("NaN is not a value criteria can compare with")
    elif value is not None and not isinstance(value, (str, int, float)):
        raise CriteriaError(f"not a JSON value: {_show(value)}")


def _list(operator: str, operand: object, empty_ok: bool) -> list[object] | tuple[object, ...]:
    if not isinstance(operand, (list, tuple)) or (not operand and not empty_ok):
        wanted = "a list" if empty_ok else "a non-empty list"
        raise CriteriaError(f"{operator!r} takes {wanted}, not {_show(operand)}")
    return operand


def _build_eq(operator: str, operand: object, depth: int, budget: _Budget) -> Predicate:
    _check_json(operand, depth, budget)
    if operator == "neq":
        return lambda value: not _equal(value, operand)
    return lambda value: _equal(value, operand)


def _build_in(operator: str, operand: object, depth: int, budget: _Budget) -> Predicate:
    options = _list(operator, operand, empty_ok=True)
    _check_json(options, depth, budget)
    return lambda value: any(_equal(value, option) for option in options)


def _build_order(operator: str, operand: object, depth: int, budget: _Budget) -> Predicate:
    _check_json(operand, depth, budget)
    kind = _kind(operand)
    if kind is None:
        raise CriteriaError(f"{operator!r} takes a number or a string, not {_show(operand)}")
    if operator == "gt":
        return lambda value: _kind(value) == kind and value > operand  # type: ignore[operator]
    return lambda value: _kind(value) == kind and value < operand  # type: ignore[operator]


def _build_match(operator: str, operand: object, depth: int, budget: _Budget) -> Predicate:
    if not isinstance(operand, Mapping) or not operand:
        raise CriteriaError(f"{operator!r} takes a non-empty object, not {_show(operand)}")
    _check_json(operand, depth, budget)
    return lambda value: _contains(value, operand)


def _build_logic(operator: str, operand: object, depth: int, budget: _Budget) -> Predicate:
    items = _list(operator, operand, empty_ok=False)
    budget.enter(depth)
    predicates = [_criterion(item, depth + 1, budget) for item in items]
    if operator == "and":
        return lambda value: all(predicate(value) for predicate in predicates)
    return lambda value: any(predicate(value) for predicate in predicates)


_OPERATORS: Mapping[str, Callable[[str, object, int, _Budget], Predicate]] = {
    "match": _build_match,
    "eq": _build_eq,
    "neq": _build_eq,
    "in": _build_in,
    "gt": _build_order,
    "lt": _build_order,
    "and": _build_logic,
    "or": _build_logic,
}


def _kind(value: object) -> str | None:
    """The ordering kind of a value: numbers with numbers, strings with strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _equal(value: object, operand: object) -> bool:
    """JSON equality; recursion is bounded by the operand, already checked to be shallow."""
    if isinstance(operand, bool) or isinstance(value, bool):
        return isinstance(operand, bool) and isinstance(value, bool) and value is operand
    if operand is None:
        return value is None
    if isinstance(operand, (str, int, float)):
        return _kind(value) == _kind(operand) and value == operand
    if isinstance(operand, (list, tuple)):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(operand)
            and all(_equal(item, wanted) for item, wanted in zip(value, operand))
        )
    if isinstance(operand, Mapping):
        return (
            isinstance(value, Mapping)
            and len(value) == len(operand)
            and all(key in value and _equal(value[key], wanted) for key, wanted in operand.items())
        )
    return False


def _contains(value: object, pattern: Mapping[str, object]) -> bool:
    """``value`` is an object holding ``pattern``: sub-objects as subsets, the rest equal."""
    if not isinstance(value, Mapping):
        return False
    for key, wanted in pattern.items():
        if key not in value:
            return False
        actual = value[key]
        matched = (
            _contains(actual, wanted) if isinstance(wanted, Mapping) else _equal(actual, wanted)
        )
        if not matched:
            return False
    return True


_SHORT = reprlib.Repr()
_SHORT.maxlevel = 3
_SHORT.maxstring = 40
_SHORT.maxother = 40


def _show(value: object) -> str:
    """A short repr for an error message; safe for huge or deeply nested criteria."""
    return _SHORT.repr(value)
