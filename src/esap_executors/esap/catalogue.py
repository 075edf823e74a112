"""ESAP's IDA and batch catalogues and the OSSR as one catalogue; an ESAP 500 falls back to the OSSR."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadInput, Unreachable
from .entries import Entry
from .gateway import CATALOGUES, EsapGateway
from .http import ServerError
from .ossr import Ossr

SOURCES = ("esap", "ossr")


@dataclass
class Listing:
    entries: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the user should know (fallbacks)


class SoftwareCatalogue:
    def __init__(self, gateway: EsapGateway | None, ossr: Ossr) -> None:
        self.gateway = gateway
        self.ossr = ossr

    def search(self, source: str | None = None, keyword: str | None = None) -> Listing:
        listing = Listing()
        if source in (None, "esap"):
            if self.gateway is None:
                if source == "esap":
                    raise BadInput("no ESAP gateway: give --esap URL or set ESAP_GATEWAY_URL", field="--esap")
                listing.notes.append("no ESAP gateway configured (--esap URL, ESAP_GATEWAY_URL): the OSSR only")
            else:
                self._esap(listing)
        if source in (None, "ossr"):
            self._merge(listing, self.ossr.entries())
        if keyword:
            listing.entries = [entry for entry in listing.entries if entry.matches(keyword)]
        return listing

    def _esap(self, listing: Listing) -> None:
        assert self.gateway is not None
        for catalogue in CATALOGUES:
            try:
                self._merge(listing, self.gateway.workflows(catalogue))
            except ServerError as exc:
                # ESAP harvests the OSSR on every IDA search and answers 500 when Zenodo fails
                try:
                    harvested = self.ossr.entries()
                except Unreachable as ossr_down:
                    raise Unreachable(f"{exc} (its OSSR harvest failing) and the OSSR is unreachable too: "
                                      f"{ossr_down}") from ossr_down
                listing.notes.append(f"{exc}: its OSSR harvest failed; the OSSR was read directly instead "
                                     f"({self.ossr.api}), and ESAP's own {catalogue} entries are missing")
                self._merge(listing, harvested)

    @staticmethod
    def _merge(listing: Listing, entries: list[Entry]) -> None:
        """Later entries of the same id (the OSSR read directly, with its codemeta) replace earlier ones."""
        index = {entry.id: position for position, entry in enumerate(listing.entries)}
        for entry in entries:
            if entry.id in index:
                listing.entries[index[entry.id]] = entry
            else:
                index[entry.id] = len(listing.entries)
                listing.entries.append(entry)

    def find(self, entry_id: str) -> Entry:
        """One entry by its exact id: ida/<name>, batch/<name>, ossr/<Zenodo record>."""
        source, _, key = entry_id.partition("/")
        if source == "ossr" and key:
            return self.ossr.entry(self.ossr.record(key))
        if source in CATALOGUES and key:
            if self.gateway is None:
                raise BadInput(f"{entry_id} is an ESAP entry: give --esap URL or set ESAP_GATEWAY_URL", field="--esap")
            try:
                entries = self.gateway.workflows(source)
            except ServerError as exc:
                raise Unreachable(f"{exc} (its OSSR harvest failing): ESAP's {source} entries cannot be read "
                                  "until Zenodo answers; OSSR entries (ossr/<record>) still can") from exc
            for entry in entries:
                if entry.id == entry_id:
                    return entry
            known = ", ".join(sorted(e.id for e in entries if e.source == source)) or "none"
            raise BadInput(f"unknown entry {entry_id} (ESAP {source} entries: {known})", field="ENTRY")
        raise BadInput(f"unknown entry {entry_id!r}: ids are ida/<name>, batch/<name> or ossr/<Zenodo record>"
                       " (see esap catalogue list)", field="ENTRY")
