"""/reports: thin handlers. SQL lives in api/reports/sql.py, shaping in api/reports/<report>.py,
parameters in api/routes/inputs.py, the merchant check in api/access.py. Every report takes
`key: Authenticated` first, so a request without a valid key is a 401 before anything else is
checked (FastAPI solves dependencies in declaration order; the result is cached per request).

Handlers are async: Postgres through the async pool; the lake's blocking engines in worker
threads (api/reports/source.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.access import AllMerchantsKey, MerchantScope
from api.auth import Authenticated
from api.compiled_route import CompiledRoute
from api.problems import problem_responses
from api.reports import daily_recon, declines, latency, pipeline_recon, refund_rate, tables
from api.reports.source import report_fetch
from api.reports.tables import Table
from api.routes.formats import FormatParam, csv_documented, csv_response, wants_csv
from api.routes.inputs import DateRange, LandingDate, PaymentMethod, Range, ReportDate, SourceParam

# Valid requests are served from a plan of each route's dependencies made once (api/compiled_route.py).
router = APIRouter(prefix="/reports", tags=["reports"], route_class=CompiledRoute)

_ERRORS = problem_responses(400, 401, 403, 422, 429, 500, 503)
A = TypeVar("A", bound=BaseModel)


def _checked(request: Request, dates: DateRange, source: str) -> DateRange:
    """The range checked, with the tighter bound of source=lake (api/settings.py)."""
    return dates.checked(request.app.state.settings.api_lake_max_range_days if source == "lake" else None)


def _json(answer: BaseModel) -> Response:
    """The answer as JSON (field aliases such as `from`). Built here rather than by FastAPI from
    response_model, which would validate the model it was just given a second time; the
    response_model stays declared for the OpenAPI schema."""
    return Response(answer.model_dump_json(by_alias=True), media_type="application/json", headers={"Vary": "Accept"})


def _answer(request: Request, format_: str | None, answer: A, table: Callable[[A], Table], filename: str) -> Response:
    """JSON, or CSV (api/routes/formats.py) with the columns of api/reports/tables.py (the table
    is built only for CSV)."""
    return csv_response(table(answer), f"{filename}.csv") if wants_csv(request, format_) else _json(answer)


def _responses(errors: dict, table_columns: tuple[tables.Column, ...] | None = None) -> dict:
    header = ",".join(c.name for c in table_columns) if table_columns else "decline_reason,count,amount_cents_EUR"
    return {**csv_documented(header + "\r\n"), **errors}


@router.get(
    "/daily-recon",
    response_model=daily_recon.DailyRecon,
    summary="Daily reconciliation of one merchant (or all)",
    description=daily_recon.DESCRIPTION,
    responses=_responses(_ERRORS, tables.DAILY_RECON),
)
async def get_daily_recon(
    request: Request,
    key: Authenticated,
    date: ReportDate,
    merchant_id: MerchantScope,
    source: SourceParam = "postgres",
    format: FormatParam = None,
) -> Response:
    async with report_fetch(request.app.state, source, scan_from=date, scan_to=date) as fetch:
        answer = await daily_recon.run(fetch, report_date=date, merchant_id=merchant_id)
    return _answer(request, format, answer, tables.daily_recon, f"daily-recon_{date}")


@router.get(
    "/refund-rate",
    response_model=refund_rate.RefundRate,
    summary="Refund and chargeback rates over a date range",
    description=refund_rate.DESCRIPTION,
    responses=_responses(_ERRORS, tables.REFUND_RATE),
)
async def get_refund_rate(
    request: Request,
    key: Authenticated,
    dates: Range,
    merchant_id: MerchantScope,
    source: SourceParam = "postgres",
    format: FormatParam = None,
) -> Response:
    dates = _checked(request, dates, source)
    async with report_fetch(request.app.state, source, scan_from=dates.date_from, scan_to=dates.date_to) as fetch:
        answer = await refund_rate.run(fetch, date_from=dates.date_from, date_to=dates.date_to, merchant_id=merchant_id)
    return _answer(request, format, answer, tables.refund_rate, f"refund-rate_{dates.date_from}_{dates.date_to}")


@router.get(
    "/latency",
    response_model=latency.Latency,
    summary="Authorization-to-completion latency per payment method",
    description=latency.DESCRIPTION
    + " Platform-wide (no merchant parameter): any valid key may read it; it holds no amounts or merchant data.",
    responses=_responses(problem_responses(400, 401, 422, 429, 500, 503), tables.LATENCY),
)
async def get_latency(
    request: Request,
    key: Authenticated,
    dates: Range,
    payment_method: PaymentMethod = None,
    source: SourceParam = "postgres",
    format: FormatParam = None,
) -> Response:
    dates = _checked(request, dates, source)
    async with report_fetch(request.app.state, source, scan_from=dates.date_from, scan_to=dates.date_to) as fetch:
        answer = await latency.run(fetch, date_from=dates.date_from, date_to=dates.date_to, payment_method=payment_method)
    return _answer(request, format, answer, tables.latency, f"latency_{dates.date_from}_{dates.date_to}")


@router.get(
    "/declines",
    response_model=declines.Declines,
    summary="Declined payments per reason, and the decline rate",
    description=declines.DESCRIPTION,
    responses=_responses(_ERRORS),
)
async def get_declines(
    request: Request,
    key: Authenticated,
    dates: Range,
    merchant_id: MerchantScope,
    source: SourceParam = "postgres",
    format: FormatParam = None,
) -> Response:
    dates = _checked(request, dates, source)
    async with report_fetch(request.app.state, source, scan_from=dates.date_from, scan_to=dates.date_to) as fetch:
        answer = await declines.run(fetch, date_from=dates.date_from, date_to=dates.date_to, merchant_id=merchant_id)
    return _answer(request, format, answer, tables.declines, f"declines_{dates.date_from}_{dates.date_to}")


_RECON_ERRORS = problem_responses(400, 401, 403, 422, 429, 500, 503)
_RECON_ERRORS[403] = {**_RECON_ERRORS[403], "description": "The API key is scoped to some merchants; this report needs an all-merchants key."}


@router.get(
    "/pipeline-recon",
    response_model=pipeline_recon.PipelineRecon,
    summary="Pipeline ledger: every landing hour of a day from raw lines to the reports",
    description=pipeline_recon.DESCRIPTION,
    responses=_responses(_RECON_ERRORS, tables.PIPELINE_RECON),
)
async def get_pipeline_recon(request: Request, key: AllMerchantsKey, date: LandingDate, format: FormatParam = None) -> Response:
    answer = await pipeline_recon.run(request.app.state.database, date)
    return _answer(request, format, answer, tables.pipeline_recon, f"pipeline-recon_{date}")


# Response examples, set on the finished document: FastAPI drops None values while building it,
# and an example's nulls (a stage never recorded) are part of what it shows.
_EXAMPLES = {"/reports/pipeline-recon": pipeline_recon.EXAMPLE}


def document_examples(openapi: dict) -> dict:
    for path, example in _EXAMPLES.items():
        openapi["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["example"] = example
    return openapi
