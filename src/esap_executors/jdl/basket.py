"""`esap run job.jdl --inputs-from-basket`: the basket's files as InputSandbox entries of every job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..job import StageIn
from .translate import JdlJob

if TYPE_CHECKING:
    from ..esap.basket import BasketInput


def with_basket_sandbox(jobs: Sequence[JdlJob], inputs: Sequence[BasketInput]) -> list[JdlJob]:
    """Each job's InputSandbox plus the basket's URLs, arriving under their file names."""
    if not inputs:
        return list(jobs)
    arriving: dict[str, str] = {}
    for found in inputs:
        if found.filename in arriving:
            raise BadInput(f"basket items {arriving[found.filename]} and {found.item.label()} both arrive as "
                           f"{found.filename!r} in the working directory", field="--inputs-from-basket")
        arriving[found.filename] = found.item.label()
    added = tuple(StageIn(source=found.url, dest=found.filename) for found in inputs)
    result = []
    for job in jobs:
        taken = {entry.dest for entry in job.spec.stage_in} & set(arriving)
        if taken:
            name = sorted(taken)[0]
            raise BadInput(f"basket item {arriving[name]} arrives as {name!r}, which the InputSandbox already has",
                           field="--inputs-from-basket")
        result.append(replace(job, spec=job.spec.with_changes(stage_in=job.spec.stage_in + added)))
    return result
