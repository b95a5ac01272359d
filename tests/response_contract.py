"""Every answer a test client receives is checked against the response model the OpenAPI
document declares for its path, method and status (errors: the one error shape)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from pydantic import BaseModel

from inference import schemas
from inference.errors import ErrorResponse

MODELS: dict[str, type[BaseModel]] = {
    name: model
    for name, model in vars(schemas).items()
    if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__ == schemas.__name__
} | {"ErrorResponse": ErrorResponse}


def declared_model(document: dict[str, Any], path: str, method: str, status: int) -> type[BaseModel] | None:
    operation = document["paths"].get(path, {}).get(method.lower())
    response = (operation or {}).get("responses", {}).get(str(status))
    if response is None:
        return ErrorResponse if status >= 400 else None
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    return MODELS[ref.rsplit("/", 1)[-1]] if ref else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation can hold: `X`, `X | None`, `list[X | Y]`, ..."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def check(model: type[BaseModel], body: Any) -> None:
    """Valid for the model, and no key the model does not declare (nested models too)."""
    model.model_validate(body)
    extra = set(body) - set(model.model_fields)
    assert not extra, f"{model.__name__} does not declare {sorted(extra)}"
    for name, field in model.model_fields.items():
        candidates = _models_in(field.annotation)
        value = body.get(name)
        for item in value if isinstance(value, list) else [value]:
            if candidates and isinstance(item, dict):
                _check_any(candidates, item)


def _check_any(candidates: list[type[BaseModel]], body: dict[str, Any]) -> None:
    failures = []
    for candidate in candidates:
        try:
            check(candidate, body)
            return
        except (AssertionError, ValueError) as exc:
            failures.append(f"{candidate.__name__}: {exc}")
    raise AssertionError("; ".join(failures))


def install(client: httpx.Client, app: FastAPI) -> None:
    """Check each response of `client` against `app`'s OpenAPI document."""

    def on_response(response: httpx.Response) -> None:
        if not response.headers.get("content-type", "").startswith("application/json"):
            return
        response.read()
        model = declared_model(app.openapi(), response.request.url.path, response.request.method, response.status_code)
        if model is not None:
            check(model, orjson.loads(response.content))

    client.event_hooks = {"request": [], "response": [on_response]}
