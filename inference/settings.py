"""The service's configuration: environment variables, read once at start-up.

Nothing here is read at import time: `get_settings()` is called by the app's lifespan, so
`import inference.app` works without API_KEY and the missing-key refusal happens at start-up.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.explain import DEFAULT_REASONS, MAX_REASONS
from contract.names import DEFAULT_MODEL_PATH

_CONFIG = SettingsConfigDict(
    env_file=".env",
    env_file_encoding="utf-8",
    extra="ignore",
    frozen=True,
    use_attribute_docstrings=True,
    hide_input_in_errors=True,  # a rejected API_KEY or DATABASE_URL is never echoed in the error
)


class DecisionStoreSettings(BaseSettings):
    """Where decision records go; also read alone by `python -m inference.decisions` (no API_KEY needed)."""

    model_config = _CONFIG

    prediction_log_dir: Path = Path("logs")
    """PREDICTION_LOG_DIR: the local decision segments (JSONL), one file per process and day. Without
    DATABASE_URL they are the store; with it, the durable buffer the shipper empties."""

    database_url: SecretStr | None = None
    """DATABASE_URL: PostgreSQL URL (postgresql://user:password@host:port/db). Set: records are shipped
    to its `decisions` table. Unset or empty: the JSONL files are the store. Never logged."""

    decision_buffer_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    """DECISION_BUFFER_MAX_BYTES: with DATABASE_URL, most unshipped bytes a worker keeps on local disk
    while the database is unreachable; beyond it new records are dropped and counted."""

    decision_segment_max_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    """DECISION_SEGMENT_MAX_BYTES: with DATABASE_URL, a local segment is closed at this size so that
    shipped segments can be deleted."""

    decision_ship_batch_size: int = Field(default=500, ge=1, le=20_000)
    """DECISION_SHIP_BATCH_SIZE: most records per insert into PostgreSQL."""

    decision_ship_interval_s: float = Field(default=0.5, gt=0, le=60)
    """DECISION_SHIP_INTERVAL_S: how often the shipper looks for new records (seconds)."""

    decision_shutdown_timeout_s: float = Field(default=10.0, ge=0, le=600)
    """DECISION_SHUTDOWN_TIMEOUT_S: at graceful shutdown, time allowed to ship what is left; what is
    not shipped stays in the local files for the next start."""

    decision_retention_days: int = Field(default=365, ge=1)
    """DECISION_RETENTION_DAYS: `python -m inference.decisions purge` deletes records older than this."""

    @field_validator("database_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from psycopg.conninfo import conninfo_to_dict

            try:
                conninfo_to_dict(value.get_secret_value())
            except Exception:  # libpq's message quotes the URL, password included: never pass it on
                raise ValueError("not a PostgreSQL URL (postgresql://user:password@host:port/dbname)") from None
        return value


class Settings(DecisionStoreSettings):
    """Environment variables (case-insensitive); a `.env` file in the working directory also works."""

    model_config = _CONFIG

    api_key: SecretStr
    """API_KEY (required): the key(s) clients send in `x-api-key`. Several comma-separated keys
    are all accepted, to rotate without downtime: add the new key, move clients, drop the old one."""

    model_path: Path = DEFAULT_MODEL_PATH
    """MODEL_PATH: the exported ONNX artifact (it carries its feature spec, threshold and version)."""

    challenger_model_path: Path | None = None
    """CHALLENGER_MODEL_PATH: a second artifact scored on the same applicants, recorded beside the
    champion's scores and never answered (docs/MONITORING.md); unreadable, it is left out and logged."""

    ort_intra_op_threads: int = Field(default=1, ge=1)
    """ORT_INTRA_OP_THREADS: onnxruntime threads inside one operator. 1 is fastest for one row
    (no thread hand-off); scale out with uvicorn workers instead."""

    ort_inter_op_threads: int = Field(default=1, ge=1)
    """ORT_INTER_OP_THREADS: onnxruntime threads across operators (the graph runs sequentially)."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """LOG_LEVEL: level of the service's log, any case (`python -m inference` passes it to uvicorn too)."""

    max_batch_size: int = Field(default=1000, ge=1, le=100_000)
    """MAX_BATCH_SIZE: most applicants in one POST /predict/batch (more: 422)."""

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    """MAX_BODY_BYTES: largest POST /predict body (a full applicant is about 3.5 KB of JSON; more: 413)."""

    max_batch_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """MAX_BATCH_BODY_BYTES: largest POST /predict/batch body (1000 full applicants are about
    3.5 MB; more: 413)."""

    reasons_per_refusal: int = Field(default=DEFAULT_REASONS, ge=1, le=MAX_REASONS)
    """REASONS_PER_REFUSAL: how many reasons a refused applicant's result carries (1 to 10): the
    factors that pushed the score hardest towards refusal, largest first."""

    fast_door: bool = True
    """FAST_DOOR: answer the scoring endpoints through the lean ASGI door (`inference.door`).
    false: through FastAPI's routing instead; the same service gives the same answers, with
    the framework's cost on every request."""

    key_failure_limit: int = Field(default=10, ge=1)
    """KEY_FAILURE_LIMIT: failed key checks one client address may make within
    KEY_FAILURE_WINDOW_SECONDS before it gets 429 with Retry-After."""

    key_failure_window_seconds: float = Field(default=60.0, gt=0)
    """KEY_FAILURE_WINDOW_SECONDS: the throttling window."""

    key_failure_max_clients: int = Field(default=10_000, ge=1)
    """KEY_FAILURE_MAX_CLIENTS: most client addresses tracked at once (bounded memory)."""

    outcome_api_key: SecretStr | None = None
    """OUTCOME_API_KEY: the key(s) the back office sends to POST /outcomes (comma-separated, to
    rotate). A scoring key cannot post outcomes and an outcome key cannot score (403)."""

    metrics_api_key: SecretStr | None = None
    """METRICS_API_KEY: unset, /metrics is open (local use); set, it needs
    `Authorization: Bearer <key>` (Prometheus' `authorization` scrape setting)."""

    cors_origins: list[str] = []
    """CORS_ORIGINS: browser origins allowed to call the API, as a JSON list
    (e.g. ["https://desk.example.com"]); empty (the default) sends no CORS headers."""

    git_sha: str = "unknown"
    """GIT_SHA: the commit the running image was built from (baked in by CI), reported by /health."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("api_key")
    @classmethod
    def _at_least_one_key(cls, value: SecretStr) -> SecretStr:
        if not _split_keys(value.get_secret_value()):
            raise ValueError("API_KEY holds no key (give one or more comma-separated keys)")
        return value

    @field_validator("metrics_api_key", "outcome_api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _scopes_do_not_share_a_key(self) -> Settings:
        scoring = {key.get_secret_value() for key in self.api_keys}
        if scoring & {key.get_secret_value() for key in self.outcome_api_keys}:
            raise ValueError("OUTCOME_API_KEY must not repeat a key of API_KEY (each key has one scope)")
        return self

    @property
    def outcome_api_keys(self) -> tuple[SecretStr, ...]:
        """The keys accepted by POST /outcomes (none when OUTCOME_API_KEY is unset)."""
        if self.outcome_api_key is None:
            return ()
        return tuple(SecretStr(key) for key in _split_keys(self.outcome_api_key.get_secret_value()))

    @property
    def api_keys(self) -> tuple[SecretStr, ...]:
        """The accepted keys, parsed from API_KEY (each still a SecretStr: masked in any repr)."""
        return tuple(SecretStr(key) for key in _split_keys(self.api_key.get_secret_value()))


class ServerSettings(BaseSettings):
    """How `python -m inference` runs uvicorn (no API key needed to read these)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    """HOST: bind address (the image sets 0.0.0.0)."""
    port: int = Field(default=8000, ge=1, le=65535)
    """PORT: listen port (Render sets it)."""
    web_concurrency: int = Field(default=1, ge=1)
    """WEB_CONCURRENCY: worker processes (each loads its own ONNX session)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """LOG_LEVEL: uvicorn's level too."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def _split_keys(raw: str) -> list[str]:
    return [key.strip() for key in raw.split(",") if key.strip()]


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once (tests pass their own to create_app)."""
    return Settings()  # type: ignore[call-arg]  # API_KEY comes from the environment
