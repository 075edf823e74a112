"""A local HTTP server answering like Zenodo's records API from recorded data (tests/esap/data/zenodo).

GET /api/records?communities=&type=&q=&keywords=&size=&page=   a page of hits (Zenodo's envelope)
GET /api/records/<id>                                           one record (404 when unknown)
GET /api/records/<id>/files/<key>/content                       a record's file
Links in the recorded JSON name https://zenodo.org/api; they are answered with this server's base.
`down=True` makes every request answer 503 (a Zenodo outage that still accepts connections).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DATA = Path(__file__).parent / "data" / "zenodo"
RECORDED_BASE = "https://zenodo.org/api"


class ZenodoStandIn:
    def __init__(self, port: int = 0, data: Path = DATA) -> None:
        self.data = data
        self.requests: list[str] = []
        self.down = False
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self._server.server_address[1]
        self.api = f"http://127.0.0.1:{self.port}/api/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ZenodoStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def records(self) -> list[dict[str, Any]]:
        text = (self.data / "records.json").read_text().replace(RECORDED_BASE, self.api.rstrip("/"))
        hits: list[dict[str, Any]] = json.loads(text)["hits"]["hits"]
        return hits

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def do_GET(self) -> None:  # noqa: N802 - the base class's name
                standin.requests.append(self.path)
                if standin.down:
                    self._send(503, b'{"status": 503, "message": "Service Unavailable"}')
                    return
                parts = urlsplit(self.path)
                path = re.sub(r"/+", "/", parts.path)  # eossr asks for .../api//records
                query = parse_qs(parts.query)
                if path == "/api/records":
                    self._send_json(standin._search(query))
                    return
                match = re.fullmatch(r"/api/records/(\d+)(?:/files/(.+)/content)?", path)
                record = None
                if match:
                    record = next((r for r in standin.records() if str(r["id"]) == match.group(1)), None)
                if record is None:
                    self._send(404, b'{"status": 404, "message": "The persistent identifier does not exist."}')
                elif match and match.group(2):
                    file = standin.data / "files" / match.group(1) / match.group(2)
                    if file.is_file():
                        self._send(200, file.read_bytes(), "application/octet-stream")
                    else:
                        self._send(404, b'{"status": 404, "message": "Not found."}')
                else:
                    self._send_json(record)

            def _send_json(self, data: Any) -> None:
                self._send(200, json.dumps(data).encode(), "application/json")

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _search(self, query: dict[str, list[str]]) -> dict[str, Any]:
        hits = self.records()
        communities = query.get("communities")
        if communities:
            hits = [h for h in hits if {c["id"] for c in h["metadata"]["communities"]} & set(communities)]
        types = query.get("type")
        if types:
            hits = [h for h in hits if h["metadata"]["resource_type"]["type"] in types]
        for keyword in query.get("keywords", []):
            hits = [h for h in hits if keyword in h["metadata"].get("keywords", [])]
        size = int(query.get("size", ["10"])[0])
        page = int(query.get("page", ["1"])[0])
        chosen = hits[(page - 1) * size: page * size]
        return {"hits": {"hits": chosen, "total": len(hits)},
                "aggregations": {"access_status": {"buckets": [{"key": "open", "doc_count": len(hits),
                                                                 "label": "Open", "is_selected": False}],
                                                    "label": "Access status"}}}
