"""The README's "Embed in your app" examples run as written (issue #14, section 4)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def embed_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Embed in your app")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def code_blocks(language: str) -> list[str]:
    """The section's fenced code blocks in ``language``."""
    return re.findall(rf"```{language}\n(.*?)```", embed_section(), flags=re.DOTALL)


def test_the_python_example_runs_a_whole_test_and_scores_a_paper_form() -> None:
    (example,) = code_blocks("python")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md (Embed in your app)", "exec"), {"__name__": "readme"})
    lines = out.getvalue().splitlines()
    # The overall level, one line per area (the shipped framework's five), the paper form.
    assert len(lines) == 1 + 5 + 1, lines
    level, name = lines[0].split()[:2]
    assert level == "5" and name == "Nâng"  # always the top option: the top level
    assert all(len(line.split()) >= 3 for line in lines[1:6])


def test_the_python_example_uses_only_what_the_engine_exports() -> None:
    import nangluc.engine

    (example,) = code_blocks("python")
    imported = re.findall(r"from nangluc\.engine import (.+)", example)
    assert imported
    for name in (n.strip() for line in imported for n in line.split(",")):
        assert name in nangluc.engine.__all__, name
        assert getattr(nangluc.engine, name).__doc__, f"{name} has no docstring"


def test_the_http_example_names_items_of_the_shipped_bank() -> None:
    from nangluc.items import load_bank

    (example,) = code_blocks("sh")[1:]
    bank = load_bank()
    named = re.findall(r'"item(?:_id)?": "([0-9.]+)"', example)
    assert named and all(item in bank for item in named), named
