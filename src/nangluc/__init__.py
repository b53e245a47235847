"""nangluc: adaptive assessment of citizens' digital competence (năng lực số)."""

__version__ = "0.1.0"
