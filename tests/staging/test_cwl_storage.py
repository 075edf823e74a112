"""esap-cwltool with inputs by storage URL (https:// and davs://) and --esap-outputs-to, against the
real WebDAV server, on a SLURM site (shared filesystem) and an HTCondor site without one."""

from __future__ import annotations

import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from esap_executors.states import JobState
from tests.cwl.helpers import jobs_of_run, outputs_of, run_id_of, run_tool
from tests.staging.conftest import Storage, login, visible_files, write_auth
from tests.support import EXAMPLE_SITES, require_service

WORKFLOW = Path(__file__).parent / "data" / "storage.cwl"
TABLE = b"ra dec\n10.5 -3.2\n"


def _inputs(server: Storage, tmp_path: Path, *, table: str | None = None) -> Path:
    server.put_file("in/table.txt", TABLE)
    server.put_file("in/folder/a.dat", b"alpha\n")
    server.put_file("in/folder/sub/b.dat", b"beta\n")
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump({
        "table": {"class": "File", "location": table or server.https("in/table.txt")},
        "folder": {"class": "Directory", "location": server.davs("in/folder")},
    }))
    return job


@pytest.mark.parametrize("site", ["slurm-local", "htcondor-transfer"])
def test_inputs_by_url_reach_the_steps_and_outputs_are_uploaded(
        site: str, logged_in: Storage, tmp_path: Path) -> None:
    require_service("slurm" if site.startswith("slurm") else "htcondor")
    job = _inputs(logged_in, tmp_path)
    run_dir = tmp_path / "work"
    run_dir.mkdir()
    completed = run_tool("esap-cwltool", "--site", site, "--no-container", "--outdir", tmp_path / "out",
                         "--esap-outputs-to", logged_in.davs("results/"), WORKFLOW, job, cwd=run_dir)
    outputs = outputs_of(completed)

    combined = Path(outputs["combined"]["path"]).read_text()
    assert combined == TABLE.decode() + "a.dat\nsub\nalpha\nbeta\n"
    assert Path(outputs["size"]["path"]).read_text().split()[0] == "6"
    # the final outputs are on the storage, whole, and nothing else (no temporary upload names)
    assert visible_files(logged_in.local("results")) == ["combined.txt", "size.txt"]
    assert (logged_in.local("results") / "combined.txt").read_text() == combined
    assert "2 output file(s) uploaded" in completed.stderr
    jobs = jobs_of_run(run_id_of(completed.stderr))
    assert sorted((j.site, j.state) for j in jobs) == [(site, JobState.COMPLETED)] * 2


def test_a_missing_input_url_is_named_before_anything_is_submitted(logged_in: Storage, tmp_path: Path) -> None:
    missing = logged_in.https("in/no-such-table.txt")
    job = _inputs(logged_in, tmp_path, table=missing)
    completed = run_tool("esap-cwltool", "--site", "local", "--no-container", "--outdir", tmp_path / "out",
                         WORKFLOW, job, cwd=tmp_path)

    assert completed.returncode == 2, completed.stderr[-2000:]
    [line] = [x for x in completed.stderr.splitlines() if x.startswith("esap-cwltool: ")]
    assert str(job) in line and "table" in line and missing in line, line
    assert "esap run r" not in completed.stderr  # no run was opened: nothing was recorded or sent
    assert not (tmp_path / "out").exists()


