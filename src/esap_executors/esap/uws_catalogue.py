"""A UWS job's workflow given as a software-catalogue entry: its CWL tool, as `esap catalogue cwl` writes it.

The worker reads the catalogue its deployment names: the ESAP gateway at $ESAP_GATEWAY_URL (for
ida/ and batch/ entries) and the OSSR at $ESAP_OSSR_URL (else Zenodo's API).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..errors import BadInput
from .catalogue import SoftwareCatalogue
from .cli import OSSR_ENV
from .cwl_tool import dump, tool_for
from .gateway import EsapGateway
from .http import GATEWAY_ENV
from .ossr import ZENODO_API, Ossr
from .uws_parameters import Source


def worker_catalogue(token: str | None = None) -> SoftwareCatalogue:
    """The worker's catalogue; the user's platform token goes to ESAP only when the gateway asks for one."""
    esap_url = os.environ.get(GATEWAY_ENV)
    gateway = None
    if esap_url:
        user_token = token

        def platform_token() -> str:
            assert user_token is not None
            return user_token

        gateway = EsapGateway(esap_url, token=platform_token if user_token else None)
    return SoftwareCatalogue(gateway, Ossr(os.environ.get(OSSR_ENV) or ZENODO_API))


def write_tool(source: Source, into: Path, token: str | None = None) -> Path:
    """The entry's CWL tool in the job directory, or BadInput naming the entry."""
    assert source.entry is not None
    try:
        entry = worker_catalogue(token).find(source.entry)
    except BadInput as exc:
        raise BadInput(f"{exc.detail} (the worker's catalogue)", field="workflow") from None
    if entry.source == "ossr" and entry.codemeta is None:
        raise BadInput(f"{entry.id} ({entry.name}) has no codemeta.json in its Zenodo record: "
                       "its software cannot be described", field="workflow")
    if source.image:
        entry = replace(entry, image=source.image)
    try:
        text = dump(tool_for(entry), entry.id)
    except BadInput as exc:  # nothing to run: no notebook, command line or image
        raise BadInput(exc.detail, field="workflow") from None
    path = into / source.name
    path.write_text(text)
    return path
