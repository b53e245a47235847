"""Assemble the shipped bank from the framework, the item content and the provisional rule.

Run ``python -m nangluc.items.build`` after editing ``items/source/area*.json`` or
``items/data/framework.json``. It checks the content, gives every item its
provisional parameters (:mod:`nangluc.items.provisional`), validates the whole bank
and writes ``items/data/bank.json`` (status ``provisional``) atomically, plus
the JSON Schema ``items/bank.schema.json``. Re-running it on unchanged
content rewrites nothing of substance; changed content needs a new
``--version`` (published versions are immutable).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from nangluc.items.bank import (
    DEFAULT_BANK_PATH,
    FRAMEWORK_PATH,
    BankDocument,
    BankError,
    Problem,
    bank_from_dict,
    load_framework,
    nfc,
    read_json,
    utc_now,
    write_bank,
)
from nangluc.items.provisional import DEFAULT_SEED, parameter_source, provisional_parameters
from nangluc.items.schema import BANK_SCHEMA, KSA

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_DIR = PACKAGE_DIR / "source"
SCHEMA_PATH = PACKAGE_DIR / "bank.schema.json"
# Framework of October 2024, provisional parameters, third release (p2: the
# English name of level 3 is "Intermediate"; p3: every criterion has a learning
# goal and the basic skills it belongs to); its parent is the second release.
DEFAULT_VERSION = "2024.10-p3"
DEFAULT_PARENT = "2024.10-p2"
SOURCE_KEYS = (
    "id",
    "competence",
    "ksa",
    "level",
    "basic_skills",
    "text",
    "goal",
    "options",
    "key",
)

# The item counts the content was written to (173 criteria). A different count
# is reported, not refused: the official text may divide criteria differently.
PLANNED_COUNTS = {
    "1.1": 11, "1.2": 11, "1.3": 9,
    "2.1": 11, "2.2": 9, "2.3": 9, "2.4": 10,
    "3.1": 10, "3.2": 9, "3.3": 9,
    "4.1": 11, "4.2": 12, "4.3": 9,
    "5.1": 10, "5.2": 12, "5.3": 12, "5.4": 9,
}  # fmt: skip


def source_items(
    framework_doc: dict[str, Any],
    source_dir: Path,
    *,
    require_all: bool = True,
    seed: int = DEFAULT_SEED,
) -> tuple[list[dict], list[Problem]]:
    """The items of ``area*.json`` in framework order, and every problem of the content.

    Parameters
    ----------
    framework_doc : dict
        The framework object (for area and competence codes).
    source_dir : Path
        Directory holding ``area{code}.json`` per area.
    require_all : bool
        When True a missing area file is a problem; when False it is skipped.
    seed : int
        Seed of the provisional rule.
    """
    problems: list[Problem] = []
    items: list[dict] = []
    competence_area = {c["code"]: c["area"] for c in framework_doc.get("competences", ())}
    for area in framework_doc["areas"]:
        code = area["code"]
        path = source_dir / f"area{code}.json"
        if not path.exists():
            if require_all:
                problems.append(Problem(None, f"{path.name} is missing (area {code})"))
            continue
        try:
            data = nfc(read_json(path, what="content file"))
        except BankError as exc:
            problems += exc.problems
            continue
        if (
            not isinstance(data, dict)
            or data.get("area") != code
            or not isinstance(data.get("items"), list)
        ):
            problems.append(
                Problem(None, f'{path.name}: expected {{"area": "{code}", "items": [...]}}')
            )
            continue
        sequence: dict[str, int] = {}
        for index, raw in enumerate(data["items"]):
            if not isinstance(raw, dict):
                problems.append(Problem(None, f"{path.name}: items[{index}] must be an object"))
                continue
            item_id = raw.get("id") if isinstance(raw.get("id"), str) else None
            where = item_id or f"{path.name} items[{index}]"
            unknown = sorted(set(raw) - set(SOURCE_KEYS))
            if unknown:
                problems.append(
                    Problem(where, f"unknown fields in {path.name}: {', '.join(unknown)}")
                )
            comp = raw.get("competence")
            if competence_area.get(comp) != code:
                problems.append(
                    Problem(where, f"competence {comp!r} is not a competence of area {code}")
                )
            else:
                sequence[comp] = sequence.get(comp, 0) + 1
                expected = f"{comp}.{sequence[comp]:02d}"
                if item_id != expected:
                    problems.append(
                        Problem(
                            where,
                            f"id should be {expected} (competence + 2-digit number in file order)",
                        )
                    )
            if raw.get("ksa") not in KSA:
                problems.append(
                    Problem(where, f"ksa must be one of {', '.join(KSA)} (got {raw.get('ksa')!r})")
                )
            options = raw.get("options")
            if not isinstance(options, list) or len(options) < 2:
                problems.append(Problem(where, "needs a list of at least 2 options"))
            if raw.get("ksa") == "knowledge" and "key" not in raw:
                problems.append(
                    Problem(
                        where, "a knowledge item needs a key (0-based index of the correct option)"
                    )
                )
            if raw.get("ksa") in ("skill", "attitude") and "key" in raw:
                problems.append(
                    Problem(where, f"a {raw['ksa']} item has ordered options, not a key")
                )
            item = {k: raw[k] for k in SOURCE_KEYS if k in raw}
            item["area"] = code
            try:
                item.update(provisional_parameters(raw, seed=seed))
            except ValueError as exc:
                problems.append(Problem(None, str(exc)))
            item["status"] = "operational"
            items.append(item)
    return items, problems


def count_report(items: list[dict]) -> list[str]:
    """Lines noting where counts differ from the plan (empty when they match)."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.get("competence", "?")] = counts.get(item.get("competence", "?"), 0) + 1
    notes = [
        f"competence {comp}: {counts.get(comp, 0)} items (planned {n})"
        for comp, n in PLANNED_COUNTS.items()
        if counts.get(comp, 0) != n
    ]
    return notes


