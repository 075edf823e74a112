#!/usr/bin/env bash
# webdav.sh - a REAL WebDAV storage on loopback for the staging tests, like the ESCAPE data lake's
# endpoints: wsgidav (PyPI) on cheroot over TLS with a test CA made by trustme, accepting only
# bearer tokens of the project's OIDC provider (oidc.sh) that carry the accepted audience and the
# WLCG storage scope for the path (storage.read:/p, storage.create:/p, storage.modify:/p), with
# RFC 3230 digests (Want-Digest: adler32) and a test-only fault/counter control path (see
# webdav/server.py). Its own virtual environment: $WEBDAV_VENV (wsgidav, cheroot, PyJWT, trustme).
# Usage: bash webdav.sh [start|stop|status]   (start restarts the server when its files or settings changed)
# Env (defaults): WEBDAV_DIR=/var/lib/webdav-ci WEBDAV_VENV=/opt/webdav-venv WEBDAV_PORT=9443
#   WEBDAV_ISSUER=http://127.0.0.1:9400/ WEBDAV_AUDIENCE=https://127.0.0.1:$WEBDAV_PORT WEBDAV_TIMEOUT=60
# Clients: CA $WEBDAV_DIR/ca.pem; $WEBDAV_DIR/env.json says the URL, CA, issuer, audience and the
# control key file (0600) the tests use.
set -euo pipefail
: "${WEBDAV_DIR:=/var/lib/webdav-ci}"
: "${WEBDAV_VENV:=/opt/webdav-venv}"
: "${WEBDAV_PORT:=9443}"
: "${WEBDAV_ISSUER:=http://127.0.0.1:9400/}"
: "${WEBDAV_AUDIENCE:=https://127.0.0.1:$WEBDAV_PORT}"
: "${WEBDAV_TIMEOUT:=60}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
URL="https://127.0.0.1:$WEBDAV_PORT/"
LOG="$WEBDAV_DIR/log"; PIDF="$WEBDAV_DIR/webdav.pid"; CONFIG_ID="$WEBDAV_DIR/config.id"
mkdir -p "$LOG"
SERVICE_TAG=webdav-ci; SERVICE_TIMEOUT=$WEBDAV_TIMEOUT
# shellcheck source=common.sh
. "$HERE/common.sh"
T0=$(now)
die()  { say "ERROR: $*"; tail -n 30 "$LOG/server.log" >&2 2>/dev/null || true; exit 1; }
running(){ alive "$PIDF" python && grep -q 'server.py' "/proc/$(cat "$PIDF")/cmdline" 2>/dev/null; }
case "${1:-start}" in
  stop) if running; then killpid "$PIDF" python; fi; rm -f "$PIDF"; exit 0;;
  status) running && echo "webdav running pid $(cat "$PIDF") at $URL" || echo "webdav NOT running"; exit 0;;
  start) echo "--- run $(date -Is)" >> "$LOG/timings.txt";;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2;;
esac

install(){
  if [ ! -x "$WEBDAV_VENV/bin/python" ]; then
    python3 -m venv "$WEBDAV_VENV" >> "$LOG/pip.log" 2>&1 || die "cannot create $WEBDAV_VENV (apt-get install python3-venv)"
  fi
  if ! "$WEBDAV_VENV/bin/python" -c 'import wsgidav, cheroot, jwt, trustme, cryptography' 2>/dev/null; then
    say "pip install wsgidav cheroot PyJWT[crypto] trustme into $WEBDAV_VENV"
    "$WEBDAV_VENV/bin/pip" install -q "wsgidav>=4.3" "cheroot>=10" "PyJWT[crypto]>=2.8" "trustme>=1.1" >> "$LOG/pip.log" 2>&1 \
      || die "pip install failed (see $LOG/pip.log)"
  fi
}
timed install install

