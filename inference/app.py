"""The FastAPI application: `uvicorn inference.app:app`.

`create_app(settings)` wires routers, the error handler, metrics and the offline docs; the
model, the keys and the prediction log arrive in the lifespan (`inference.lifespan`), so
importing this module needs no environment and loads nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from contract.requests import APPLICANT_MODEL, BATCH_MODEL, RequestInvalid
from inference import __version__
from inference.errors import ServiceError, handle_error
from inference.fast_path import FastPredict
from inference.lifespan import OneLineStartupFailure, build_lifespan
from inference.metrics import Metrics
from inference.middleware import ObservabilityMiddleware
from inference.routes import scoring, service
from inference.settings import Settings

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
    )
    app.state.metrics = metrics = Metrics()
    app.include_router(scoring.router)
    app.include_router(service.router)
    for exc_type in (ServiceError, RequestInvalid, HTTPException, RequestValidationError, Exception):
        app.add_exception_handler(exc_type, handle_error)
    app.add_middleware(FastPredict)  # innermost: inside the observing middleware (ids, metrics, log)
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=metrics,
        scored_paths=(scoring.PREDICT_PATH, scoring.BATCH_PATH),
        unobserved_paths=(service.HEALTH_PATH, service.READY_PATH, service.METRICS_PATH),
    )
    app.add_middleware(OneLineStartupFailure)
    _declare_request_schemas(app)
    return app


def _declare_request_schemas(app: FastAPI) -> None:
    """Put the artifact's request schemas and examples into the OpenAPI document.

    The scoring endpoints read their body themselves (see `inference.routes.scoring`), so
    FastAPI cannot infer the schema; it is added here once the model, which carries the
    feature spec, is loaded. Before that the document shows a generic object.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        runtime = getattr(app.state, "scoring", None)
        if runtime is None:
            app.openapi_schema = None  # not cached: the real schema comes with the model
            return document
        models = runtime.requests
        document.setdefault("components", {}).setdefault("schemas", {}).update(models.openapi_components())
        for path, name, example in (
            (scoring.PREDICT_PATH, APPLICANT_MODEL, models.example),
            (scoring.BATCH_PATH, BATCH_MODEL, models.batch_example),
        ):
            content = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            content["schema"] = {"$ref": f"#/components/schemas/{name}"}
            content["example"] = example
        return document

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
