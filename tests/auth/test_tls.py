"""TLS verification is on: an issuer whose certificate the system does not trust is refused,
unless the user names its CA (ca_bundle in auth.yaml / ESAP_OIDC_CA_BUNDLE)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from esap_executors.auth import oidc
from esap_executors.auth.config import AuthConfig
from esap_executors.auth.oidc import OidcClient
from esap_executors.errors import Unreachable


@pytest.fixture
def https_issuer(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    authority = trustme.CA()
    certificate = authority.issue_cert("localhost")

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            base = f"https://localhost:{self.server.server_address[1]}"
            body = json.dumps({"issuer": base + "/", "token_endpoint": base + "/token",
                               "jwks_uri": base + "/jwk", "device_authorization_endpoint": base + "/devicecode"})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    try:
        yield f"https://localhost:{server.server_address[1]}/", ca_file
    finally:
        server.shutdown()


def test_untrusted_certificate_is_refused_and_a_named_ca_accepted(https_issuer: tuple[str, Path],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    issuer, ca_file = https_issuer
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    oidc._DISCOVERY_CACHE.clear()
    with pytest.raises(Unreachable, match="cannot reach the identity provider"):
        OidcClient(AuthConfig(issuer=issuer, client_id="x")).discovery()
    trusted = OidcClient(AuthConfig(issuer=issuer, client_id="x", ca_bundle=str(ca_file)))
    assert trusted.discovery().device_authorization_endpoint == issuer + "devicecode"
