"""The user's ESAP shopping basket as workflow inputs, against the real gateway and real tokens.

The basket is written through the gateway's own API as ESAP's GUI saves it (PATCH of the user's
profile with `shopping_cart`), with a platform token of the project's OIDC provider; the data
are served over https by a local server whose certificate a test CA (trustme) signs.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from esap_executors.sqlite_store import open_store
from tests.cwl.helpers import jobs_of_run, outputs_of, run_id_of, run_tool
from tests.esap.conftest import GATEWAY
from tests.jdl.webserver import serve
from tests.snakemake.helpers import explain, snakemake, write_workflow
from tests.support import esap, require_service

BASKET_USER = "dana"  # a login of the test provider no other test uses: her basket is this file's own
CAT_TOOL = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs:
  data: {type: "File[]", inputBinding: {position: 1}}
stdout: joined.txt
outputs:
  joined: {type: stdout}
"""
ONE_FILE_TOOL = CAT_TOOL.replace('"File[]"', "File")
SNAKEFILE = """\
envvars: "CURL_CA_BUNDLE"

rule joined:
    output: "joined.txt"
    params: urls=config["data"]
    shell: "for u in {params.urls}; do curl -fsS \\"$u\\"; done > {output}"
"""
JDL = """\
[
  Executable = "/bin/sh";
  Arguments = "-c 'cat alpha.txt beta.txt > joined.txt'";
  StdOutput = "std.out";
  StdError = "std.err";
  OutputSandbox = {"joined.txt", "std.err"};
]
"""
DATALINK = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
 <RESOURCE type="results"><TABLE>
  <FIELD name="ID" datatype="char" arraysize="*"/>
  <FIELD name="access_url" datatype="char" arraysize="*"/>
  <FIELD name="service_def" datatype="char" arraysize="*"/>
  <FIELD name="error_message" datatype="char" arraysize="*"/>
  <FIELD name="semantics" datatype="char" arraysize="*"/>
  <DATA><TABLEDATA>
   <TR><TD>ivo://x?1</TD><TD>{base}/preview.png</TD><TD/><TD/><TD>#preview</TD></TR>
   <TR><TD>ivo://x?1</TD><TD>{base}/alpha.txt</TD><TD/><TD/><TD>#this</TD></TR>
  </TABLEDATA></DATA>
 </TABLE></RESOURCE>
