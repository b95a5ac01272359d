"""The FastAPI application: `uvicorn inference.app:app`.

`create_app(settings)` wires the doors (the lean ASGI door and the FastAPI routes, both
answered by one `inference.service.ScoringService`), the error handler, metrics and the
offline docs; the model, the keys and the decision recorder arrive in the lifespan
(`inference.lifespan`), so importing this module needs no environment and loads nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from contract.names import BATCH_PATH, HEALTH_PATH, METRICS_PATH, PREDICT_PATH, READY_PATH
from contract.requests import APPLICANT_MODEL, BATCH_MODEL, RequestInvalid
from inference import __version__
from inference.door import ScoringDoor
from inference.errors import ServiceError, handle_error
from inference.lifespan import build_lifespan
from inference.metrics import Metrics
from inference.middleware import ConfiguredCORS, ObservabilityMiddleware, OneLineStartupFailure
from inference.routes import info, outcomes, scoring
from inference.settings import Settings
from inference.state import loaded_of

DESCRIPTION = """
Default-risk scoring for Crédit Express: send an applicant's raw application fields
(Home Credit names), get the probability of default and the decision at the model's
business threshold (`prediction`: 0 = accepted, 1 = refused).

**Authentication.** The scoring endpoints need the `x-api-key` header (click *Authorize*).
The other endpoints are open: they expose no secret and no applicant data, only the
model's public description, a made-up example applicant, probes and aggregate metrics.

**Errors** share one shape: `{"error": kind, "message": ..., "request_id": ..., "details": [...]}`.
Every response carries an `x-request-id`, also found in the prediction log.
"""

TAGS = [
    {"name": "scoring", "description": "Scoring calls (API key required)."},
    {"name": "service", "description": "Service information, probes and metrics (open)."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app; `settings` default to the environment's, read at start-up."""
    app = FastAPIOffline(
        title="Credit scoring API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=build_lifespan(settings),
        # deepLinking: /docs#/scoring/predict_predict_post opens that operation (handy to share).
        swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True, "deepLinking": True},
        # FastAPI's OpenTelemetry hooks look up the global providers on every request; the service
        # exports Prometheus metrics and no traces, so they only cost time (benchmarks/RESULTS.md).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.metrics = metrics = Metrics()
    app.state.loaded = None
    app.state.startup_failure = None
    app.include_router(scoring.router)
    app.include_router(info.router)
    app.include_router(outcomes.router)  # the back office's outcomes, off the scoring path
    for exc_type in (ServiceError, RequestInvalid, HTTPException, RequestValidationError, Exception):
        app.add_exception_handler(exc_type, handle_error)
    _wrap_the_framework(app, metrics)
    _declare_request_schemas(app)
    return app


def _wrap_the_framework(app: FastAPI, metrics: Metrics) -> None:
    """Put the project's middlewares around the framework's whole stack rather than inside it.

    Every request meets `OneLineStartupFailure` -> `ObservabilityMiddleware` (request id, HTTP
    metrics, edge headers) -> `ConfiguredCORS` -> `ScoringDoor`; the door answers POST /predict and
    /predict/batch itself and hands everything else to the framework (Starlette's error middleware,
    FastAPI's own layers, routing). So a scoring request the door answers goes through none of the
    framework's layers, and an unexpected error's 500 still gets its request id and is counted.
    """
    scoring_routes = {route.path: route for route in scoring.router.routes if isinstance(route, APIRoute)}
    framework_stack = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:  # Starlette builds the stack once, on the first call
        return OneLineStartupFailure(
            ObservabilityMiddleware(
                ConfiguredCORS(ScoringDoor(framework_stack(), routes=scoring_routes)),
                metrics=metrics,
                unobserved_paths=(HEALTH_PATH, READY_PATH, METRICS_PATH),
                docs_paths=("/docs", "/docs/oauth2-redirect", "/redoc"),  # FastAPIOffline's defaults
            )
        )

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]


def _declare_request_schemas(app: FastAPI) -> None:
    """Put the artifact's request schemas and examples into the OpenAPI document.

    The scoring endpoints read their body themselves (see `inference.service`), so
    FastAPI cannot infer the schema; it is added here once the model, which carries the
    feature spec, is loaded. Before that the document shows a generic object.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        loaded = loaded_of(app)
        if loaded is None:
            app.openapi_schema = None  # not cached: the real schema comes with the model
            return document
        models = loaded.service.requests
        document.setdefault("components", {}).setdefault("schemas", {}).update(models.openapi_components())
        applicant_examples = {
            name: {"summary": f"a typical {name} applicant" if name != "example" else name, "value": value}
            for name, value in models.examples.items()
        }
        batch_examples = {"batch": {"summary": "several applicants in one call", "value": models.batch_example}}
        for path, name, examples in (
            (PREDICT_PATH, APPLICANT_MODEL, applicant_examples),
            (BATCH_PATH, BATCH_MODEL, batch_examples),
        ):
            content = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            content["schema"] = {"$ref": f"#/components/schemas/{name}"}
            content["examples"] = examples
        return document

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
