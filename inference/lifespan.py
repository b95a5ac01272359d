"""Start-up and shutdown: everything the service holds is built here, nothing at import.

Start-up reads the settings, loads and checks the model, builds the request models from the
artifact's feature spec, starts the decision recorder and puts one `Loaded` on `app.state`.
If the settings or the model are unusable the service refuses to start with a one-line
reason (no traceback: the reason is the whole story). Shutdown takes readiness away first,
then writes out the decision record.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from pydantic import ValidationError

from contract.explain import Explainer, ExplainerUnavailable
from contract.requests import build_request_models
from contract.scorer import ModelLoadError, Scorer
from inference.challenger import Challenger
from inference.decisions import open_recorder
from inference.metrics import Metrics
from inference.security import KeyGate, KeyRing
from inference.service import ScoringService
from inference.settings import Settings, get_settings
from inference.state import Loaded, metrics_of
from inference.throttle import FailedKeyThrottle

logger = logging.getLogger(__name__)
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StartupError(RuntimeError):
    """The service cannot start; the message is the one-line reason."""


def build_lifespan(settings: Settings | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.startup_failure = None
        try:
            current = settings or _resolve_settings(app)
            configure_logging(current.log_level)
            scorer = Scorer(current.model_path, current.ort_intra_op_threads, current.ort_inter_op_threads)
            scorer.load()
        except (ValidationError, ModelLoadError) as exc:
            reason = settings_problem(exc) if isinstance(exc, ValidationError) else str(exc)
            app.state.startup_failure = reason
            raise StartupError(reason) from None

        metadata = scorer.metadata
        metrics = metrics_of(app)
        metrics.set_model(metadata)
        recorder = open_recorder(current, metrics)
        recorder.start()
        challenger = _load_challenger(current, scorer, metrics)
        keys = KeyGate(
            {"scoring": KeyRing(current.api_keys), "outcomes": KeyRing(current.outcome_api_keys)},
            FailedKeyThrottle(
                current.key_failure_limit, current.key_failure_window_seconds, current.key_failure_max_clients
            ),
            on_failure=metrics.key_failures.inc,
            on_throttled=metrics.key_throttled.inc,
        )
        service = ScoringService(
            scorer=scorer,
            requests=build_request_models(metadata.feature_spec, current.max_batch_size, metadata.examples),
            keys=keys,
            recorder=recorder,
            metrics=metrics,
            max_body_bytes=current.max_body_bytes,
            max_batch_body_bytes=current.max_batch_body_bytes,
            challenger=challenger,
            explainer=_load_explainer(scorer),
            reasons_per_refusal=current.reasons_per_refusal,
        )
        metrics_key = current.metrics_api_key
        app.state.loaded = Loaded(
            settings=current,
            service=service,
            recorder=recorder,
            metrics_keyring=KeyRing([metrics_key]) if metrics_key is not None else None,
        )
        app.openapi_schema = None  # the document now carries this model's request schema
        logger.info(
            "serving %s version %s (%d features, threshold %.4f) from %s; %d API key(s); decision records: %s",
            metadata.model_name,
            metadata.model_version,
            len(metadata.feature_spec),
            metadata.threshold,
            current.model_path,
            len(current.api_keys),
            recorder.description,
        )
        try:
            yield
        finally:
            app.state.loaded = None  # readiness false from here on
            scorer.close()
            # The server has answered its last request: ship what is left within the bound.
            recorder.close(current.decision_shutdown_timeout_s)
            app.openapi_schema = None
            logger.info("stopped; decision records written out")

    return lifespan


def _load_explainer(scorer: Scorer) -> Explainer | None:
    """The artifact's exact TreeSHAP tables; an artifact exported before them serves without reasons."""
    try:
        return Explainer.from_metadata(scorer.metadata)
    except ExplainerUnavailable as exc:
        logger.warning("no reasons for refusals: %s", exc)
        return None


def _load_challenger(settings: Settings, champion: Scorer, metrics: Metrics) -> Challenger | None:
    """The challenger, or None: an unusable one never stops the champion from serving."""
    if settings.challenger_model_path is None:
        return None
    scorer = Scorer(settings.challenger_model_path, settings.ort_intra_op_threads, settings.ort_inter_op_threads)
    try:
        scorer.load()
    except ModelLoadError as exc:
        logger.error("challenger not loaded, serving the champion alone: %s", exc)
        return None
    logger.info("challenger %s version %s scored in shadow", scorer.metadata.model_name, scorer.metadata.model_version)
    return Challenger(scorer, champion, on_failure=metrics.challenger_failures.inc)


def _resolve_settings(app: FastAPI) -> Settings:
    # Honour a test's `app.dependency_overrides[get_settings]` here too, not only in endpoints.
    provider = app.dependency_overrides.get(get_settings, get_settings)
    return provider()  # type: ignore[no-any-return]


def settings_problem(exc: ValidationError) -> str:
    """One line naming each bad environment variable (never its value: it may be a key)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        if error["type"] == "missing":
            problems.append(f"{name} is not set" + (" (one or more comma-separated keys)" if name == "API_KEY" else ""))
        else:
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def configure_logging(level: str) -> None:
    """The service's own loggers at `level`; a stderr handler unless the host configured logging."""
    service_logger = logging.getLogger("inference")
    service_logger.setLevel(level)
    if not logging.getLogger().handlers and not service_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        service_logger.addHandler(handler)