</VOTABLE>
"""


@pytest.fixture
def gateway() -> str:
    """The real gateway; the basket needs no OSSR harvest (so no Zenodo stand-in)."""
    require_service("esap")
    return GATEWAY


@pytest.fixture(scope="module")
def token() -> str:
    require_service("oidc")
    from tests.auth.conftest import login

    return login(BASKET_USER, scope="openid email profile", save=False).access_token


@pytest.fixture
def basket(gateway: str, token: str) -> Iterator[Any]:
    """put(items): the user's basket as ESAP's GUI saves it; emptied afterwards."""
    profiles = gateway + "accounts/user-profiles/"
    auth = {"Authorization": f"Bearer {token}"}
    mine = requests.get(profiles, headers=auth, timeout=30).json()
    if not mine["results"]:  # ESAP's browser login creates the profile; through the API it is a POST
        created = requests.post(profiles, headers=auth, timeout=30,
                                json={"user_name": BASKET_USER, "user_email": f"{BASKET_USER}@example.test"})
        assert created.status_code == 201, created.text

    def put(items: list[Any]) -> None:
        saved = requests.patch(f"{profiles}{BASKET_USER}/", headers=auth, json={"shopping_cart": items}, timeout=30)
        assert saved.status_code == 200, saved.text

    yield put
    put([])


@pytest.fixture(scope="module")
def data_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(https base URL, CA bundle) of a server holding alpha.txt, beta.txt and a DataLink document."""
    root = tmp_path_factory.mktemp("basket-data")
    (root / "alpha.txt").write_text("alpha from the basket\n")
    (root / "beta.txt").write_text("beta from the basket\n")
    authority = trustme.CA()
    bundle = tmp_path_factory.mktemp("basket-ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    with serve(root, tls=context) as base:
        (root / "links.xml").write_text(DATALINK.format(base=base))
        yield base, bundle


def three_items(base: str) -> list[Any]:
    """Two files that exist, one that does not: shapes of ESAP's query app as the GUI saves them."""
    return [
        {"archive": "astron_vo", "record": {"name": "Alpha field", "url": f"{base}/alpha.txt", "level": "processed"}},
        {"archive": "vo_reg", "record": [f"{base}/beta.txt"]},  # a vo_reg row: the selected access_url
        {"archive": "apertif", "record": {"name": "Gamma cube", "url": f"{base}/gamma.fits"}},
    ]


@pytest.fixture
def env(token: str, data_server: tuple[str, Path], gateway: str) -> dict[str, str]:
    _, bundle = data_server
    return {"BEARER_TOKEN": token, "ESAP_GATEWAY_URL": gateway, "REQUESTS_CA_BUNDLE": str(bundle),
            "CURL_CA_BUNDLE": str(bundle)}


def assert_names_only_the_missing_item(stderr: str, base: str) -> None:
    line = stderr.strip().splitlines()[-1]
    assert '"Gamma cube" (item 3, apertif)' in line, stderr
    assert f"{base}/gamma.fits: 404" in line
    assert "1 of 3 basket item(s) cannot be used, nothing was submitted" in line
    assert "Alpha field" not in line and "beta.txt" not in line


def no_runs() -> bool:
    return list(open_store().latest_runs()) == []


# --- a missing item: named, nothing submitted ---------------------------------------------------
def test_cwl_names_the_missing_item_and_submits_nothing(tmp_path: Path, state_dir: Path, basket: Any,
                                                        data_server: tuple[str, Path], env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base))
    (tmp_path / "cat.cwl").write_text(CAT_TOOL)
    result = run_tool("esap-cwltool", "--site", "local", "--inputs-from-basket", "data", "cat.cwl",
                      cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert_names_only_the_missing_item(result.stderr, base)
    assert no_runs()


def test_jdl_names_the_missing_item_and_submits_nothing(tmp_path: Path, state_dir: Path, basket: Any,
                                                        data_server: tuple[str, Path], env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base))
    (tmp_path / "join.jdl").write_text(JDL)
    result = esap("run", "--inputs-from-basket", "join.jdl", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert_names_only_the_missing_item(result.stderr, base)
    assert no_runs()


def test_snakemake_config_names_the_missing_item_and_writes_nothing(tmp_path: Path, basket: Any,
                                                                    data_server: tuple[str, Path],
                                                                    env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base))
    result = esap("basket", "config", "data", "-o", str(tmp_path / "basket.yaml"), env=env)
    assert result.returncode == 2, result.stderr
    assert_names_only_the_missing_item(result.stderr, base)
    assert not (tmp_path / "basket.yaml").exists()


def test_snakemake_plugin_names_the_missing_item_and_submits_nothing(tmp_path: Path, state_dir: Path,
                                                                     basket: Any, data_server: tuple[str, Path],
                                                                     env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base))
    workdir = write_workflow(tmp_path / "wf", SNAKEFILE)
    result = snakemake(workdir, "--executor", "esap", "--esap-site", "local", "--jobs", "1",
                       "--esap-inputs-from-basket", "data", "--configfile", "esap-basket.yaml", env=env)
    assert result.returncode == 2, explain(result)
    assert_names_only_the_missing_item(result.stderr, base)
    assert result.stderr.strip().splitlines()[-1].startswith(
        "snakemake --executor esap: --esap-inputs-from-basket: 1 of 3 basket item(s)")
    assert not (workdir / "esap-basket.yaml").exists()
    assert not (workdir / "joined.txt").exists()
    assert no_runs()


