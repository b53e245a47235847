"""Test definition files: reading TOML/JSON, the published schema, the shipped definitions.

The definitions themselves (validation, building a test from a bank) are pure
and live in :mod:`nangluc.engine.definition`; this module only reads files.
``items/data/tests/`` ships the city's citizen test and worked examples.
"""

from __future__ import annotations

import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from nangluc.engine.definition import DefinitionError, TestDefinition

#: The JSON Schema of a definition document (draft 2020-12), also served at
#: ``GET /api/v1/schemas/test-definition``.
SCHEMA_PATH = Path(__file__).with_name("test-definition.schema.json")
#: The shipped definitions: the citizen test and examples.
SHIPPED_DIR = Path(__file__).parent / "data" / "tests"
#: The definition the service stores and makes the city's default on first start.
CITIZEN_TEST_PATH = SHIPPED_DIR / "citizen.toml"

#: Largest definition file read (a form of every item of a big bank fits easily).
MAX_BYTES = 1024 * 1024


@cache
def definition_schema() -> dict[str, Any]:
    """The published JSON Schema of test definitions (a fresh copy is not made: do not mutate)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def parse_document(text: str, *, source: str, toml: bool) -> dict[str, Any]:
    """A definition document from TOML or JSON text.

    Raises
    ------
    DefinitionError
        The text is not TOML/JSON (the message says where).
    """
    try:
        document = tomllib.loads(text) if toml else json.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DefinitionError([f"(file): not valid TOML: {error}"], source) from None
    except json.JSONDecodeError as error:
        raise DefinitionError([f"(file): not valid JSON: {error}"], source) from None
    return document


def read_document(path: str | Path) -> dict[str, Any]:
    """The parsed document of a definition file (``.toml``, else JSON), not yet validated.

    Raises
    ------
    DefinitionError
        The file is missing, too large, not UTF-8, or not TOML/JSON.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DefinitionError([f"(file): larger than {MAX_BYTES // 1024} KB"], str(path))
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DefinitionError(["(file): does not exist"], str(path)) from None
    except IsADirectoryError:
        raise DefinitionError(["(file): is a directory"], str(path)) from None
    except UnicodeDecodeError:
        raise DefinitionError(["(file): not UTF-8 text"], str(path)) from None
    except OSError as error:
        problem = f"(file): cannot be read: {error.strerror or error}"
        raise DefinitionError([problem], str(path)) from None
    text = text.removeprefix("\ufeff")
    return parse_document(text, source=str(path), toml=path.suffix.lower() == ".toml")


def read_definition(path: str | Path) -> TestDefinition:
    """Read and validate a definition file.

    Raises
    ------
    DefinitionError
        Unreadable, or invalid: ``problems`` name every bad field.
    """
    return TestDefinition.from_dict(read_document(path), source=str(path))


def shipped_definitions() -> dict[str, TestDefinition]:
    """The shipped definitions by key (``NAME@VERSION``)."""
    found = {}
    for path in sorted(SHIPPED_DIR.glob("*.toml")):
        definition = read_definition(path)
        found[definition.key] = definition
    return found


__all__ = [
    "CITIZEN_TEST_PATH",
    "SCHEMA_PATH",
    "SHIPPED_DIR",
    "definition_schema",
    "parse_document",
    "read_definition",
    "read_document",
    "shipped_definitions",
]
