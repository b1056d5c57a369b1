"""The README's commands are the project's: every command line it shows names a command, script or
benchmark that exists, with options it takes. (The README's sample outputs: test_samples.py.)"""

import re
import shlex
from pathlib import Path

import click
import pytest

from digitrec.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def _command_lines() -> list[list[str]]:
    """Every line of the README's bash blocks, split as the shell splits it (comments dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    lines = [shlex.split(line, comments=True) for block in blocks for line in block.splitlines()]
    return [words for words in lines if words]


def _flags(words: list[str]) -> list[str]:
    return [w.split("=")[0] for w in words if w.startswith("--")]


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


LINES = _command_lines()


def test_the_readme_shows_commands_of_every_kind():
    kinds = {words[0] if words[0] != "python" else words[1].split("/")[0] for words in LINES}
    assert {"digitrec", "bash", "benchmarks", "pip", "curl"} <= kinds, kinds


@pytest.mark.parametrize("words", [w for w in LINES if w[0] == "digitrec"], ids=" ".join)
def test_each_digitrec_command_in_the_readme_exists_with_its_options(words):
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, words[1])
    assert command is not None, f"no `digitrec {words[1]}`"
    unknown = set(_flags(words)) - _options(command)
    assert not unknown, f"`digitrec {words[1]}` has no {sorted(unknown)}"


@pytest.mark.parametrize("words", [w for w in LINES if w[0] in ("bash", "python")], ids=" ".join)
def test_each_script_and_benchmark_in_the_readme_exists_with_its_options(words):
    path = ROOT / words[1]
    assert path.is_file(), f"{words[1]} is not in the repository"
    if path.suffix == ".py":  # a benchmark's options are its argparse arguments, named in its source
        source = path.read_text()
        unknown = [f for f in _flags(words) if f'"{f}"' not in source]
        assert not unknown, f"{words[1]} takes no {unknown}"
