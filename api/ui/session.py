"""The reports pages' login: an API key entered once in the login form, kept by the browser in
a cookie and checked on every page exactly as the JSON routes check the X-API-Key header
(api.auth.authenticate_key: the same keys, scopes, caches and rate limits).

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page, link or
form makes the browser send it), Path=/ui (the JSON routes never receive it: they take keys in
headers only, so a cookie cannot authenticate a cross-site API call) and Secure when
WL_API_UI_COOKIE_SECURE is set. It lives for the browser session. The key travels only in the
POST body of the login form and in this cookie: never in a URL, so never in a log line, a
Referer header or the browser's history."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, Request
from fastapi.responses import Response

from api.auth import ApiKey, authenticate_key

COOKIE = "wl_reports_key"
COOKIE_PATH = "/ui"
# A login form holds one key (about 70 characters): a larger body is not a login.
MAX_LOGIN_BODY_BYTES = 4096


# Every page: never cached (merchants' figures), never framed (no clickjacking of the forms), no
# script, style or form target from elsewhere, and no Referer to other sites. "same-origin", not
# "no-referrer": under no-referrer browsers send `Origin: null` with the login form, which
# same_origin() must refuse.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class CrossSiteForm(Exception):
    """A form POSTed from another origin: 403 (a login or logout forged by another site)."""


async def page_key(request: Request) -> ApiKey:
    """The key of the browser's session; NotAuthenticated (the pages answer with the login form)
    without a valid one."""
    return await authenticate_key(request, request.cookies.get(COOKIE))


PageKey = Annotated[ApiKey, Depends(page_key)]


def same_origin(request: Request) -> bool:
    """A form POST comes from our own pages: its Origin (sent by browsers on every POST), or
    failing that its Referer, names this host. Neither header: not a browser form, allowed."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.url.netloc)


async def login_form_key(request: Request) -> str:
    """The `key` field of the urlencoded login form ('' when absent or malformed)."""
    if not same_origin(request):
        raise CrossSiteForm()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY_BYTES:
            return ""
    try:
        values = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=4).get("key", [""])
    except ValueError:  # more fields than a login form has
        return ""
    return values[0].strip()


def keep_key(response: Response, key: str, *, secure: bool) -> None:
    response.set_cookie(COOKIE, key, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure)


def forget_key(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure)