def test_no_write_scope_stops_before_the_run(server: Storage, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESAP_AUTH_CONFIG", str(write_auth(tmp_path, server, ["storage.read:/"])))
    login(server, scope="openid offline_access storage.read:/")
    job = _inputs(server, tmp_path)
    completed = run_tool("esap-cwltool", "--site", "local", "--no-container", "--outdir", tmp_path / "out",
                         "--esap-outputs-to", server.davs("results/"), WORKFLOW, job, cwd=tmp_path)

    assert completed.returncode == 3, completed.stderr[-2000:]
    [line] = [x for x in completed.stderr.splitlines() if x.startswith("esap-cwltool: ")]
    assert "storage.modify" in line or "storage.create" in line, line
    assert "esap run r" not in completed.stderr
    assert visible_files(server.local("results")) == []


def test_a_default_located_by_url_is_fetched_too(logged_in: Storage, tmp_path: Path) -> None:
    job = _inputs(logged_in, tmp_path)
    order = yaml.safe_load(job.read_text())
    workflow = yaml.safe_load(WORKFLOW.read_text())
    workflow["inputs"]["folder"] = {"type": "Directory", "default": order.pop("folder")}
    (tmp_path / "defaults.cwl").write_text(yaml.safe_dump(workflow))
    job.write_text(yaml.safe_dump(order))
    completed = run_tool("esap-cwltool", "--site", "local", "--no-container", "--outdir", tmp_path / "out",
                         tmp_path / "defaults.cwl", job, cwd=tmp_path)
    outputs = outputs_of(completed)

    assert Path(outputs["combined"]["path"]).read_text() == TABLE.decode() + "a.dat\nsub\nalpha\nbeta\n"
    assert "esap: 2 input(s) fetched from storage URLs" in completed.stderr


@pytest.fixture
def site_cache() -> Iterator[Path]:
    """The execute side's download cache of the sites below (shared by their jobs' users, like /tmp)."""
    cache = Path(tempfile.mkdtemp(prefix="esap-site-cache-", dir="/var/tmp"))
    cache.chmod(0o1777)
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


def _sites_fetching_on_execute(tmp_path: Path, cache: Path) -> Path:
    """examples/sites.yaml, its SLURM and HTCondor transfer sites' jobs fetching their own inputs."""
    data = yaml.safe_load(EXAMPLE_SITES.read_text())
    for name in ("slurm-local", "htcondor-transfer"):
        data[name]["staging"] = {"fetch": "execute", "cache": str(cache)}
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cached_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock")] if folder.exists() else []


@pytest.mark.parametrize("site", ["slurm-local", "htcondor-transfer"])
def test_jobs_fetch_their_inputs_on_sites_that_reach_the_storage(
        site: str, logged_in: Storage, tmp_path: Path, isolated: Path, site_cache: Path) -> None:
    require_service("slurm" if site.startswith("slurm") else "htcondor")
    job = _inputs(logged_in, tmp_path)
    run_dir = tmp_path / "work"
    run_dir.mkdir()
    completed = run_tool("esap-cwltool", "--site", site, "--no-container", "--outdir", tmp_path / "out",
                         "--esap-outputs-to", logged_in.davs("results/"), WORKFLOW, job, cwd=run_dir,
                         sites=_sites_fetching_on_execute(tmp_path, site_cache))
    outputs = outputs_of(completed)

    # the same outputs as when this host fetches the inputs
    combined = Path(outputs["combined"]["path"]).read_text()
    assert combined == TABLE.decode() + "a.dat\nsub\nalpha\nbeta\n"
    assert Path(outputs["size"]["path"]).read_text().split()[0] == "6"
    assert visible_files(logged_in.local("results")) == ["combined.txt", "size.txt"]
    assert "esap: 2 input(s) by storage URL, fetched by the jobs" in completed.stderr
    # fetched by the job, into the site's cache, as the job's user; nothing through this host
    assert _cached_files(isolated / "staging-cache") == []
    cached = _cached_files(site_cache)
    assert sorted(p.read_bytes() for p in cached) == [b"alpha\n", b"beta\n", TABLE]
    if site == "htcondor-transfer":  # the pool's jobs run as its owner, not as this user
        assert {p.stat().st_uid for p in cached} == {pwd.getpwnam("esapuser").pw_uid}
    assert logged_in.counts("in/table.txt")["GET"] == 1
    # the job's token was a file it removed after the fetch; none is left beside the jobs
    assert not [p for p in run_dir.rglob("token-*")]


def test_many_jobs_on_a_site_fetch_one_input_once(logged_in: Storage, tmp_path: Path, site_cache: Path) -> None:
    require_service("slurm")
    logged_in.put_file("in/flat.dat", b"flat field 1.0\n")
    workflow = tmp_path / "scatter.cwl"
    workflow.write_text(yaml.safe_dump({
        "cwlVersion": "v1.2", "class": "Workflow", "requirements": {"ScatterFeatureRequirement": {}},
        "inputs": {"flat": "File", "index": "int[]"},
        "outputs": {"lines": {"type": "File[]", "outputSource": "use/line"}},
        "steps": {"use": {
            "in": {"flat": "flat", "index": "index"}, "out": ["line"], "scatter": "index",
            "run": {"class": "CommandLineTool", "baseCommand": ["sh", "-c", 'echo "$0" $(cat "$1")'],
                    "inputs": {"index": {"type": "int", "inputBinding": {"position": 1}},
                               "flat": {"type": "File", "inputBinding": {"position": 2}}},
                    "stdout": "line.txt", "outputs": {"line": {"type": "stdout"}}}}},
    }))
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump({"flat": {"class": "File", "location": logged_in.davs("in/flat.dat")},
                                   "index": list(range(100))}))
    completed = run_tool("esap-cwltool", "--site", "slurm-local", "--no-container", "--outdir", tmp_path / "out",
                         workflow, job, cwd=tmp_path, sites=_sites_fetching_on_execute(tmp_path, site_cache))
    lines = outputs_of(completed)["lines"]

    assert len(lines) == 100
    assert Path(lines[42]["path"]).read_text() == "42 flat field 1.0\n"
    assert logged_in.counts("in/flat.dat")["GET"] == 1


