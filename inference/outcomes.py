"""The outcome store of a running service: the one `contract.outcomes` store its settings name.

Built on the first POST /outcomes (the scoring path never touches it) and kept on the app, so
the JSONL store's decision index is read incrementally from then on.
"""

from __future__ import annotations

import threading

from starlette.applications import Starlette

from contract.outcomes import OutcomeStore, open_outcome_store
from inference.settings import Settings

_lock = threading.Lock()


def outcome_store_of(app: Starlette, settings: Settings) -> OutcomeStore:
    """The app's outcome store: PostgreSQL when DATABASE_URL is set, else PREDICTION_LOG_DIR/outcomes.jsonl."""
    with _lock:
        store: OutcomeStore | None = getattr(app.state, "outcome_store", None)
        if store is None:
            url = settings.database_url.get_secret_value() if settings.database_url else None
            store = open_outcome_store(logs=settings.prediction_log_dir, db=url)
            app.state.outcome_store = store
        return store
