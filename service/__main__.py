"""``python -m service``: the same as ``nangluc serve``."""

from service.cli import main

main()
