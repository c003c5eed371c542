"""The console's Starlette app. Pages are server-rendered from Jinja2 templates extending `base.html`;
every page is one entry of ROUTES (a page added later is one more entry and one more template, and
NAV puts it in the header).

No Dagster, dlt or DuckDB import here: the scorecard page is a file the `executive_scorecard` asset writes,
and the mapping pages (`mapping_pages.py`: Syncs, Query) import what they need when a page is asked for.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from growth_stack_dagster import config
from growth_stack_dagster.console import mapping_pages

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]))
TOKEN_COOKIE = "growth_stack_console_token"
# (path, label) of the pages in the header, in order.
NAV = [("/", "Home"), ("/scorecard", "Executive scorecard"), *mapping_pages.NAV]


def scorecard_path() -> Path:
    """The page the `executive_scorecard` asset writes."""
    return config.home() / "scorecard" / "index.html"


def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    """A page from `template` with the shared context (navigation, links)."""
    page = TEMPLATES.get_template(template).render(
        request=request, nav=NAV, dagster_url=request.app.state.dagster_url, **context)
    return HTMLResponse(page, status_code=status_code)


async def home(request: Request) -> Response:
    page = scorecard_path()
    return render(request, "home.html", scorecard_built=page.exists(),
                  scorecard_mtime=page.stat().st_mtime if page.exists() else None)


def scorecard_parts(page: str) -> tuple[str, str]:
    """(CSS, HTML) to show the page the asset wrote under the console's header: the rules of its
    `<style class="scorecard-style">` and the inside of its <body> (a page without a body is shown whole)."""
    style = re.search(r'<style class="scorecard-style">(.*?)</style>', page, re.S)
    body = re.search(r"<body[^>]*>(.*)</body>", page, re.S)
    return (style.group(1) if style else ""), (body.group(1) if body else page)


async def scorecard(request: Request) -> Response:
    page = scorecard_path()
    if not page.exists():
        return render(request, "message.html", status_code=404, title="The scorecard is not built yet",
                      message="Materialize the asset reports/executive_scorecard in the Dagster UI (or wait for "
                              "its hourly schedule at :45); this page then shows it.")
    style, body = scorecard_parts(page.read_text())
    # the page is the scorecard asset's own output (its values escaped when it was rendered)
    response = render(request, "scorecard.html", scorecard_style=Markup(style), scorecard_body=Markup(body))
    response.headers["cache-control"] = "no-cache"
    return response


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


ROUTES = [
    Route("/", home, name="home"),
    Route("/scorecard", scorecard, name="scorecard"),
    Route("/health", health, name="health"),
    *mapping_pages.ROUTES,
]


class TokenMiddleware:
    """Requires the console token on every request but /health: as `Authorization: Bearer <token>`,
    as `?token=<token>` (then kept in an HttpOnly cookie), or that cookie. Compared in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token.encode()

    def _ok(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        query = request.query_params.get("token")
        if self._ok(bearer) or self._ok(request.cookies.get(TOKEN_COOKIE)):
            await self.app(scope, receive, send)
        elif self._ok(query):
            async def send_with_cookie(message) -> None:
                if message["type"] == "http.response.start":
                    cookie = f"{TOKEN_COOKIE}={query}; HttpOnly; SameSite=Strict; Path=/"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)
            await self.app(scope, receive, send_with_cookie)
        else:
            await PlainTextResponse("This console needs its token: open it with ?token=<the console token> "
                                    "or send Authorization: Bearer <token>.", status_code=401)(scope, receive, send)


def create_app(token: str | None = None, dagster_url: str = "http://127.0.0.1:3000") -> Starlette:
    """The console app; with `token`, every page but /health requires it."""
    middleware = [Middleware(TokenMiddleware, token=token)] if token else []
    app = Starlette(routes=ROUTES, middleware=middleware)
    app.state.dagster_url = dagster_url.rstrip("/")
    return app