# --- with the missing item removed, the workflow runs on the basket ---------------------------
@pytest.mark.parametrize("site", ["local", "slurm-local"])
def test_cwl_workflow_runs_on_the_basket(site: str, tmp_path: Path, state_dir: Path, basket: Any,
                                         data_server: tuple[str, Path], env: dict[str, str]) -> None:
    if site == "slurm-local":
        require_service("slurm")
    base, _ = data_server
    basket(three_items(base)[:2])
    (tmp_path / "cat.cwl").write_text(CAT_TOOL)
    result = run_tool("esap-cwltool", "--site", site, "--inputs-from-basket", "data", "cat.cwl",
                      cwd=tmp_path, env=env)
    joined = outputs_of(result)["joined"]
    assert Path(joined["path"]).read_text() == "alpha from the basket\nbeta from the basket\n"
    assert {job.site for job in jobs_of_run(run_id_of(result.stderr))} == {site}


def test_cwl_with_other_inputs_in_a_job_order_and_a_single_file_input(tmp_path: Path, state_dir: Path,
                                                                      basket: Any, data_server: tuple[str, Path],
                                                                      env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base)[:1])
    (tmp_path / "cat.cwl").write_text(ONE_FILE_TOOL.replace(
        "inputs:\n", "inputs:\n  header: {type: File, inputBinding: {position: 0}}\n"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "header.txt").write_text("header\n")
    (tmp_path / "sub" / "job.yml").write_text("header: {class: File, path: header.txt}\n")
    result = run_tool("esap-cwltool", "--executor", "local", "--inputs-from-basket", "data", "cat.cwl",
                      "sub/job.yml", cwd=tmp_path, env=env)
    assert Path(outputs_of(result)["joined"]["path"]).read_text() == "header\nalpha from the basket\n"

    basket(three_items(base)[:2])  # two files for a File input: refused before anything runs
    result = run_tool("esap-cwltool", "--inputs-from-basket", "data", "cat.cwl", "sub/job.yml",
                      cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "input 'data' is a single File and the basket holds 2 files" in result.stderr
    assert no_runs()


def test_an_input_the_workflow_does_not_have_is_one_line_exit_2(tmp_path: Path, state_dir: Path, basket: Any,
                                                                data_server: tuple[str, Path],
                                                                env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base)[:2])
    (tmp_path / "cat.cwl").write_text(CAT_TOOL)
    result = run_tool("esap-cwltool", "--inputs-from-basket", "images", "cat.cwl", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "esap-cwltool: --inputs-from-basket: cat.cwl has no input 'images' (its inputs: data)")
    assert no_runs()


def test_snakemake_workflow_runs_on_the_basket_as_config_values(tmp_path: Path, state_dir: Path, basket: Any,
                                                                data_server: tuple[str, Path],
                                                                env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base)[:2])
    workdir = write_workflow(tmp_path / "wf", SNAKEFILE)
    written = esap("basket", "config", "data", "-o", str(workdir / "basket.yaml"), env=env)
    assert written.returncode == 0, written.stderr
    assert (workdir / "basket.yaml").read_text() == f"data:\n- {base}/alpha.txt\n- {base}/beta.txt\n"
    result = snakemake(workdir, "--executor", "esap", "--esap-site", "local", "--jobs", "1",
                       "--configfile", "basket.yaml", env=env)
    assert result.returncode == 0, explain(result)
    assert (workdir / "joined.txt").read_text() == "alpha from the basket\nbeta from the basket\n"


def test_snakemake_plugin_makes_the_basket_config_values(tmp_path: Path, state_dir: Path, basket: Any,
                                                         data_server: tuple[str, Path], env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base)[:2])
    workdir = write_workflow(tmp_path / "wf", SNAKEFILE)
    result = snakemake(workdir, "--executor", "esap", "--esap-site", "local", "--jobs", "1",
                       "--esap-inputs-from-basket", "data=basket.yaml", "--configfile", "basket.yaml", env=env)
    assert result.returncode == 0, explain(result)
    assert "esap: 2 basket input(s) written to basket.yaml as config['data']" in result.stderr
    assert (workdir / "basket.yaml").read_text() == f"data:\n- {base}/alpha.txt\n- {base}/beta.txt\n"
    assert (workdir / "joined.txt").read_text() == "alpha from the basket\nbeta from the basket\n"


