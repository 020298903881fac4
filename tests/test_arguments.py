"""``optimize``'s arguments are declared once (lossearch.arguments): the signature, the
checks and the command line all follow the declarations, and disagreeing fails here."""

import inspect
import re
from pathlib import Path

import pytest

import lossearch
from lossearch._validation import problem, validate_params
from lossearch.arguments import OPTIMIZE_ARGUMENTS, REQUIRED
from lossearch.cli import make_parser
from lossearch.settings import SearchSettings

SIGNATURE = inspect.signature(inspect.unwrap(lossearch.optimize))


def test_every_parameter_of_optimize_is_declared_with_its_default():
    assert list(OPTIMIZE_ARGUMENTS) == list(SIGNATURE.parameters)
    for name, parameter in SIGNATURE.parameters.items():
        declared = OPTIMIZE_ARGUMENTS[name].default
        expected = REQUIRED if parameter.default is inspect.Parameter.empty else parameter.default
        assert declared == expected, name


def test_every_default_meets_its_own_constraints():
    for argument in OPTIMIZE_ARGUMENTS.values():
        if argument.default is not REQUIRED:
            assert problem(argument.default, argument.constraints) is None, argument.name


def test_a_function_whose_constraints_miss_a_parameter_fails_at_import():
    with pytest.raises(TypeError, match=r"no constraint for \['b'\]"):

        @validate_params({"a": [None]}, complete=True)
        def f(a=None, b=None):
            pass

    with pytest.raises(TypeError, match=r"constraints for unknown \['c'\]"):

        @validate_params({"c": [None]})
        def g(a=None):
            pass


def test_the_search_settings_take_each_search_argument():
    """SearchSettings' fields are optimize's arguments (the trial runner takes the rest),
    but for what build_session derives from the storage."""
    fields = set(SearchSettings.__dataclass_fields__)
    assert fields <= set(SIGNATURE.parameters)


@pytest.mark.parametrize("command", ["demo", "optimize", "worker"])
def test_the_command_line_options_are_the_declared_ones(command):
    parser = make_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    dests = {a.dest for a in sub._actions}
    flagged = {name for name, a in OPTIMIZE_ARGUMENTS.items() if a.flag}
    assert flagged <= dests
    for name in flagged:
        action = next(a for a in sub._actions if a.dest == name)
        assert OPTIMIZE_ARGUMENTS[name].flag in action.option_strings


@pytest.mark.parametrize(
    ("flag", "text", "argument", "value"),
    [
        ("--trials", "0", "n_trials", 0),
        ("--epochs", "-3", "epochs", -3),
        ("--validation", "1.5", "validation", 1.5),
        ("--timeout", "-5", "timeout", -5.0),
        ("--cv", "1", "cv", 1),
        ("--confirm-seeds", "-1", "confirm_seeds", -1),
        ("--selection", "lucky", "selection", "lucky"),
        ("--recycle-every", "-2", "recycle_every", -2),
        ("--seed", "-1", "seed", -1),
    ],
)
def test_an_option_is_checked_as_optimize_checks_its_argument(flag, text, argument, value, capsys):
    with pytest.raises(SystemExit) as done:
        make_parser().parse_args(["optimize", "m:b", "--data", "m:d", flag, text])
    assert done.value.code == 2
    said = capsys.readouterr().err
    expected = problem(value, OPTIMIZE_ARGUMENTS[argument].constraints)
    assert f"{flag}: {expected}" in said
    with pytest.raises(ValueError, match=re.escape(f"{argument}: {expected}")):
        lossearch.optimize(lambda: None, ([0], [0]), **{argument: value})


def test_options_parse_to_what_optimize_takes():
    args = make_parser().parse_args(
        ["optimize", "m:b", "--data", "m:d", "--cv", "0", "--no-decision", "--trials", "7"]
    )
    assert (args.cv, args.decision, args.n_trials, args.recycle_every) == (None, False, 7, None)
    assert args.show_progress is True and args.seed == 0  # the command line's own seed
    worker = ["worker", "m:b", "--data", "m:d", "--storage", "s", "--study", "x"]
    assert make_parser().parse_args(worker).seed is None


def test_an_argument_says_what_it_does_and_its_off_flag_what_turning_it_off_does():
    for argument in OPTIMIZE_ARGUMENTS.values():
        inverted = argument.flag and argument.flag.startswith("--no-")
        assert bool(inverted) == bool(argument.off_help), argument.name
        if inverted:
            assert argument.help != argument.off_help
            assert not argument.help.startswith(("no ", "keep ", "search the whole")), argument.name


def _documented() -> tuple[str, set[str]]:
    """docs/arguments.md: its signature block, and the names in its table's first column."""
    text = (Path(__file__).parent.parent / "docs" / "arguments.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    table = text.split("\n| argument |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    names = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    return " ".join(block.split()), names


def test_the_arguments_page_shows_the_declared_signature_and_every_argument():
    block, names = _documented()
    shown = ", ".join(
        name if a.default is REQUIRED else f"{name}={a.default!r}".replace("'", '"')
        for name, a in OPTIMIZE_ARGUMENTS.items()
    )
    assert " ".join(shown.replace("data, ", "data, *, ", 1).split()) in block
    assert set(OPTIMIZE_ARGUMENTS) <= names