def build_document(
    *,
    version: str = DEFAULT_VERSION,
    parent: str | None = None,
    seed: int = DEFAULT_SEED,
    source_dir: Path = SOURCE_DIR,
    framework_path: Path = FRAMEWORK_PATH,
    require_all: bool = True,
    created: str | None = None,
) -> BankDocument:
    """The provisional bank built from the framework and the content files.

    Raises
    ------
    BankError
        With every problem of the content or of the assembled bank.
    """
    framework = load_framework(framework_path).to_dict()
    items, problems = source_items(framework, source_dir, require_all=require_all, seed=seed)
    if problems:
        raise BankError(problems, what="the item content")
    if not items:
        raise BankError(
            [Problem(None, f"no content files found in {source_dir}")], what="the item content"
        )
    doc = {
        "version": version,
        "parent": parent,
        "status": "provisional",
        "created": created or utc_now(),
        "metadata": {
            "description": {
                "vi": "Ngân hàng câu hỏi đánh giá năng lực số cho công dân; tham số IRT tạm thời, chưa hiệu chỉnh.",
                "en": "Item bank for citizens' digital competence; provisional IRT parameters, not yet calibrated.",
            },
            "parameter_source": parameter_source(seed),
            "text_source": "nangluc project wording of the framework's structure; not the official criteria text",
        },
        "framework": framework,
        "items": items,
    }
    return bank_from_dict(doc)


def write_schema(path: Path = SCHEMA_PATH) -> None:
    """Write :data:`nangluc.items.schema.BANK_SCHEMA` as a JSON file."""
    text = json.dumps(BANK_SCHEMA, ensure_ascii=False, indent=2) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nangluc.items.build", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--version", default=DEFAULT_VERSION, help=f"bank version id (default {DEFAULT_VERSION})"
    )
    parser.add_argument(
        "--parent",
        default=None,
        help=f"the version this one replaces (default with the default version: {DEFAULT_PARENT})",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seed of the provisional rule"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_BANK_PATH, help="bank file to write")
    parser.add_argument(
        "--source", type=Path, default=SOURCE_DIR, help="directory of area*.json content files"
    )
    parser.add_argument(
        "--allow-partial", action="store_true", help="build even if some area files are missing"
    )
    args = parser.parse_args(argv)
    if not re.match(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$", args.version):
        print(f"error: bad version id {args.version!r}", file=sys.stderr)
        return 2
    try:
        doc = build_document(
            version=args.version,
            parent=args.parent
            if args.parent is not None or args.version != DEFAULT_VERSION
            else DEFAULT_PARENT,
            seed=args.seed,
            source_dir=args.source,
            require_all=not args.allow_partial,
        )
        # Unchanged content keeps its creation time, so a rebuild changes nothing.
        if args.out.exists():
            try:
                old = bank_from_dict(read_json(args.out))
            except BankError:
                old = None
            if (
                old is not None
                and old.version == doc.version
                and old.content_hash == doc.content_hash
            ):
                doc = bank_from_dict({**doc.to_dict(), "created": old.created})
        write_bank(doc, args.out)
    except BankError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    write_schema()
    for note in count_report([i.to_dict() for i in doc.items]):
        print(f"note: {note}")
    areas = ", ".join(f"{a}: {sum(i.area == a for i in doc.items)}" for a in doc.area_codes)
    print(
        f"wrote {args.out} (version {doc.version}, {len(doc.items)} items; {areas}; hash {doc.content_hash[:12]})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
