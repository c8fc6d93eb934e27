"""RFC 7807 problem responses (application/problem+json) for every error the API returns.

Bodies carry the request id so a caller can quote it; they never carry exception text or
stack traces, which go to the log only."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.status import HTTP_503_SERVICE_UNAVAILABLE

from api.access import AllMerchantsKeyRequired
from api.auth import MerchantForbidden, NotAuthenticated, RateLimited
from api.db import DatabaseUnavailable
from api.ratelimit import retry_after_header
from wallet_lake.lake.query import LakeScanTooLarge, LakeUnavailable
from api.params import UnknownQueryParameters, accepted_forms

log = structlog.get_logger(logger_name="api.problems")

PROBLEM_MEDIA_TYPE = "application/problem+json"

# Problem types: stable identifiers clients can switch on (URNs: nothing to dereference).
INVALID_PARAMETERS = "urn:wallet-lake:problem:invalid-parameters"
UNKNOWN_PARAMETERS = "urn:wallet-lake:problem:unknown-parameters"
SERVICE_UNAVAILABLE = "urn:wallet-lake:problem:service-unavailable"
UNAUTHENTICATED = "urn:wallet-lake:problem:unauthenticated"
FORBIDDEN_MERCHANT = "urn:wallet-lake:problem:forbidden-merchant"
ALL_MERCHANTS_KEY_REQUIRED = "urn:wallet-lake:problem:all-merchants-key-required"
LAKE_UNAVAILABLE = "urn:wallet-lake:problem:lake-unavailable"
LAKE_SCAN_TOO_LARGE = "urn:wallet-lake:problem:lake-scan-too-large"
RATE_LIMITED = "urn:wallet-lake:problem:rate-limited"
INTERNAL_ERROR = "urn:wallet-lake:problem:internal-error"


class ParameterError(BaseModel):
    parameter: str = Field(description="Name of the offending request parameter.")
    location: str = Field(description="Where the parameter goes: query, path, header, body.")
    message: str = Field(description="What is wrong with the value given.")
    accepted: str | None = Field(default=None, description="The form the parameter accepts.")


class Problem(BaseModel):
    """RFC 7807 problem details."""

    type: str = Field(description="URI identifying the problem type; `about:blank` for plain HTTP errors.")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(description="Explanation of this occurrence.")
    request_id: str | None = Field(default=None, description="X-Request-ID of the request; quote it when reporting a problem.")
    errors: list[ParameterError] | None = Field(default=None, description="Per-parameter errors (400, 422).")


def problem_response(
    request_id: str | None,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    errors: list[ParameterError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(type=type_, title=title, status=status, detail=detail, request_id=request_id, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem bodies for the given statuses."""
    descriptions = {
        400: "Unknown or repeated query parameters.",
        401: "No API key, or not a valid one (X-API-Key header or Authorization: Bearer).",
        403: "The API key is not allowed to read the merchant asked for (or every merchant).",
        422: "A parameter is missing or malformed (or, for source=lake, the range or the scan it needs is too large).",
        429: "Too many requests from this client address or with this API key; retry after `Retry-After` seconds.",
        503: "Postgres (or the lake, for source=lake) is unavailable or the query exceeded its time limit; retry later.",
        500: "Unexpected error; the body carries only the request id.",
    }
    retry_after = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
    return {
        s: {
            # `model` registers the Problem schema; the media type is fixed by problem_media_types().
            "model": Problem,
            "description": descriptions.get(s, ""),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            **({"headers": retry_after} if s == 429 else {}),
        }
        for s in statuses
    }


