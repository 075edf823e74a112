"""The real ESAP gateway (scripts/services/esap.sh) and the Zenodo stand-in its OSSR harvest reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.esap.zenodo_standin import ZenodoStandIn
from tests.support import require_service

GATEWAY = "http://127.0.0.1:9480/esap-api/"
# esap.sh points the gateway's OSSR harvest here (ESAP_ZENODO_API_URL): the stand-in must listen on it
GATEWAY_ZENODO_PORT = 9481


@pytest.fixture(scope="module")
def zenodo() -> Iterator[ZenodoStandIn]:
    """Zenodo as the gateway sees it: recorded records of escape2020 and their codemeta.json files."""
    with ZenodoStandIn(port=GATEWAY_ZENODO_PORT) as standin:
        yield standin


@pytest.fixture
def gateway(zenodo: ZenodoStandIn) -> str:
    require_service("esap")
    zenodo.down = False
    return GATEWAY


@pytest.fixture
def cli_env(gateway: str, zenodo: ZenodoStandIn) -> dict[str, str]:
    """The CLI's environment additions: the gateway, and the OSSR at the stand-in."""
    return {"ESAP_GATEWAY_URL": gateway, "ESAP_OSSR_URL": zenodo.api}