def test_directory_outputs_are_uploaded_as_trees(logged_in: Storage, tmp_path: Path) -> None:
    tool = tmp_path / "tree.cwl"
    tool.write_text(yaml.safe_dump({
        "cwlVersion": "v1.2", "class": "CommandLineTool", "inputs": {},
        "baseCommand": ["sh", "-c", "mkdir -p maps/deep maps/empty/inner maps/blank && echo north > maps/n.txt "
                                    "&& echo deep > maps/deep/d.txt"],
        "outputs": {"maps": {"type": "Directory", "outputBinding": {"glob": "maps"}}},
    }))
    completed = run_tool("esap-cwltool", "--site", "local", "--no-container", "--outdir", tmp_path / "out",
                         "--esap-outputs-to", logged_in.davs("results/"), tool, cwd=tmp_path)
    outputs_of(completed)

    assert visible_files(logged_in.local("results")) == ["maps/deep/d.txt", "maps/n.txt"]
    assert (logged_in.local("results") / "maps" / "deep" / "d.txt").read_text() == "deep\n"
    # empty folders of the Directory are on the storage too, as collections
    assert (logged_in.local("results") / "maps" / "empty" / "inner").is_dir()
    assert (logged_in.local("results") / "maps" / "blank").is_dir()
    assert list((logged_in.local("results") / "maps" / "blank").iterdir()) == []
    assert "2 output file(s) uploaded" in completed.stderr


def test_a_job_that_cannot_fetch_its_input_fails_naming_why(logged_in: Storage, tmp_path: Path) -> None:
    require_service("slurm")
    job = _inputs(logged_in, tmp_path)
    sites = tmp_path / "sites.yaml"
    data = yaml.safe_load(EXAMPLE_SITES.read_text())
    data["slurm-local"]["staging"] = {"fetch": "execute", "cache": "/proc/esap-no-cache-here"}
    sites.write_text(yaml.safe_dump(data))
    completed = run_tool("esap-cwltool", "--site", "slurm-local", "--no-container", "--outdir", tmp_path / "out",
                         WORKFLOW, job, cwd=tmp_path, sites=sites)

    assert completed.returncode != 0
    assert "esap-fetch: " in completed.stderr and "/proc/esap-no-cache-here" in completed.stderr, \
        completed.stderr[-3000:]
    assert not (tmp_path / "out" / "combined.txt").exists()


