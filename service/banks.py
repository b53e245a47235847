"""Bank versions as the service uses them: parsed once per version, cached.

A stored bank version never changes, so its parsed form (the engine's
:class:`~nangluc.engine.bank.ItemBank`, the item payloads clients see, and how each
option index is scored) is computed once per process and reused. Sessions
load the bank by the version they started on, so activating a new version
never changes a test in progress.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nangluc import items as item_bank
from nangluc.engine.bank import ItemBank
from nangluc.service.db import ACTIVATION, BANK, utcnow

LANGUAGES = ("vi", "en")


class NotFoundError(LookupError):
    """A session or bank version that does not exist (HTTP 404)."""


class ConflictError(RuntimeError):
    """A request that conflicts with the stored state (HTTP 409)."""


class GateRefusedError(ConflictError):
    """The go-live gate refused a bank version (HTTP 409 with the gate's result)."""

    def __init__(self, message: str, gate: dict[str, Any]) -> None:
        super().__init__(message)
        self.gate = gate


def refuse_activation(
    db: Any,
    log: dict[str, Any],
    *,
    reason: str | None,
    gate: dict[str, Any],
    reasons: Any,
    subject: str,
) -> NoReturn:
    """Record a refused activation of ``subject`` in the audit log; raise :class:`GateRefusedError`."""
    with db.transaction() as conn:
        conn.execute(
            ACTIVATION.insert().values(
                **log, at=utcnow(), outcome="refused", forced=False, reason=reason, gate=gate
            )
        )
    raise GateRefusedError(
        f"{subject} did not pass the go-live gate: "
        + "; ".join(reasons)
        + ". Resolve the problems, or override with force and a reason.",
        gate,
    )


class UnprocessableError(ValueError):
    """A well-formed request the service cannot act on (HTTP 422)."""


class InvalidAnswerError(UnprocessableError):
    """An answer whose response is not one of the item's options (HTTP 422)."""


def _text(value: Any, language: str) -> str:
    """A {"vi", "en"} text in ``language``, falling back to Vietnamese."""
    if isinstance(value, dict):
        return str(value.get(language) or value.get("vi") or value.get("en") or "")
    return "" if value is None else str(value)


@dataclass(frozen=True, eq=False)
class LoadedBank:
    """One bank version ready for the service.

    Attributes
    ----------
    document : items.BankDocument
        The validated bank document.
    bank : engine.bank.ItemBank
        Parameter arrays for the engine.
    payloads : dict
        (item id, language) -> the item as sent to clients: id, area,
        competence, kind, text and options; never the key or parameters.
    """

    document: Any
    bank: ItemBank
    payloads: dict[tuple[str, str], dict[str, Any]]

    @property
    def version(self) -> str:
        return self.bank.version

    @classmethod
    def from_document(cls, document: Any) -> LoadedBank:
        bank = document.item_bank
        payloads: dict[tuple[str, str], dict[str, Any]] = {}
        for record in document.items:
            options = tuple(record.options or ())
            for language in LANGUAGES:
                payloads[(record.id, language)] = {
                    "id": record.id,
                    "area": str(record.area),
                    "competence": record.competence or None,
                    "kind": record.kind,
                    "text": _text(record.text, language),
                    # A bare bank has no option texts: the options are the categories.
                    "options": [_text(o, language) for o in options]
                    if options
                    else [str(k) for k in range(record.n_categories)],
                }
        return cls(document=document, bank=bank, payloads=payloads)

    def score(self, item_id: str, response: int) -> int:
        """Scored category of option ``response`` (0/1 for keyed items).

        Raises
        ------
        InvalidAnswerError
            If ``response`` is not one of the item's options.
        """
        try:
            return self.document.item(item_id).score_option(response)
        except ValueError as error:
            raise InvalidAnswerError(str(error)) from None

    def item_payload(self, item_id: str | None, language: str) -> dict[str, Any] | None:
        if item_id is None:
            return None
        return self.payloads[(item_id, language if language in LANGUAGES else "vi")]

    def area_name(self, code: str, language: str) -> str:
        framework = self.document.framework
        for area in framework.areas if framework is not None else ():
            if area.code == code:
                return _text(area.name, language)
        return code


class BankStore:
    """Parsed bank versions of one database, cached per version (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[str, LoadedBank] = {}
        self._lock = threading.Lock()

    def get(self, version: str, connection: sa.Connection | None = None) -> LoadedBank:
        """The bank version ``version``; NotFoundError if it is not stored."""
        loaded = self._cache.get(version)
        if loaded is not None:
            return loaded
        query = sa.select(BANK.c.document).where(BANK.c.version == version)
        if connection is None:
            with self._engine.connect() as conn:
                document = conn.execute(query).scalar_one_or_none()
        else:
            document = connection.execute(query).scalar_one_or_none()
        if document is None:
            raise NotFoundError(f"bank version {version!r} does not exist")
        loaded = LoadedBank.from_document(item_bank.bank_from_dict(document))
        if loaded.version != version:
            raise ValueError(
                f"stored bank {version!r} holds a document of version {loaded.version!r}"
            )
        with self._lock:
            return self._cache.setdefault(version, loaded)

    def active_version(self, connection: sa.Connection) -> str:
        """Version new sessions start on; ConflictError if none is active."""
        version = connection.execute(
            sa.select(BANK.c.version).where(BANK.c.status == "active").limit(1)
        ).scalar_one_or_none()
        if version is None:
            raise ConflictError("no bank version is active")
        return version
