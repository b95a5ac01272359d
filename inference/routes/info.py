"""Open endpoints: service information, probes, an example applicant, metrics.

They need no key because they expose nothing secret and no applicant data: the model's
public description (name, version, threshold, training metrics), the spec's example
applicant (a made-up one, also shown in /docs), and aggregate counters. Put the service
behind a gateway if even that must stay internal.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from starlette.responses import Response

from contract.metadata import ModelMetadata
from contract.names import EXAMPLE_PATH, HEALTH_PATH, METRICS_PATH, READY_PATH
from inference import SERVICE_NAME, __version__
from inference.deps import LoadedDep
from inference.errors import ErrorResponse, Unauthorized
from inference.schemas import Health, ModelInfo, Readiness, ServiceInfo
from inference.state import loaded_of, metrics_of

router = APIRouter(tags=["service"])


@router.get("/", summary="Service and model information")
async def info(request: Request) -> ServiceInfo:
    """What is served: the model's name, version, threshold, feature count, training metrics."""
    loaded = loaded_of(request.app)
    model = None
    challenger = None
    limits = {}
    if loaded is not None:
        model = _model_info(loaded.service.scorer.metadata)
        if loaded.service.challenger is not None:
            challenger = _model_info(loaded.service.challenger.scorer.metadata)
        settings = loaded.settings
        limits = {
            "max_batch_size": settings.max_batch_size,
            "max_body_bytes": settings.max_body_bytes,
            "max_batch_body_bytes": settings.max_batch_body_bytes,
        }
    return ServiceInfo(
        service=SERVICE_NAME,
        version=__version__,
        ready=loaded is not None,
        model=model,
        challenger=challenger,
        limits=limits,
        docs="/docs",
    )


def _model_info(meta: ModelMetadata) -> ModelInfo:
    return ModelInfo(
        name=meta.model_name,
        version=meta.model_version,
        artifact_sha256=meta.artifact_sha256,
        mlflow_run_id=meta.mlflow_run_id,
        threshold=meta.threshold,
        created_at=meta.created_at,
        trained_on=meta.training_data,
        inputs=meta.model_inputs,
        protected_attributes=meta.protected_attributes,
        metrics=meta.metrics,
        fairness=meta.fairness,
        reasons=bool(meta.explainer),
    )


@router.get(HEALTH_PATH, summary="Liveness: the process answers")
async def health(request: Request) -> Health:
    loaded = loaded_of(request.app)
    return Health(status="ok", git_sha=loaded.settings.git_sha if loaded is not None else "unknown")


@router.get(
    READY_PATH,
    summary="Readiness: 200 once the model is loaded, 503 before and while stopping",
    responses={503: {"model": ErrorResponse, "description": "The model is not loaded"}},
)
async def ready(loaded: LoadedDep) -> Readiness:
    return Readiness(status="ready", model_version=loaded.service.model_version)


@router.get(
    EXAMPLE_PATH,
    summary="A valid example applicant (the body of POST /predict)",
    responses={
        422: {"model": ErrorResponse, "description": "`decision` is neither accepted nor refused"},
        503: {"model": ErrorResponse, "description": "The model is not loaded"},
    },
)
async def example(loaded: LoadedDep, decision: Literal["accepted", "refused"] = "accepted") -> dict[str, Any]:
    """A typical held-out applicant the model accepts (or, with `?decision=refused`, refuses):
    `curl .../example | curl -d @- .../predict` scores it."""
    examples = loaded.service.requests.examples
    return examples.get(decision, loaded.service.requests.example)


@router.get(
    METRICS_PATH,
    summary="Prometheus metrics (behind `Authorization: Bearer` when METRICS_API_KEY is set)",
    response_class=Response,
    responses={401: {"model": ErrorResponse, "description": "METRICS_API_KEY is set and was not sent"}},
)
async def metrics(request: Request) -> Response:
    loaded = loaded_of(request.app)
    if loaded is not None and loaded.metrics_keyring is not None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not loaded.metrics_keyring.accepts(credentials.strip()):
            raise Unauthorized("/metrics needs the metrics key: Authorization: Bearer <METRICS_API_KEY>", "Bearer")
    registry = metrics_of(request.app)
    return Response(registry.render(), media_type=registry.content_type)