def test_a_step_placed_on_a_site_that_does_not_fetch_gets_its_inputs_through_this_host(
        logged_in: Storage, tmp_path: Path, isolated: Path, site_cache: Path) -> None:
    require_service("slurm")
    job = _inputs(logged_in, tmp_path)
    workflow = yaml.safe_load(WORKFLOW.read_text())
    workflow["$namespaces"] = {"esap": "https://w3id.org/esap/cwl#"}
    workflow["steps"]["combine"]["run"]["hints"] = [{"class": "esap:Site", "site": "local"}]
    (tmp_path / "mixed.cwl").write_text(yaml.safe_dump(workflow))
    sites = _sites_fetching_on_execute(tmp_path, site_cache)
    completed = run_tool("esap-cwltool", "--site", "slurm-local", "--no-container", "--outdir", tmp_path / "out",
                         tmp_path / "mixed.cwl", job, cwd=tmp_path, sites=sites)
    outputs = outputs_of(completed)

    assert Path(outputs["combined"]["path"]).read_text() == TABLE.decode() + "a.dat\nsub\nalpha\nbeta\n"
    assert sorted((j.name, j.site) for j in jobs_of_run(run_id_of(completed.stderr))) == [
        ("combine", "local"), ("measure", "slurm-local")]
    assert len(_cached_files(isolated / "staging-cache")) == 3  # fetched here, for the local step
    assert _cached_files(site_cache) == []


MiB = 1 << 20


def _three_inputs_tool(server: Storage, tmp_path: Path) -> tuple[Path, Path]:
    for name in ("a.dat", "b.dat", "c.dat"):
        server.put_file(f"in/{name}", name.encode() * MiB)  # 5 MiB each
    tool = tmp_path / "cat.cwl"
    tool.write_text(yaml.safe_dump({
        "cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": ["wc", "-c"],
        "inputs": {name: {"type": "File", "inputBinding": {"position": i}} for i, name in enumerate("abc")},
        "stdout": "sizes.txt", "outputs": {"sizes": {"type": "stdout"}},
    }))
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump({name: {"class": "File", "location": server.davs(f"in/{name}.dat")}
                                   for name in "abc"}))
    return tool, job


def test_the_submit_hosts_cache_keeps_to_its_bound(logged_in: Storage, tmp_path: Path, isolated: Path) -> None:
    tool, job = _three_inputs_tool(logged_in, tmp_path)
    completed = run_tool("esap-cwltool", "--site", "local", "--no-container", "--outdir", tmp_path / "out",
                         tool, job, cwd=tmp_path, env={"ESAP_STAGING_CACHE_SIZE": "12M"})
    outputs = outputs_of(completed)

    assert Path(outputs["sizes"]["path"]).read_text().split("\n")[-2].split() == [str(15 * MiB), "total"]
    cached = _cached_files(isolated / "staging-cache")
    assert len(cached) == 2 and sum(p.stat().st_size for p in cached) <= 12 * MiB
    assert b"c.dat" * MiB in [p.read_bytes() for p in cached]  # the last fetched stays


def test_a_malformed_submit_cache_bound_is_named(logged_in: Storage, tmp_path: Path, isolated: Path) -> None:
    tool, job = _three_inputs_tool(logged_in, tmp_path)
    completed = run_tool("esap-cwltool", "--site", "local", "--no-container", "--outdir", tmp_path / "out",
                         tool, job, cwd=tmp_path, env={"ESAP_STAGING_CACHE_SIZE": "lots"})

    assert completed.returncode == 2, completed.stderr[-2000:]
    [line] = [x for x in completed.stderr.splitlines() if x.startswith("esap-cwltool: ")]
    assert "ESAP_STAGING_CACHE_SIZE" in line and "'lots'" in line, line
    assert "esap run r" not in completed.stderr  # no run was opened: nothing was recorded or sent
    assert _cached_files(isolated / "staging-cache") == []
    assert not (tmp_path / "out").exists()