def problem_media_types(openapi: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents every `model` response as application/json; problem responses are
    application/problem+json only, so drop the duplicate entry."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_MEDIA_TYPE in content:
                    content.pop("application/json", None)
    return openapi


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _message(err: dict[str, Any]) -> str:
    # pydantic's wording, minus its internals: the regex of a pattern (the `accepted` form says
    # it in words) and the "Value error, " prefix of our own validators' messages.
    if err.get("type") == "string_pattern_mismatch":
        return "does not have the accepted form"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def _validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    forms = accepted_forms(request)
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        location, name = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("request", ".".join(loc))
        errors.append(
            ParameterError(parameter=name, location=location, message=_message(err), accepted=forms.get(name))
        )
    names = ", ".join(sorted({e.parameter for e in errors}))
    return problem_response(
        request_id_of(request),
        status=422,
        type_=INVALID_PARAMETERS,
        title="Invalid request parameters",
        detail=f"Invalid or missing parameter(s): {names}.",
        errors=errors,
    )


def _unknown_parameters_problem(request: Request, exc: UnknownQueryParameters) -> JSONResponse:
    forms = accepted_forms(request)
    errors = [
        ParameterError(parameter=n, location="query", message="unknown parameter") for n in exc.unknown
    ] + [
        ParameterError(parameter=n, location="query", message="given more than once", accepted=forms.get(n))
        for n in exc.repeated
    ]
    parts = []
    if exc.unknown:
        parts.append(f"unknown parameter(s): {', '.join(exc.unknown)}")
    if exc.repeated:
        parts.append(f"parameter(s) given more than once: {', '.join(exc.repeated)}")
    accepted = ", ".join(exc.declared) or "none"
    return problem_response(
        request_id_of(request),
        status=400,
        type_=UNKNOWN_PARAMETERS,
        title="Unknown query parameters",
        detail=f"{'; '.join(parts).capitalize()}. Accepted parameters: {accepted}.",
        errors=errors,
    )


def _http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "Error"
    return problem_response(
        request_id_of(request),
        status=exc.status_code,
        type_="about:blank",
        title=title,
        detail=str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


def _database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
    # Refused or lost connections, pool timeouts and statement timeouts (api/db.py): conditions
    # a retry can cure, hence 503 rather than 500.
    log.warning("database unavailable", error=str(exc), timed_out=exc.timed_out)
    return problem_response(
        request_id_of(request),
        status=HTTP_503_SERVICE_UNAVAILABLE,
        type_=SERVICE_UNAVAILABLE,
        title="Service unavailable",
        detail=(
            "The report query exceeded its time limit; retry later."
            if exc.timed_out
            else "The database is unavailable; retry later."
        ),
        headers={"Retry-After": "5"},
    )


def _not_authenticated(request: Request, exc: NotAuthenticated) -> JSONResponse:
    return problem_response(
        request_id_of(request),
        status=401,
        type_=UNAUTHENTICATED,
        title="Not authenticated",
        detail="Send a valid API key in the X-API-Key header (or as Authorization: Bearer <key>).",
        headers={"WWW-Authenticate": 'Bearer realm="wallet-lake"'},
    )


def _merchant_forbidden(request: Request, exc: MerchantForbidden) -> JSONResponse:
    detail = (
        "This API key may not read every merchant: pass merchant= with a merchant it is scoped to."
        if exc.merchant_id is None
        else "This API key is not allowed to read the merchant asked for."
    )
    return problem_response(
        request_id_of(request), status=403, type_=FORBIDDEN_MERCHANT, title="Forbidden merchant", detail=detail
    )


def _all_merchants_key_required(request: Request, exc: AllMerchantsKeyRequired) -> JSONResponse:
    return problem_response(
        request_id_of(request),
        status=403,
        type_=ALL_MERCHANTS_KEY_REQUIRED,
        title="All-merchants key required",
        detail="This report covers every merchant: it needs an API key scoped to all merchants (python -m api.keys create --all).",
    )


def _lake_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("lake unavailable", error_type=type(exc).__name__, error=str(exc))
    return problem_response(
        request_id_of(request),
        status=HTTP_503_SERVICE_UNAVAILABLE,
        type_=LAKE_UNAVAILABLE,
        title="Lake unavailable",
        detail="The lake query engine is not configured, unreachable, or the query exceeded its time limit; retry later or use source=postgres.",
        headers={"Retry-After": "5"},
    )


def _rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
    who = "this client address" if exc.scope == "client" else "this API key"
    return problem_response(
        request_id_of(request),
        status=429,
        type_=RATE_LIMITED,
        title="Too many requests",
        detail=f"Too many requests from {who}; retry after the number of seconds in Retry-After.",
        headers={"Retry-After": retry_after_header(exc.retry_after_s)},
    )


def _lake_scan_too_large(request: Request, exc: LakeScanTooLarge) -> JSONResponse:
    return problem_response(
        request_id_of(request),
        status=422,
        type_=LAKE_SCAN_TOO_LARGE,
        title="Lake scan too large",
        detail=(
            f"source=lake reads every curated partition from the first day asked for on: that is {exc.scan_bytes} "
            f"bytes, over the limit of {exc.max_bytes}. Ask for a later first day, or use source=postgres."
        ),
    )


def internal_error_response(request_id: str | None) -> JSONResponse:
    return problem_response(
        request_id,
        status=500,
        type_=INTERNAL_ERROR,
        title="Internal server error",
        detail="An unexpected error occurred. Quote the request id when reporting it.",
    )


def install_exception_handlers(app: FastAPI) -> None:
    """Handlers for expected errors. Unexpected exceptions are turned into a 500 by the request
    middleware, which (unlike a handler for Exception) still sees the response and the request id."""
    app.add_exception_handler(RequestValidationError, _validation_problem)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownQueryParameters, _unknown_parameters_problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_problem)  # type: ignore[arg-type]
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(NotAuthenticated, _not_authenticated)  # type: ignore[arg-type]
    app.add_exception_handler(MerchantForbidden, _merchant_forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(AllMerchantsKeyRequired, _all_merchants_key_required)  # type: ignore[arg-type]
    app.add_exception_handler(LakeUnavailable, _lake_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(LakeScanTooLarge, _lake_scan_too_large)  # type: ignore[arg-type]
    app.add_exception_handler(RateLimited, _rate_limited)  # type: ignore[arg-type]
