"""``python -m nangluc.simulations`` is ``nangluc simulate``."""

from nangluc.simulations.cli import simulate

simulate(prog_name="python -m nangluc.simulations")
