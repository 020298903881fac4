"""Declared argument constraints: what they accept, and messages that say what to pass."""

import numpy as np
import pytest

from lossearch._validation import (
    BOOL,
    NON_EMPTY_STR,
    Interval,
    Options,
    Satisfies,
    check,
    validate_params,
)


@pytest.mark.parametrize(
    ("constraints", "good", "bad", "message"),
    [
        ([Interval(int, 1, None)], [1, np.int64(7)], [0, 1.5, True, "3"], "an integer >= 1"),
        (
            [Interval(float, 0, 1, low_open=True, high_open=True)],
            [0.5, 1e-9],
            [0, 1, float("nan"), "0.5"],
            "a number in (0, 1)",
        ),
        ([None, Interval(float, 0, None, low_open=True)], [None, 3], [-1], "a number > 0 or None"),
        ([Options(("robust", "best"))], ["best"], ["luckiest", 1], "one of ['robust', 'best']"),
        ([Options((-1,), "-1 for all cores")], [-1], [True, -1.0], "-1 for all cores"),
        ([BOOL], [True, False], [1, "yes", None], "True or False"),
        ([NON_EMPTY_STR], ["x"], ["", "  ", 3], "a non-empty string"),
        ([Satisfies(lambda v: v == 2, "two")], [2], [3], "two"),
    ],
)
def test_constraints_accept_and_reject_naming_what_was_expected(constraints, good, bad, message):
    for value in good:
        check("arg", value, constraints)
    for value in bad:
        with pytest.raises(ValueError) as info:
            check("arg", value, constraints)
        assert str(info.value) == f"arg: expected {message}, got {value!r}."


def test_validate_params_checks_defaults_and_keywords_before_the_body_runs():
    calls = []

    @validate_params({"n": [Interval(int, 1, None)]})
    def f(x, *, n=1):
        calls.append(n)

    f(0, n=3)
    with pytest.raises(ValueError, match="n: expected an integer >= 1, got 0"):
        f(0, n=0)
    assert calls == [3]


def test_constraints_for_a_missing_argument_are_a_programming_error():
    with pytest.raises(TypeError, match="unknown"):

        @validate_params({"m": [BOOL]})
        def f(n):
            pass
