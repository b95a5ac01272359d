"""Dependencies of the information endpoints, declared once as Annotated aliases.

They read the `Loaded` state the lifespan put on `app.state` (503 while there is none). All are
`async def`: FastAPI runs plain `def` dependencies in a thread pool. The scoring endpoints use
none: the scoring service does their checks (see `inference.service`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from inference.errors import ModelNotReady
from inference.state import Loaded, loaded_of


async def get_loaded(request: Request) -> Loaded:
    loaded = loaded_of(request.app)
    if loaded is None:
        raise ModelNotReady("The model is not loaded (the service is starting or stopping)")
    return loaded


LoadedDep = Annotated[Loaded, Depends(get_loaded)]
