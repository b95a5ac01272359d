"""What is wrong with a request, in the words the API's 422 and the batch job's rejects carry.

Apart from the request models (`contract.requests`) so that code which only reports problems, such
as the row encoder and the batch job's column checks, does not import pydantic: a batch worker
validates a row with the request models only when the column checks flag it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pydantic import ValidationError


class FieldProblem(NamedTuple):
    field: str
    """Where: a field name, `applicants.3.AMT_INCOME_TOTAL` in a batch, or `body`."""
    problem: str
    """What is wrong with it (never the value itself: problems end up in logs)."""


class RequestInvalid(ValueError):
    """A request body the models refuse; `problems` names every field at fault."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__(f"Invalid request: {', '.join(dict.fromkeys(p.field for p in problems))}")

    @classmethod
    def from_errors(cls, errors: Iterable[Mapping[str, Any]]) -> RequestInvalid:
        """From pydantic's error dicts: the location joined with dots, the input left out."""
        return cls([FieldProblem(".".join(str(part) for part in e["loc"]) or "body", e["msg"]) for e in errors])

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> RequestInvalid:
        return cls.from_errors(exc.errors(include_url=False, include_input=False, include_context=False))
