"""The ``nangluc`` command: one entry point for the packages' commands.

Each package owns its commands (``nangluc.items.cli``, ``nangluc.calibration.cli``,
``nangluc.simulations.cli``, ``nangluc.service.cli``); they are imported only when used, so
``nangluc --help`` stays fast.
"""

from __future__ import annotations

import importlib

import click

from nangluc import __version__
from nangluc.extras import MissingExtraError, missing_modules

#: command name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "bank": (
        "nangluc.items.cli",
        "bank",
        "Validate, inspect, export and import bank files; store and activate versions.",
    ),
    "calibrate": (
        "nangluc.calibration.cli",
        "calibrate",
        "Fit item parameters from response data into a new bank.",
    ),
    "dif": (
        "nangluc.calibration.cli",
        "dif",
        "Differential item functioning between groups of respondents.",
    ),
    "score": (
        "nangluc.items.cli",
        "score",
        "Score paper forms or survey answers (a response CSV) in bulk.",
    ),
    "simulate": (
        "nangluc.simulations.cli",
        "simulate",
        "Run simulated test takers through an adaptive test.",
    ),
    "test": (
        "nangluc.items.definition_cli",
        "test",
        "Validate test definition files; store, list, show and activate them.",
    ),
    "serve": ("nangluc.service.cli", "serve", "Run the HTTP service and the citizen pages."),
    "db": ("nangluc.service.cli", "db", "Upgrade or inspect the service's database schema."),
}

#: command name -> the extra it needs beyond the light core (see :mod:`nangluc.extras`)
COMMAND_EXTRAS: dict[str, str] = {
    "calibrate": "calibration",
    "dif": "calibration",
    "serve": "service",
    "db": "service",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        extra = COMMAND_EXTRAS.get(name)
        if extra is not None and (missing := missing_modules(extra)):
            raise MissingExtraError(extra, missing, f"nangluc {name} needs the '{extra}' extra")
        module, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="nangluc")
def main() -> None:
    """nangluc — adaptive assessment of citizens' digital competence.

    Calibrate the criteria of the Đà Nẵng framework (QĐ 2242/QĐ-UBND) with
    item response theory, run adaptive tests over HTTP, and simulate them.
    """
