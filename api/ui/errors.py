"""Errors on the reports pages as pages: the API's own exception handlers (api/problems.py) write
the problem (status, title, detail, per-parameter errors, Retry-After) and, for a request under
/ui, it is rendered as HTML instead of application/problem+json. So a page and the JSON route
refuse the same request with the same status and words: a merchant outside the key's scope is a
403 page, a malformed date a 422 page. Without a valid key the page is the login form (401)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from api.auth import NotAuthenticated
from api.ui.session import COOKIE, PAGE_HEADERS, forget_key

UI_PREFIX = "/ui"


def is_page_request(request: Request) -> bool:
    path = request.url.path
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def _wrap(handler: Callable[..., Any], templates: Jinja2Templates) -> Callable[..., Any]:
    async def handle(request: Request, exc: Exception) -> Response:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        if not is_page_request(request):
            return response
        secure = request.app.state.settings.api_ui_cookie_secure if request.app.state.settings else False
        if isinstance(exc, NotAuthenticated):
            page = templates.TemplateResponse(
                request, "login.html",
                {"error": "Your API key is not valid (or was revoked)." if COOKIE in request.cookies else None},
                status_code=401,
            )
            page.headers.update(PAGE_HEADERS)
            if COOKIE in request.cookies:
                forget_key(page, secure=secure)
            return page
        problem = json.loads(bytes(response.body))
        page = templates.TemplateResponse(request, "error.html", {"problem": problem}, status_code=response.status_code)
        page.headers.update(PAGE_HEADERS)
        if "retry-after" in response.headers:
            page.headers["Retry-After"] = response.headers["retry-after"]
        return page

    return handle


def render_problems_as_pages(app: FastAPI, templates: Jinja2Templates) -> None:
    """Wrap every exception handler installed so far (call after install_exception_handlers)."""
    for exc_class, handler in list(app.exception_handlers.items()):
        app.exception_handlers[exc_class] = _wrap(handler, templates)
