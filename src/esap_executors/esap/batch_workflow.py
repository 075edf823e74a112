"""A batch workflow description of ESAP's later batch service (reference esap.md §3: the JSON the
GUI posts to the UWS worker): `uuid`, `type`, `title`, `description`, `workflow`, and `Parameters`
with `singularity_image` (the container it runs), `cputime`, `job_name`, ... read into an Entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import BadInput
from .entries import CONTAINER, Entry, slug


def entry_from_batch_workflow(path: Path) -> Entry:
    source = str(path)
    try:
        data: Any = json.loads(path.read_text())
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}", source=source) from exc
    except json.JSONDecodeError as exc:
        raise BadInput(f"not JSON: {exc.msg}", source=source, line=exc.lineno) from exc
    if not isinstance(data, dict):
        raise BadInput("a batch workflow description is a JSON object", source=source)
    parameters = data.get("Parameters")
    if not isinstance(parameters, dict):
        raise BadInput("missing (an object with singularity_image, cputime, ...)", source=source, field="Parameters")
    image = str(parameters.get("singularity_image") or "").strip()
    if not image:
        raise BadInput("missing: the container the workflow runs in", source=source,
                       field="Parameters.singularity_image")
    title = str(data.get("title") or parameters.get("job_name") or "").strip()
    if not title:
        raise BadInput("missing", source=source, field="title")
    return Entry(
        id=f"batch-workflow/{data.get('uuid') or slug(title)}",
        source="batch-workflow",
        name=title,
        description=str(data.get("description") or ""),
        kind=CONTAINER,
        repository=str(data.get("workflow") or "") or None,
        image=image.removeprefix("docker://"),
    )
