"""The ESAP API gateway's IDA and batch catalogues (reference esap.md §2, §3, §9), with their quirks.

- workflows/search ignores `keyword` and answers count 0: the caller filters client-side;
- DB entries have no id and `workflowtype`; OSSR entries (IDA only) have an id and `workflow`;
- a harvest failure of the OSSR is an HTTP 500 of the whole search (ServerError).
Reads are anonymous. When the gateway refuses them (401/403), they are repeated once with the
user's platform token from the auth layer (`Authorization: Bearer`), as ESAP's OIDC DRF
authentication expects; with `login=True` the token is sent from the first request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from ..errors import AuthError, BadInput
from .entries import CONTAINER, DESKTOP, NOTEBOOK, SOFTWARE, Entry, Facility, Person, as_tuple, slug, split_keywords
from .http import Refused, get_json

CATALOGUES = ("ida", "batch")


class EsapGateway:
    def __init__(self, url: str, *, token: Callable[[], str] | None = None, login: bool = False,
                 session: requests.Session | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise BadInput(f"not an http(s) URL: {url!r}", field="--esap")
        self.base = url.rstrip("/")
        if not self.base.endswith("/esap-api"):
            self.base += "/esap-api"
        self._token = token
        self._login = login
        self._session = session or requests.Session()

    def facilities(self, catalogue: str) -> list[Facility]:
        data = self._get(f"{catalogue}/facilities/search", what=f"ESAP {catalogue} facilities")
        return [
            Facility(catalogue=catalogue, name=str(item.get("name", "")), description=str(item.get("description", "")),
                     url=str(item.get("url", "")).strip(), facilitytype=str(item.get("facilitytype", "")),
                     runtimeengine=item.get("runtimeengine"))
            for item in _results(data)
        ]

    def workflows(self, catalogue: str) -> list[Entry]:
        data = self._get(f"{catalogue}/workflows/search", what=f"ESAP {catalogue} software")
        entries = []
        for item in _results(data):
            entry = entry_from_esap(catalogue, item)
            if entry is not None:
                entries.append(entry)
        return entries

    def shopping_cart(self, field: str = "shopping_cart") -> tuple[str, list[Any]]:
        """(user name, raw item_data of each item) of the token's user, as ESAP's GUI loads the basket.

        The accounts app finds the profile by the e-mail of the Django user that ESAP's OIDC
        authentication made from the token; a user who never logged in to ESAP has none.
        """
        what = "ESAP user profile"
        data = self._get("accounts/user-profiles/", what=what, login=True)
        profiles = _results(data)
        if not profiles:
            raise BadInput("the ESAP gateway has no user profile (and so no basket) for this token's user: "
                           "log in to ESAP once", field=field)
        profile = profiles[0]
        cart = profile.get("shopping_cart") or []
        if not isinstance(cart, list):
            raise BadInput("the ESAP user profile's shopping_cart is not a list", field="shopping_cart")
        items = [entry.get("item_data") if isinstance(entry, dict) else entry for entry in cart]
        return str(profile.get("user_name") or ""), items

    def _get(self, path: str, *, what: str, login: bool = False) -> Any:
        url = f"{self.base}/{path}"
        if not (self._login or login):
            try:
                return get_json(self._session, url, what=what)
            except Refused:
                if self._token is None:
                    raise
        try:
            return get_json(self._session, url, what=what, headers=self._auth_header())
        except Refused as exc:
            raise AuthError(f"{what}: the gateway refused the platform token ({exc.status}); "
                            "run esap login") from exc

    def _auth_header(self) -> dict[str, str]:
        if self._token is None:
            raise AuthError("the ESAP gateway needs a platform token: run esap login")
        return {"Authorization": f"Bearer {self._token()}"}


def platform_token() -> str:
    """The user's platform token (esap login, $BEARER_TOKEN, oidc-agent), as the auth layer finds it."""
    from ..auth.config import load_config
    from ..auth.tokens import find_token

    return find_token(load_config()).token


def _results(data: Any) -> list[dict[str, Any]]:
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise BadInput("the ESAP gateway answered without a results list", field="results")
    return [item for item in results if isinstance(item, dict)]


def entry_from_esap(catalogue: str, item: dict[str, Any]) -> Entry | None:
    name = str(item.get("name") or "").strip()
    if not name:
        return None
    kind_text = str(item.get("workflowtype") or item.get("workflow") or "").lower()  # OSSR entries: `workflow`
    kind = {"notebook": NOTEBOOK, "desktop": DESKTOP, "container": CONTAINER}.get(kind_text, SOFTWARE)
    harvested = "id" in item  # DB entries come without id; OSSR entries harvested by ESAP carry the record id
    url = str(item.get("url") or "").strip().removeprefix("git+")  # codemeta's npm-style "git+https://"
    authors = tuple(Person(name=a.strip()) for a in str(item.get("author") or "").split(",") if a.strip())
    return Entry(
        id=f"ossr/{item['id']}" if harvested else f"{catalogue}/{slug(name)}",
        source="ossr" if harvested else catalogue,
        name=name,
        description=str(item.get("description") or ""),
        kind=kind,
        repository=None if url in ("", "None") else url,  # batch fixtures carry the string "None"
        ref=str(item.get("ref") or "HEAD"),
        filepath=str(item.get("filepath") or "") or None,
        keywords=split_keywords(item.get("keywords")),
        authors=authors,
        runtime_platform=as_tuple(item.get("runtimePlatform")),
    )
