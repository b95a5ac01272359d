"""Dependencies, declared once as Annotated aliases, for the endpoints around scoring.

They read what the lifespan put on `app.state`. All are `async def`: FastAPI runs plain
`def` dependencies in a thread pool. The two scoring endpoints use
`inference.runtime.scoring_runtime` directly instead: on the hot path a dependency's
resolution costs more than the model call.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from contract.scorer import Scorer
from inference.runtime import ScoringRuntime, scoring_runtime


async def get_scoring(request: Request) -> ScoringRuntime:
    return scoring_runtime(request)


async def get_scorer(request: Request) -> Scorer:
    return scoring_runtime(request).scorer


ScoringDep = Annotated[ScoringRuntime, Depends(get_scoring)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
