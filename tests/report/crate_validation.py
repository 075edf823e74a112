"""Validating a crate with roc-validator on a machine without network access.

roc-validator fetches the crate's JSON-LD contexts over HTTP. Here they are served from local
copies: the RO-Crate context the rocrate library ships (1.3, with the terms 1.1 maps otherwise),
and the Workflow Run terms' context (tests/report/data: the terms of
https://w3id.org/ro/terms/workflow-run).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3 import HTTPResponse

DATA = Path(__file__).resolve().parent / "data"
BIOSCHEMAS_1_1 = {
    "ComputationalWorkflow": "https://bioschemas.org/ComputationalWorkflow",
    "FormalParameter": "https://bioschemas.org/FormalParameter",
    "input": "https://bioschemas.org/ComputationalWorkflow#input",
    "output": "https://bioschemas.org/ComputationalWorkflow#output",
}


def _contexts() -> dict[str, bytes]:
    import rocrate

    ro_crate = Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld"
    context = json.loads(ro_crate.read_text())["@context"]
    # RO-Crate 1.1 (what the Workflow Run Crate 0.5 profiles build on) maps the Bioschemas terms
    # the crate uses differently from 1.3; otherwise the 1.3 context is a superset of it.
    context.update(BIOSCHEMAS_1_1)
    return {
        "https://w3id.org/ro/crate/1.1/context": json.dumps({"@context": context}).encode(),
        "https://w3id.org/ro/terms/workflow-run/context": (DATA / "workflow-run-context.jsonld").read_bytes(),
    }


class LocalContexts(BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.documents = _contexts()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = str(request.url)
        body = self.documents.get(url.rstrip("/"))
        raw = HTTPResponse(body=io.BytesIO(body or b""), headers={"Content-Type": "application/ld+json"},
                           status=200 if body is not None else 404, preload_content=False, request_url=url)
        return HTTPAdapter().build_response(request, raw)

    def close(self) -> None:
        pass


def validate(crate: Path, profile: str) -> list[str]:
    """The issues roc-validator finds at the REQUIRED level ([] when the crate is valid)."""
    from rocrate_validator import models, services
    from rocrate_validator.utils.document_loader import install_document_loader

    install_document_loader()  # contexts through HttpRequester's session, not urllib
    local = LocalContexts()
    original = requests.Session.get_adapter

    def get_adapter(session: requests.Session, url: str) -> BaseAdapter:
        if url.startswith(("https://w3id.org/", "http://w3id.org/")):
            return local
        return original(session, url)

    # every session roc-validator makes (it rebuilds its cached session per validation) asks here
    requests.Session.get_adapter = get_adapter  # type: ignore[method-assign]
    try:
        settings = services.ValidationSettings(rocrate_uri=str(crate), profile_identifier=profile,
                                               requirement_severity=models.Severity.REQUIRED)
        result = services.validate(settings)
    finally:
        requests.Session.get_adapter = original  # type: ignore[method-assign]
    return [f"{issue.check.identifier}: {issue.message}" for issue in result.get_issues()]
