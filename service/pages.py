"""Citizen web pages: the self-assessment single-page app and its assets.

The page is plain HTML, CSS and an ES module in ``service/static/`` (no
framework, no build step, nothing fetched from the internet). It talks to the
JSON API under ``/api/v1`` like any other client. This module only serves the
files; ``nangluc.service.app.create_app`` mounts :func:`page_handlers`.

Routes
------
``GET /``          the page (Vietnamese; ``?lang=en`` for English; ``?embed=1``
                   for a page framed by an embedding app, see :func:`embed_policy`)
``GET /ket-qua``   the same page; it shows the result of the stored session
``GET /planner``   the planners' report page (vi; ``?lang=en``): it asks for a
                   planner key and reads ``/api/v1/reports``
``GET /static/*``  the page's assets
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path

from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.params import FromQuery
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

# The page loads only its own files and talks only to its own API: a strict
# policy stops injected scripts and keeps the page out of other sites' frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: The value of ``?embed=`` that asks for the embeddable page.
EMBED_VALUES = ("1", "true", "yes")
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Always revalidate so a new deployment's page is picked up at once.
    "Cache-Control": "no-cache",
}

_HTML_LANG = re.compile(r'<html lang="[a-z]{2}">')


@cache
def _page_template() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def render_page(lang: str | None, embed_origins: tuple[str, ...] | None = None) -> str:
    """The page's HTML with ``<html lang>`` set to the asked language.

    Parameters
    ----------
    lang : str or None
        ``"vi"`` or ``"en"``; anything else (or None) gives Vietnamese, so a
        mistyped link still opens the page instead of an error.
    embed_origins : tuple of str, optional
        For the embeddable page: the origins it may post its result to,
        written into a ``<meta name="nangluc-embed">`` that the script reads
        (an empty tuple still marks the page as embedded, with no origin to
        post to). None: the ordinary page.

    Returns
    -------
    str
        The HTML document. The script switches the rest of the text.
    """
    language = lang if lang in PAGE_LANGUAGES else DEFAULT_LANGUAGE
    page = _HTML_LANG.sub(f'<html lang="{language}">', _page_template(), count=1)
    if embed_origins is not None:
        # Origins are normalised by Settings (scheme://host[:port]): nothing to escape,
        # but escape anyway, as for any attribute.
        meta = f'<meta name="nangluc-embed" content="{html.escape(" ".join(embed_origins))}">'
        page = page.replace("<head>", f"<head>\n  {meta}", 1)
    return page


def embed_policy(origins: tuple[str, ...]) -> str:
    """The embeddable page's Content-Security-Policy: framed only by ``origins``.

    Everything else is the ordinary page's policy. With no origins the page
    may be framed by no one (``frame-ancestors 'none'``), as every other page.
    """
    ancestors = " ".join(origins) if origins else "'none'"
    return CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", f"frame-ancestors {ancestors}")


@cache
def _planner_template() -> str:
    return (STATIC_DIR / "planner.html").read_text(encoding="utf-8")


@get("/planner", media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def planner_page(lang: FromQuery[str | None] = None) -> Response[str]:
    """Serve the planners' report page (the data behind it needs a planner key)."""
    language = lang if lang in PAGE_LANGUAGES else DEFAULT_LANGUAGE
    html = _HTML_LANG.sub(f'<html lang="{language}">', _planner_template(), count=1)
    return Response(html, media_type=MediaType.HTML, headers=PAGE_HEADERS)


@get(["/", "/ket-qua"], media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def citizen_page(
    request: Request, lang: FromQuery[str | None] = None, embed: FromQuery[str | None] = None
) -> Response[str]:
    """Serve the self-assessment page (also at ``/ket-qua`` for the result).

    ``?embed=1`` serves the embeddable page: the embedding origins
    (``NANGLUC_EMBED_ORIGINS``) may frame it, and it posts the result to the
    one that frames it (``service/static/app.js``, message ``nangluc:result``).
    """
    if embed not in EMBED_VALUES:
        return Response(render_page(lang), media_type=MediaType.HTML, headers=PAGE_HEADERS)
    settings = getattr(request.app.state, "settings", None)  # None: pages served on their own
    origins: tuple[str, ...] = settings.embed_origins if settings is not None else ()
    headers = PAGE_HEADERS | {"Content-Security-Policy": embed_policy(origins)}
    return Response(render_page(lang, origins), media_type=MediaType.HTML, headers=headers)


def page_handlers() -> list[Router]:
    """Route handlers of the citizen pages, for ``Litestar(route_handlers=...)``.

    Returns
    -------
    list of Router
        A router for ``/`` and ``/ket-qua`` and one for ``/static`` assets;
        none of them appears in the OpenAPI schema.
    """
    pages = Router(path="/", route_handlers=[citizen_page, planner_page], include_in_schema=False)
    static = create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        name="citizen-static",
        include_in_schema=False,
        # Revalidate on every load (cheap, the files are small) so a phone never
        # runs an old script against a newer API after a deployment.
        cache_control=CacheControlHeader(no_cache=True),
    )
    return [pages, static]


#: The name ``nangluc.service.app`` looks up; the same handlers as :func:`page_handlers`.
route_handlers = page_handlers
