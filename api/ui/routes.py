"""/ui: the reports pages, server-rendered (Jinja2), for people: daily reconciliation, refund /
chargeback / decline rates, latency per payment method, the pipeline ledger.

Handlers are thin: they check the key's scope as the JSON routes do (api/access.py), run the
same report functions (api/reports/<report>.py, whose SQL is api/reports/sql.py) and hand the
answers to api/ui/pages.py. Every page takes `format=csv` for its table. Not in the OpenAPI
document: the JSON routes are the API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlencode
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BeforeValidator, StringConstraints

from api.access import MERCHANT_MAX_LENGTH, MERCHANT_PATTERN, AllMerchantsKeyRequired
from api.auth import ApiKey, MerchantForbidden, NotAuthenticated, authenticate_key
from api.params import query
from api.reports import daily_recon, declines, latency, pipeline_recon, refund_rate, tables
from api.reports.source import report_fetch
from api.reports.tables import Table
from api.routes.formats import FormatParam, csv_response, wants_csv
from api.routes.inputs import PAYMENT_METHOD_PATTERN, DateRange, iso_date
from api.ui import display, pages
from api.ui.errors import render_problems_as_pages
from api.ui.session import PAGE_HEADERS, CrossSiteForm, PageKey, forget_key, keep_key, login_form_key
from wallet_lake.contracts.reports import LATENCY_EXACT_BELOW_MS, LATENCY_RELATIVE_ERROR

HERE = Path(__file__).resolve().parent
# Front-end packages, installed by `npm ci` in api/ui (stack/wallet-stack up) from
# package-lock.json; only these files are served.
VENDOR_FILES = {"chart.umd.min.js": HERE / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"}

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(show=display.show, exact=display.exact)
router = APIRouter(prefix="/ui", include_in_schema=False)

_DATE_FORM = "YYYY-MM-DD, a calendar date"
OptionalDate = Annotated[dt.date | None, BeforeValidator(iso_date), query("UTC day; omitted: yesterday.", _DATE_FORM)]
OptionalFrom = Annotated[
    dt.date | None, BeforeValidator(iso_date), query("First UTC day; omitted: 6 days before `to`.", _DATE_FORM, alias="from")
]
OptionalTo = Annotated[dt.date | None, BeforeValidator(iso_date), query("Last UTC day; omitted: yesterday.", _DATE_FORM, alias="to")]


def _blank_is_none(value: object) -> object:
    # A form's empty text field arrives as `merchant=`: on a page it means "not given".
    return None if isinstance(value, str) and not value.strip() else value


# The constraints sit on the str of the union: after _blank_is_none, None must not meet them.
OptionalMerchant = Annotated[
    Annotated[str, StringConstraints(min_length=1, max_length=MERCHANT_MAX_LENGTH, pattern=MERCHANT_PATTERN)] | None,
    BeforeValidator(_blank_is_none),
    query(
        "Merchant; omitted or empty: the key's first merchant (every merchant for all-merchant keys).",
        f"a merchant id, 1 to {MERCHANT_MAX_LENGTH} characters, no whitespace",
    ),
]
OptionalMethod = Annotated[
    Annotated[str, StringConstraints(max_length=32, pattern=PAYMENT_METHOD_PATTERN)] | None,
    BeforeValidator(_blank_is_none),
    query("Payment method; omitted or empty: every method.", "lower-case letters, digits and _"),
]


def _yesterday() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)


def _merchant(key: ApiKey, merchant: str | None) -> str | None:
    """The merchant a page shows: the one asked for if the key may read it (403 otherwise, as the
    JSON routes), else the key's first merchant, or every merchant for an all-merchant key."""
    if merchant is None and not key.all_merchants:
        merchant = min(key.merchant_ids) if key.merchant_ids else None
    if not key.may_read(merchant):
        raise MerchantForbidden(merchant)
    return merchant


def _series_range(date_from: dt.date | None, date_to: dt.date | None) -> DateRange:
    date_to = date_to or _yesterday()
    date_from = date_from or date_to - dt.timedelta(days=6)
    dates = DateRange(date_from, date_to).checked()
    if (dates.date_to - dates.date_from).days + 1 > pages.MAX_SERIES_DAYS:
        raise RequestValidationError(
            [{"loc": ("query", "to"), "msg": f"a page shows at most {pages.MAX_SERIES_DAYS} days (the JSON routes: 366)",
              "type": "value_error"}]
        )
    return dates


def _page(request: Request, template: str, key: ApiKey, context: dict[str, Any]) -> Response:
    response = templates.TemplateResponse(
        request, template, {"key": key, "csv_url": f"{request.url.path}?{urlencode({**request.query_params, 'format': 'csv'})}", **context}
    )
    response.headers.update(PAGE_HEADERS)
    return response


def _csv(table: Table, name: str) -> Response:
    response = csv_response(table, f"{name}.csv")
    response.headers["Cache-Control"] = "no-store"
    return response


def _oldest(*as_of: dt.datetime) -> dt.datetime:
    """A page built from several answers is as fresh as the stalest of them."""
    return min(as_of)


@router.get("")
@router.get("/")
async def index() -> Response:
    return RedirectResponse("/ui/daily-recon", status_code=303)


@router.get("/login")
async def login_page(request: Request) -> Response:
    response = templates.TemplateResponse(request, "login.html", {"error": None})
    response.headers.update(PAGE_HEADERS)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    presented = await login_form_key(request)
    secure = request.app.state.settings.api_ui_cookie_secure
    try:
        await authenticate_key(request, presented)
    except NotAuthenticated:
        page = templates.TemplateResponse(request, "login.html", {"error": "That is not a valid API key."}, status_code=401)
        page.headers.update(PAGE_HEADERS)
        return page
    response = RedirectResponse("/ui/daily-recon", status_code=303)
    keep_key(response, presented, secure=secure)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await login_form_key(request)  # the same-origin check; the form has no fields
    response = RedirectResponse("/ui/login", status_code=303)
    forget_key(response, secure=request.app.state.settings.api_ui_cookie_secure)
    return response


