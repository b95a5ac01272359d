"""The framework floor: a FastAPI app that accepts exactly what POST /predict accepts, and scores nothing.

Same server (uvicorn), the same API-key check (`inference.security.KeyRing` behind the same
header scheme), the same body handling (raw bytes with a size limit: `inference.body.read_limited`,
the service's own; this process imports neither onnxruntime nor NumPy) and the same request model
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
from typing import Annotated

import orjson
from fastapi import APIRouter, FastAPI, Request, Security
from pydantic import SecretStr
from starlette.responses import Response

from contract.requests import RequestInvalid, RequestModels, build_request_models
from contract.spec import FeatureSpec
from inference.body import read_limited
from inference.errors import ServiceError, Unauthorized, handle_error
from inference.security import KeyRing, api_key_header

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

ApiKey = Annotated[str | None, Security(api_key_header)]
router = APIRouter()


@router.post("/predict")
async def predict(request: Request, api_key: ApiKey) -> Response:
    keyring: KeyRing = request.app.state.keyring
    if not api_key or not keyring.accepts(api_key):
        raise Unauthorized("Invalid API key")
    models: RequestModels = request.app.state.request_models
    body = await read_limited(request.stream(), request.headers.get("content-length"), MAX_BODY_BYTES)
    models.parse_applicant(body)  # 422 through handle_error
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
    for exc_type in (ServiceError, RequestInvalid):  # 401/413/422 in the service's error shape
        app.add_exception_handler(exc_type, handle_error)

    @app.get("/ready")
    async def ready() -> Response:
        return Response(b'{"status":"ready"}', media_type="application/json")

    return app


app = create_app()
