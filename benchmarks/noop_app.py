"""The framework floor: a FastAPI app that accepts exactly what POST /predict accepts, and scores nothing.

Same server (uvicorn), same API-key dependency (`inference.security.require_api_key`), same body
handling (raw bytes with a size limit: `inference.body.read_body`, the service's own; this
process imports neither onnxruntime nor NumPy) and the same request model
built from the same feature spec (`contract.requests.build_request_models`, validated straight
from the JSON bytes), then a constant response of the same shape, written with orjson. No model,
no encoding, no prediction log, no metrics middleware: what is left is the cost of HTTP + FastAPI
+ validation, the floor our service is compared with.

    NOOP_SPEC_PATH=spec.json API_KEY=k uvicorn benchmarks.noop_app:app --no-access-log

NOOP_SPEC_PATH is the feature spec as JSON (`FeatureSpec.to_json()`); `benchmarks/http_load.py`
writes it from the served artifact, so this process never imports onnxruntime.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import SecretStr
from starlette.responses import Response

from contract.requests import RequestModels, build_request_models
from contract.spec import FeatureSpec
from inference.body import read_body
from inference.errors import ServiceError, handle_error
from inference.security import KeyRing, require_api_key

MAX_BODY_BYTES = 64 * 1024  # the service's default MAX_BODY_BYTES
CONSTANT = orjson.dumps(
    {
        "prediction": 0,
        "probability": 0.0,
        "decision": "accepted",
        "threshold": 0.5,
        "model_version": "noop",
        "request_id": "00000000000000000000000000000000",
    }
)

router = APIRouter(dependencies=[Depends(require_api_key)])


@router.post("/predict")
async def predict(request: Request) -> Response:
    models: RequestModels = request.app.state.request_models
    models.parse_applicant(await read_body(request, MAX_BODY_BYTES))  # 422 through handle_error
    return Response(CONSTANT, media_type="application/json")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    spec = FeatureSpec.from_json(Path(os.environ["NOOP_SPEC_PATH"]).read_text())
    app.state.request_models = build_request_models(spec, max_batch_size=1000)
    app.state.keyring = KeyRing([SecretStr(os.environ["API_KEY"])])
    yield


def create_app() -> FastAPI:
    app = FastAPI(title="no-op floor", lifespan=lifespan)
    app.include_router(router)
    app.add_exception_handler(ServiceError, handle_error)  # 401/413/422 in the service's error shape

    @app.get("/ready")
    async def ready() -> Response:
        return Response(b'{"status":"ready"}', media_type="application/json")

    return app


app = create_app()
