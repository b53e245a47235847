"""``python -m nangluc.service``: the same as ``nangluc serve``."""

from nangluc.service.cli import main

main()