@router.get("/daily-recon")
async def daily_recon_page(
    request: Request, key: PageKey, date: OptionalDate = None, merchant: OptionalMerchant = None, format: FormatParam = None
) -> Response:
    merchant_id = _merchant(key, merchant)
    day = date or _yesterday()
    async with report_fetch(request.app.state, "postgres", scan_from=day, scan_to=day) as fetch:
        answer = await daily_recon.run(fetch, report_date=day, merchant_id=merchant_id)
        previous = await daily_recon.run(fetch, report_date=day - dt.timedelta(days=1), merchant_id=merchant_id)
    by_status, totals = pages.recon_with_change(answer, previous)
    if wants_csv(request, format):
        return _csv(by_status, f"daily-recon_{day}")
    return _page(request, "daily_recon.html", key, {
        "title": "Daily reconciliation", "day": day, "previous_day": previous.date, "merchant": merchant_id,
        "as_of": _oldest(answer.as_of, previous.as_of), "table": by_status, "totals": totals,
    })


@router.get("/rates")
async def rates_page(
    request: Request,
    key: PageKey,
    date_from: OptionalFrom = None,
    date_to: OptionalTo = None,
    merchant: OptionalMerchant = None,
    format: FormatParam = None,
) -> Response:
    dates = _series_range(date_from, date_to)
    merchant_id = _merchant(key, merchant)
    per_day = []
    async with report_fetch(request.app.state, "postgres", scan_from=dates.date_from, scan_to=dates.date_to) as fetch:
        for day in pages.days(dates.date_from, dates.date_to):
            refunds = await refund_rate.run(fetch, date_from=day, date_to=day, merchant_id=merchant_id)
            declined = await declines.run(fetch, date_from=day, date_to=day, merchant_id=merchant_id)
            per_day.append((day, refunds, declined))
    table, charts = pages.rates_series(per_day)
    if wants_csv(request, format):
        return _csv(table, f"rates_{dates.date_from}_{dates.date_to}")
    return _page(request, "rates.html", key, {
        "title": "Refund, chargeback and decline rates", "dates": dates, "merchant": merchant_id,
        "as_of": _oldest(*(a.as_of for _, r, d in per_day for a in (r, d))), "table": table,
        "charts": [c.as_json() for c in charts],
    })


@router.get("/latency")
async def latency_page(
    request: Request,
    key: PageKey,
    date_from: OptionalFrom = None,
    date_to: OptionalTo = None,
    payment_method: OptionalMethod = None,
    format: FormatParam = None,
) -> Response:
    dates = _series_range(date_from, date_to)
    per_day = []
    async with report_fetch(request.app.state, "postgres", scan_from=dates.date_from, scan_to=dates.date_to) as fetch:
        for day in pages.days(dates.date_from, dates.date_to):
            per_day.append((day, await latency.run(fetch, date_from=day, date_to=day, payment_method=payment_method)))
    table, charts = pages.latency_series(per_day)
    if wants_csv(request, format):
        return _csv(table, f"latency_{dates.date_from}_{dates.date_to}")
    return _page(request, "latency.html", key, {
        "title": "Latency per payment method", "dates": dates, "payment_method": payment_method,
        "as_of": _oldest(*(a.as_of for _, a in per_day)), "table": table, "charts": [c.as_json() for c in charts],
        "error_pct": f"{LATENCY_RELATIVE_ERROR * 100:.2f}%", "exact_below_ms": LATENCY_EXACT_BELOW_MS,
    })


@router.get("/ledger")
async def ledger_page(request: Request, key: PageKey, date: OptionalDate = None, format: FormatParam = None) -> Response:
    if not key.all_merchants:  # every merchant's volumes, as GET /reports/pipeline-recon
        raise AllMerchantsKeyRequired()
    day = date or _yesterday()
    answer = await pipeline_recon.run(request.app.state.database, day)
    table = tables.pipeline_recon(answer)
    if wants_csv(request, format):
        return _csv(table, f"pipeline-recon_{day}")
    dagster = request.app.state.settings.dagster_ui_base()
    return _page(request, "ledger.html", key, {
        "title": "Pipeline ledger", "day": day, "as_of": answer.as_of, "answer": answer, "table": table,
        "run_url": lambda run_id: pages.run_url(dagster, run_id),
    })


@router.get("/vendor/{name}")
async def vendor(name: str) -> Response:
    path = VENDOR_FILES.get(name)
    if path is None or not path.is_file():
        return Response(
            f"/ui/vendor/{name} is not installed: run `npm ci` in api/ui (stack/wallet-stack up does)\n"
            if path is not None else "not found\n",
            status_code=404, media_type="text/plain",
        )
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})


def install(app: FastAPI) -> None:
    """Mount the pages, their static files, and HTML rendering of errors under /ui (after the
    API's exception handlers are installed)."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    render_problems_as_pages(app, templates)
    # The exception a forged form raises.
    async def cross_site(request: Request, exc: CrossSiteForm) -> Response:
        return templates.TemplateResponse(
            request, "error.html",
            {"problem": {"status": 403, "title": "Forbidden", "detail": "This form must be sent from the reports pages themselves."}},
            status_code=403,
        )

    app.add_exception_handler(CrossSiteForm, cross_site)  # type: ignore[arg-type]
