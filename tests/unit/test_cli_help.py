"""Every command explains itself: each argument has help text, each command ends with examples."""

import argparse

import pytest

from driftline import __version__
from driftline.cli import main, parser


def commands(p: argparse.ArgumentParser, path=("driftline",)):
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


ALL = list(commands(parser()))


def test_the_walk_finds_every_command():
    names = {" ".join(path) for path, _ in ALL}
    assert {"driftline init", "driftline status", "driftline windows", "driftline replay", "driftline run",
            "driftline db upgrade", "driftline db reset-state", "driftline silence", "driftline alerts"} <= names


@pytest.mark.parametrize("path, p", ALL, ids=[" ".join(path) for path, _ in ALL])
def test_every_argument_has_help_and_every_command_examples(path, p, capsys):
    for action in p._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help and len(action.help) > 10, (path, action.dest)
        if action.option_strings and action.nargs != 0 and not action.required:
            assert "default" in action.help, (path, action.dest, action.help)
        if action.nargs != 0:
            assert "e.g." in action.help, (path, action.dest, action.help)
    assert p.epilog and "examples:\n  driftline " in p.epilog, path
    with pytest.raises(SystemExit) as done:
        p.parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.rstrip().splitlines()[-1].strip().startswith("driftline "), path


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"driftline {__version__}"
