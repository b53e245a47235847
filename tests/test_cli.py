"""The ``nangluc`` entry point wires every package's command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from nangluc.cli import COMMANDS, main


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("bank", "calibrate", "simulate", "serve"):
        assert name in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_unknown_command_is_a_clear_error():
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "nangluc", "--version"], capture_output=True, text=True, check=True
    )
    assert "nangluc" in out.stdout