def test_snakemake_plugin_basket_without_its_configfile_submits_nothing(tmp_path: Path, state_dir: Path,
                                                                        basket: Any, data_server: tuple[str, Path],
                                                                        env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base)[:2])
    workdir = write_workflow(tmp_path / "wf", SNAKEFILE.replace('config["data"]', 'config.get("data", [])'))
    result = snakemake(workdir, "--executor", "esap", "--esap-site", "local", "--jobs", "1",
                       "--esap-inputs-from-basket", "data", env=env)
    assert result.returncode != 0, explain(result)
    assert ("--esap-inputs-from-basket: esap-basket.yaml holds config['data'] but Snakemake did not read it: "
            "add --configfile esap-basket.yaml") in result.stderr, explain(result)
    assert not (workdir / "joined.txt").exists()
    assert no_runs()


def test_jdl_job_runs_with_the_basket_in_its_input_sandbox(tmp_path: Path, state_dir: Path, basket: Any,
                                                           data_server: tuple[str, Path],
                                                           env: dict[str, str]) -> None:
    base, _ = data_server
    basket(three_items(base)[:2])
    (tmp_path / "join.jdl").write_text(JDL)
    result = esap("run", "--inputs-from-basket", "--output-dir", str(tmp_path / "out"), "join.jdl",
                  cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "joined.txt").read_text() == "alpha from the basket\nbeta from the basket\n"


