"""``python -m simulations`` is ``nangluc simulate``."""

from simulations.cli import simulate

simulate(prog_name="python -m simulations")
