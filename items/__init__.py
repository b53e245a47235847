"""The Đà Nẵng digital competence framework and the item bank (DESIGN §1, §3).

``load_bank()`` gives the shipped bank; ``load_bank(path)`` any bank file.
"""

from nangluc.items.bank import (
    DEFAULT_BANK_PATH,
    EXAMPLES_DIR,
    FRAMEWORK_PATH,
    HOUSEHOLD_SAFETY_BANK_PATH,
    Area,
    BankDocument,
    BankError,
    BankFileError,
    Competence,
    Framework,
    ItemRecord,
    LevelBand,
    Problem,
    bank_from_dict,
    content_hash,
    load_bank,
    load_framework,
    new_version,
    write_bank,
)
from nangluc.items.schema import BANK_SCHEMA, validate_document

__all__ = [
    "BANK_SCHEMA",
    "DEFAULT_BANK_PATH",
    "EXAMPLES_DIR",
    "FRAMEWORK_PATH",
    "HOUSEHOLD_SAFETY_BANK_PATH",
    "Area",
    "BankDocument",
    "BankError",
    "BankFileError",
    "Competence",
    "Framework",
    "ItemRecord",
    "LevelBand",
    "Problem",
    "bank_from_dict",
    "content_hash",
    "load_bank",
    "load_framework",
    "new_version",
    "validate_document",
    "write_bank",
]