# --- the shapes of the query app's items ------------------------------------------------------
def test_basket_list_maps_each_archive_shape(tmp_path: Path, basket: Any, data_server: tuple[str, Path],
                                             env: dict[str, str]) -> None:
    base, _ = data_server
    basket([
        {"archive": "ivoa", "record": {"obs_id": "obs-1", "access_url": f"{base}/links.xml",
                                       "access_format": "application/x-votable+xml;content=datalink"}},
        {"archive": "zenodo", "record": {"metadata": {"title": "t"}, "files": [
            {"key": "beta.txt", "links": {"self": f"{base}/beta.txt"}}]}},
        {"url": f"{base}/alpha.txt"},  # a direct URL saved by an API client (the gateway takes only objects)
    ])
    listed = esap("basket", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [(row["item"], row["url"], row["filename"]) for row in json.loads(listed.stdout)]
    assert rows == [(1, f"{base}/alpha.txt", "alpha.txt"),  # the DataLink's #this link, not its #preview
                    (2, f"{base}/beta.txt", "beta.txt"),
                    (3, f"{base}/alpha.txt", "alpha.txt")]


def test_unmappable_items_are_named_with_the_reason(basket: Any, env: dict[str, str]) -> None:
    basket([
        {"archive": "rucio", "record": {"scope": "user.dana", "name": "events.root", "type": "FILE", "bytes": 10}},
        {"archive": "zooniverse", "record": {"project_id": 7, "display_name": "Galaxy Zoo"}},
    ])
    listed = esap("basket", "list", env={**env, "ESAP_RUCIO_URL": ""})
    assert listed.returncode == 2
    line = listed.stderr.strip()
    assert line.startswith("esap: error: basket: 2 of 2 basket item(s) cannot be used")
    assert ('"events.root" (item 1, rucio): Rucio DID user.dana:events.root and no Rucio server configured'
            in line)
    assert '"Galaxy Zoo" (item 2, zooniverse): no URL, DataLink or Rucio DID in this zooniverse item' in line


def test_the_basket_is_read_with_the_token_only(basket: Any, env: dict[str, str]) -> None:
    result = esap("basket", "list", env={**env, "BEARER_TOKEN": "not-a-token"})
    assert result.returncode == 3
    assert "the gateway refused the platform token (401)" in result.stderr
    assert "not-a-token" not in result.stderr


class _RucioReplicas(http.server.BaseHTTPRequestHandler):
    """Rucio's REST `GET /replicas/{scope}/{name}` (JSON lines), for one DID whose replica is WebDAV."""

    replica = ""
    tokens_seen: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        type(self).tokens_seen.append(self.headers.get("X-Rucio-Auth-Token", ""))
        if self.path != "/replicas/user.dana/beta.txt":
            self.send_error(404, "DID not found")
            return
        body = json.dumps({"scope": "user.dana", "name": "beta.txt", "bytes": 21,
                           "rses": {"LOCAL_WEBDAV": [self.replica]}, "pfns": {self.replica: {"type": "DISK"}}})
        self.send_response(200)
        self.send_header("Content-Type", "application/x-json-stream")
        self.end_headers()
        self.wfile.write(body.encode() + b"\n")


def test_a_rucio_did_is_a_replica_url_when_a_rucio_server_is_configured(basket: Any, token: str,
                                                                        data_server: tuple[str, Path],
                                                                        env: dict[str, str]) -> None:
    """A stand-in answers Rucio's replicas call (no Rucio server runs here); the data is real."""
    base, _ = data_server
    _RucioReplicas.replica = base.replace("https://", "davs://") + "/beta.txt"
    _RucioReplicas.tokens_seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RucioReplicas)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rucio = f"http://127.0.0.1:{server.server_address[1]}"
    beta = {"archive": "rucio", "record": {"scope": "user.dana", "name": "beta.txt", "type": "FILE"}}
    try:
        basket([beta, {"archive": "rucio", "record": {"scope": "user.dana", "name": "lost.txt", "type": "FILE"}}])
        refused = esap("basket", "list", "--rucio", rucio, env=env)
        basket([beta])
        listed = esap("basket", "list", "--rucio", rucio, env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith(
        f'1 of 2 basket item(s) cannot be used, nothing was submitted: "lost.txt" (item 2, rucio): '
        f"{rucio}/replicas/user.dana/lost.txt: 404 DID not found")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == f"1\tbeta.txt\t{base}/beta.txt\n"  # the WebDAV replica, fetched over https
    assert _RucioReplicas.tokens_seen == [token] * 3  # the platform token, as ESAP's query app sends it


def test_a_datalink_without_a_this_link_is_named(tmp_path: Path, basket: Any, data_server: tuple[str, Path],
                                                 env: dict[str, str]) -> None:
    base, _ = data_server
    basket([{"archive": "ivoa", "record": {"obs_id": "obs-2", "datalink": f"{base}/alpha.txt"}}])
    listed = esap("basket", "list", env=env)
    assert listed.returncode == 2
    assert listed.stderr.strip().endswith(
        f'"obs-2" (item 1, ivoa): DataLink {base}/alpha.txt: the DataLink answer is not a VOTable '
        "(syntax error: line 1, column 0)")


def test_a_user_without_an_esap_profile_has_no_basket(gateway: str, env: dict[str, str]) -> None:
    from tests.auth.conftest import login

    stranger = login("basket-stranger", scope="openid email profile", save=False).access_token
    listed = esap("basket", "list", env={**env, "BEARER_TOKEN": stranger})
    assert listed.returncode == 2
    assert listed.stderr.strip() == ("esap: error: basket: the ESAP gateway has no user profile (and so no basket) "
                                     "for this token's user: log in to ESAP once")


def test_the_basket_is_for_jdl_jobs_not_plain_commands(tmp_path: Path, state_dir: Path, env: dict[str, str]) -> None:
    result = esap("run", "--inputs-from-basket", "--", "true", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == ("esap: error: --inputs-from-basket: applies to JDL jobs (esap run job.jdl); "
                                     "for CWL see esap-cwltool --inputs-from-basket")
    assert no_runs()
