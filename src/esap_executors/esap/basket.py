"""The user's ESAP shopping basket as workflow inputs: read it, map each item to a URL, check each.

1. read the basket from the gateway with the user's platform token (gateway.py);
2. map every item to references without the network (basket_items.py);
3. resolve: a DataLink document to its `#this` link, a Rucio DID to a replica's URL when a Rucio
   server is configured (its REST API, the token as X-Rucio-Auth-Token, as ESAP's query app does);
4. check that every URL answers (HEAD, else a GET that reads nothing).
Every item that fails is listed by name in one BadInput (exit 2) before any front submits.
Fetching stays with the fronts (cwltool's http(s) Files, the JDL sandbox): only URLs leave here.
The platform token goes to the gateway and the configured Rucio server, never to data URLs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from ..errors import BadInput
from .basket_items import (
    DATALINK,
    GATEWAY_ENV,
    RUCIO,
    RUCIO_ENV,
    BasketItem,
    Reference,
    Unmappable,
    decode_item_data,
    file_name,
    is_datalink_type,
    references_of,
)
from .datalink import DatalinkError, this_link
from .gateway import EsapGateway

TIMEOUT = (10, 60)
CHECKS_AT_ONCE = 8  # items resolved and checked in parallel (a basket may hold hundreds)
OPTION = "--inputs-from-basket"


@dataclass(frozen=True)
class BasketInput:
    item: BasketItem
    url: str  # http(s), answered
    filename: str  # the name it arrives under


class Problem(Exception):
    pass


def read_basket(gateway: EsapGateway, field: str = OPTION) -> list[BasketItem]:
    user, raw_items = gateway.shopping_cart(field)
    if not raw_items:
        raise BadInput(f"the ESAP basket of {user or 'this user'} is empty", field=field)
    return [BasketItem(position, decode_item_data(raw)) for position, raw in enumerate(raw_items, start=1)]


def inputs_from_basket(gateway_url: str | None, token: Callable[[], str], *, rucio_url: str | None = None,
                       session: requests.Session | None = None, field: str = OPTION) -> list[BasketInput]:
    """Every item's URLs, in the basket's order; BadInput naming every item that cannot be used."""
    if not gateway_url:
        raise BadInput(f"no ESAP gateway: give --esap URL or set ${GATEWAY_ENV}", field=field)
    http = session or requests.Session()
    items = read_basket(EsapGateway(gateway_url, token=token, login=True, session=http), field)
    resolver = _Resolver(http, token, rucio_url)
    with ThreadPoolExecutor(max_workers=CHECKS_AT_ONCE) as pool:
        outcomes = list(pool.map(resolver.outcome, items))
    problems = [f"{item.label()}: {outcome}" for item, outcome in zip(items, outcomes, strict=True)
                if isinstance(outcome, str)]
    if problems:
        raise BadInput(f"{len(problems)} of {len(items)} basket item(s) cannot be used, nothing was submitted: "
                       + "; ".join(problems), field=field)
    return [BasketInput(item, url, name) for item, outcome in zip(items, outcomes, strict=True)
            if not isinstance(outcome, str) for url, name in outcome]


class _Resolver:
    def __init__(self, session: requests.Session, token: Callable[[], str], rucio_url: str | None) -> None:
        self._session = session
        self._token_source = token
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self._rucio = rucio_url.rstrip("/") if rucio_url else None

    def outcome(self, item: BasketItem) -> list[tuple[str, str]] | str:
        """(URL, file name) of each file of the item, or why it cannot be used."""
        try:
            return self.urls(item)
        except (Unmappable, Problem) as exc:
            return str(exc)

    def urls(self, item: BasketItem) -> list[tuple[str, str]]:
        found = []
        for reference in references_of(item):
            url = self._url_of(reference)
            content_type = self._check(url)
            if reference.kind != DATALINK and is_datalink_type(content_type):
                url = self._this_link(url)  # an IVOA access_url that serves a DataLink document
                self._check(url)
            found.append((url, reference.name or file_name(url) or f"item-{item.position}"))
        return found

    def _url_of(self, reference: Reference) -> str:
        if reference.kind == RUCIO:
            return self._rucio_replica(reference.value)
        if reference.kind == DATALINK:
            return self._this_link(reference.value)
        return reference.value

    def _this_link(self, url: str) -> str:
        response = self._request("GET", url)
        try:
            return this_link(response.content)
        except DatalinkError as exc:
            raise Problem(f"DataLink {url}: {exc}") from None

    def _rucio_replica(self, did: str) -> str:
        if self._rucio is None:
            raise Unmappable(f"Rucio DID {did} and no Rucio server configured (--rucio URL or ${RUCIO_ENV})")
        scope, name = did.split(":", 1)
        url = f"{self._rucio}/replicas/{scope}/{name}"
        response = self._request("GET", url, headers={"X-Rucio-Auth-Token": self._platform_token(),
                                                      "Accept": "application/x-json-stream"})
        for line in response.text.splitlines():
            try:
                replica = json.loads(line)
            except ValueError:
                raise Problem(f"Rucio {url} answered something that is not JSON lines") from None
            for pfn in _pfns(replica):
                return pfn
        raise Problem(f"Rucio has no http(s) or WebDAV replica of {did}")

    def _platform_token(self) -> str:
        with self._token_lock:  # asked once, not by every thread (a refresh writes the token cache)
            if self._token is None:
                self._token = self._token_source()
            return self._token

    def _check(self, url: str) -> str:
        """The URL's content type; raises Problem when it cannot be fetched."""
        response = self._request("HEAD", url, accept_refusal=True)
        if response.status_code in (403, 405, 501):  # servers that refuse HEAD (e.g. presigned GET URLs)
            with self._request("GET", url, stream=True) as streamed:
                return streamed.headers.get("Content-Type", "")
        _raise_for_status(url, response)
        return response.headers.get("Content-Type", "")

    def _request(self, method: str, url: str, *, headers: dict[str, str] | None = None, stream: bool = False,
                 accept_refusal: bool = False) -> requests.Response:
        try:
            response = self._session.request(method, url, headers=headers, stream=stream, timeout=TIMEOUT,
                                             allow_redirects=True)
        except requests.exceptions.SSLError:
            raise Problem(f"{url}: TLS certificate verification failed "
                          "(REQUESTS_CA_BUNDLE names the CA bundle that signs the server)") from None
        except requests.RequestException as exc:
            raise Problem(f"{url}: unreachable ({type(exc).__name__})") from None
        if not accept_refusal:
            _raise_for_status(url, response)
        return response


def _raise_for_status(url: str, response: requests.Response) -> None:
    if response.status_code >= 400:
        raise Problem(f"{url}: {response.status_code} {response.reason or ''}".rstrip())


def _pfns(replica: object) -> list[str]:
    """The replica's URLs this project can fetch; WebDAV (davs://, dav://) is http(s)."""
    if not isinstance(replica, dict):
        return []
    pfns = list(replica.get("pfns") or {})
    for urls in (replica.get("rses") or {}).values():
        pfns.extend(u for u in urls if u not in pfns)
    found = []
    for pfn in pfns:
        scheme, _, rest = str(pfn).partition("://")
        mapped = {"https": "https", "http": "http", "davs": "https", "dav": "http"}.get(scheme.lower())
        if mapped and rest:
            found.append(f"{mapped}://{rest}")
    return found