NOTE = b"observed under clouds\n"


def _reading_workflow(tmp_path: Path) -> Path:
    """A workflow that reads one input's contents on the submit side (loadContents on a step input),
    passes another straight to its outputs, and gives a Directory to a step."""
    workflow = tmp_path / "reads.cwl"
    workflow.write_text(yaml.safe_dump({
        "cwlVersion": "v1.2", "class": "Workflow", "requirements": {"StepInputExpressionRequirement": {}},
        "inputs": {"table": "File", "note": "File", "folder": "Directory"},
        "outputs": {"header": {"type": "File", "outputSource": "read/header"},
                    "note_out": {"type": "File", "outputSource": "note"},
                    "alpha": {"type": "File", "outputSource": "open/alpha"}},
        "steps": {
            "read": {"in": {"text": {"source": "table", "loadContents": True, "valueFrom": "$(self.contents)"}},
                     "out": ["header"],
                     "run": {"class": "CommandLineTool", "baseCommand": ["printf", "%s"],
                             "inputs": {"text": {"type": "string", "inputBinding": {"position": 1}}},
                             "stdout": "header.txt", "outputs": {"header": {"type": "stdout"}}}},
            "open": {"in": {"folder": "folder"}, "out": ["alpha"],
                     "run": {"class": "CommandLineTool", "baseCommand": ["sh", "-c", 'cat "$0"/a.dat'],
                             "inputs": {"folder": {"type": "Directory", "inputBinding": {"position": 1}}},
                             "stdout": "alpha.txt", "outputs": {"alpha": {"type": "stdout"}}}}},
    }))
    return workflow


def test_inputs_read_on_the_submit_side_are_fetched_there_on_sites_whose_jobs_fetch(
        logged_in: Storage, tmp_path: Path, isolated: Path, site_cache: Path) -> None:
    """loadContents and a workflow output passed straight through need the real bytes here: the
    outputs are the same as when this host fetches every input."""
    require_service("slurm")
    job = _inputs(logged_in, tmp_path)
    logged_in.put_file("in/note.txt", NOTE)
    order = yaml.safe_load(job.read_text())
    order["note"] = {"class": "File", "location": logged_in.https("in/note.txt")}
    job.write_text(yaml.safe_dump(order))
    workflow = _reading_workflow(tmp_path)
    contents = {}
    for where, sites in (("submit", EXAMPLE_SITES), ("execute", _sites_fetching_on_execute(tmp_path, site_cache))):
        completed = run_tool("esap-cwltool", "--site", "slurm-local", "--no-container", "--outdir",
                             tmp_path / f"out-{where}", "--esap-outputs-to", logged_in.davs(f"results-{where}/"),
                             workflow, job, cwd=tmp_path, sites=sites)
        outputs = outputs_of(completed)
        contents[where] = {name: Path(outputs[name]["path"]).read_bytes() for name in ("header", "note_out", "alpha")}
        uploaded = logged_in.local(f"results-{where}")
        assert (uploaded / outputs["note_out"]["basename"]).read_bytes() == NOTE

    assert contents["execute"] == contents["submit"] == {"header": TABLE, "note_out": NOTE, "alpha": b"alpha\n"}
    assert "esap: 2 input(s) fetched from storage URLs on this host (read here: note, table)" in completed.stderr
    assert "esap: 1 input(s) by storage URL, fetched by the jobs" in completed.stderr
    assert sorted(p.read_bytes() for p in _cached_files(site_cache)) == [b"alpha\n", b"beta\n"]