# the test CA and the server's certificate (127.0.0.1, localhost), made once per directory
certificates(){
  [ -s "$WEBDAV_DIR/ca.pem" ] && [ -s "$WEBDAV_DIR/server.pem" ] && [ -s "$WEBDAV_DIR/server.key" ] && return 0
  "$WEBDAV_VENV/bin/python" - "$WEBDAV_DIR" <<'PY'
import os, sys, trustme
d = sys.argv[1]
ca = trustme.CA(organization_name="esap-executors test CA")
cert = ca.issue_cert("127.0.0.1", "localhost")
ca.cert_pem.write_to_path(os.path.join(d, "ca.pem"))
cert.cert_chain_pems[0].write_to_path(os.path.join(d, "server.pem"))
for pem in cert.cert_chain_pems[1:]:
    pem.write_to_path(os.path.join(d, "server.pem"), append=True)
old = os.umask(0o077)
cert.private_key_pem.write_to_path(os.path.join(d, "server.key"))
os.umask(old)
PY
  chmod 644 "$WEBDAV_DIR/ca.pem" "$WEBDAV_DIR/server.pem"; chmod 600 "$WEBDAV_DIR/server.key"
}
timed certificates certificates
if [ ! -s "$WEBDAV_DIR/ci.key" ]; then
  (umask 077; "$WEBDAV_VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))' > "$WEBDAV_DIR/ci.key")
fi
mkdir -p "$WEBDAV_DIR/data"; chmod 755 "$WEBDAV_DIR"
cmp -s "$HERE/webdav/server.py" "$WEBDAV_DIR/server.py" || cp "$HERE/webdav/server.py" "$WEBDAV_DIR/server.py"
"$WEBDAV_VENV/bin/python" - "$WEBDAV_DIR" "$WEBDAV_PORT" "$WEBDAV_ISSUER" "$WEBDAV_AUDIENCE" "$URL" <<'PY'
import json, os, sys
d, port, issuer, audience, url = sys.argv[1:]
settings = {"host": "127.0.0.1", "port": int(port), "root": os.path.join(d, "data"), "issuer": issuer,
            "audiences": [audience, "https://wlcg.cern.ch/jwt/v1/any"],
            "certificate": os.path.join(d, "server.pem"), "private_key": os.path.join(d, "server.key"),
            "control_key_file": os.path.join(d, "ci.key"), "pid_file": os.path.join(d, "webdav.pid"), "threads": 24}
json.dump(settings, open(os.path.join(d, "config.json"), "w"), indent=1)
env = {"url": url, "ca": os.path.join(d, "ca.pem"), "issuer": issuer, "audience": audience,
       "control_key_file": os.path.join(d, "ci.key"), "root": settings["root"]}
json.dump(env, open(os.path.join(d, "env.json"), "w"), indent=1)
PY

config_id(){ cat "$WEBDAV_DIR/server.py" "$WEBDAV_DIR/config.json" | sha256sum | cut -d' ' -f1; }
start_server(){
  local want; want=$(config_id)
  if running && [ "$(cat "$CONFIG_ID" 2>/dev/null)" != "$want" ]; then
    say "configuration changed: restarting the WebDAV server (pid $(cat "$PIDF"))"
    killpid "$PIDF" python
  fi
  if ! running; then
    rm -f "$PIDF"
    (cd "$WEBDAV_DIR" && exec setsid "$WEBDAV_VENV/bin/python" server.py config.json </dev/null >> "$LOG/server.log" 2>&1) &
    local w=0; until [ -s "$PIDF" ]; do w=$((w+1)); [ $w -lt 300 ] || die "the WebDAV server did not start"; sleep 0.1; done
    echo "$want" > "$CONFIG_ID"
  fi
  wait_for "$URL" curl -s -o /dev/null --cacert "$WEBDAV_DIR/ca.pem" "$URL"
  running || die "the WebDAV server exited"
}
timed start start_server

# a token of the provider (client credentials) with storage scopes: 401 without, 403 outside, PUT+GET+digest within
verify(){
  "$WEBDAV_VENV/bin/python" - "$URL" "$WEBDAV_DIR/ca.pem" "$WEBDAV_ISSUER" "$WEBDAV_AUDIENCE" <<'PY'
import base64, json, ssl, sys, urllib.error, urllib.parse, urllib.request, zlib
url, ca, issuer, audience = sys.argv[1:]
tls = ssl.create_default_context(cafile=ca)
def call(method, path, token=None, data=None, headers=()):
    req = urllib.request.Request(url + path.lstrip("/"), data=data, method=method, headers=dict(headers))
    if token: req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, context=tls, timeout=20) as r: return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e: return e.code, e.read(), e.headers
disc = json.load(urllib.request.urlopen(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=20))
def token(scope):
    req = urllib.request.Request(disc["token_endpoint"], urllib.parse.urlencode(
        {"grant_type": "client_credentials", "scope": scope, "audience": audience}).encode())
    req.add_header("Authorization", "Basic " + base64.b64encode(b"ci-client:ci-secret").decode())
    return json.load(urllib.request.urlopen(req, timeout=20))["access_token"]
write = token("storage.read:/.ready storage.modify:/.ready")
assert call("GET", "/.ready/")[0] == 401
assert call("PUT", "/elsewhere.txt", write, b"x")[0] == 403
body = b"webdav-ci ready\n"
status = call("PUT", "/.ready/check.txt", write, body)[0]
if status == 409:
    assert call("MKCOL", "/.ready/", write)[0] in (201, 405); status = call("PUT", "/.ready/check.txt", write, body)[0]
assert status in (201, 204), status
got = call("GET", "/.ready/check.txt", write, headers=[("Want-Digest", "adler32")])
assert got[0] == 200 and got[1] == body and got[2]["Digest"] == "adler32=%08x" % zlib.adler32(body), got[:2]
assert call("PUT", "/.ready/check.txt", token("storage.read:/.ready"), b"y")[0] == 403
print("401 without token, 403 outside scope, PUT+GET+adler32 digest ok")
PY
}
VERIFY=$(verify) || die "verification failed (is the OIDC provider at $WEBDAV_ISSUER running? bash scripts/services/oidc.sh start)"
TOTAL=$(since "$T0"); echo "total ${TOTAL}s" >> "$LOG/timings.txt"
echo "WEBDAV READY $URL (davs://127.0.0.1:$WEBDAV_PORT/; wsgidav $("$WEBDAV_VENV/bin/python" -c 'import wsgidav; print(wsgidav.__version__)'), pid $(cat "$PIDF"), CA $WEBDAV_DIR/ca.pem, tokens of $WEBDAV_ISSUER with aud $WEBDAV_AUDIENCE, $VERIFY, ${TOTAL}s, logs $LOG)"
