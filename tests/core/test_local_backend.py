"""The local backend as a user of the Run API sees it: jobs run as local processes under a
detached supervisor that enforces walltime and memory, obeys cancel and shares the cores budget."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esap_executors.backends import local as local_backend
from esap_executors.backends.base import Submission
from esap_executors.backends.local import LocalBackend
from esap_executors.backends.local_supervisor import process_start_ticks
from esap_executors.errors import BadInput
from esap_executors.job import Container, make_spec
from esap_executors.runs import JobRequest, Run, run_id_for
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState, JobStatus
from esap_executors.store import JobRecord
from tests.support import EXAMPLE_SITES, IN_CI, ROOT, require_service


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue.load(EXAMPLE_SITES)


def run_one(catalogue: Catalogue, key: str, argv: list[str], **resources: str) -> JobRecord:
    with Run.open(key, catalogue=catalogue, store=open_store()) as run:
        (record,) = run.submit([JobRequest(key="job", spec=make_spec(argv, **resources), site="local")])
        (final,) = run.wait(timeout=120).values()
    return final


def gone(pid: int, timeout: float = 15) -> bool:
    """True once `pid` has exited (a zombie waiting for init counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_start_ticks(pid) is None:
            return True
        time.sleep(0.1)
    return False


def local_rows(state_dir: Path, run_id: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(state_dir / "state.db")
    db.row_factory = sqlite3.Row
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name='local_jobs'").fetchone():
            return []  # the backend never recorded a job here
        return db.execute("SELECT * FROM local_jobs WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
    finally:
        db.close()


def test_success_with_output(state_dir: Path, catalogue: Catalogue) -> None:
    record = run_one(catalogue, "ok", ["sh", "-c", "echo hello from $PWD; echo warning >&2"])
    assert record.state is JobState.COMPLETED and record.exit_code == 0
    assert Path(record.stdout).read_text() == f"hello from {record.workdir}\n"
    assert Path(record.stderr).read_text() == "warning\n"


def test_environment_stdin_and_script(state_dir: Path, catalogue: Catalogue, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from stdin\n")
    spec = make_spec([], script='read line; echo "$line / $GREETING / $PWD"', env={"GREETING": "hi"},
                     stdin=str(tmp_path / "in.txt"), cwd=str(tmp_path / "fresh" / "dir"))
    with Run.open("script", catalogue=catalogue, store=open_store()) as run:
        run.submit([JobRequest(key="s", spec=spec, site="local")])
        (record,) = run.wait(timeout=120).values()
    assert record.state is JobState.COMPLETED
    # the working directory is created when missing
    assert Path(record.stdout).read_text() == f"from stdin / hi / {tmp_path / 'fresh' / 'dir'}\n"


def test_stream_files_are_where_the_run_and_the_store_say(state_dir: Path, catalogue: Catalogue,
                                                           tmp_path: Path) -> None:
    named = make_spec(["sh", "-c", "echo out; echo err >&2"], cwd=str(tmp_path / "w"), stdout="o.txt",
                      stderr=str(tmp_path / "e.txt"))
    default = make_spec(["sh", "-c", "echo out; echo err >&2"])
    with Run.open("streams", catalogue=catalogue, store=open_store()) as run:
        run.submit([JobRequest(key="named", spec=named, site="local"),
                    JobRequest(key="default", spec=default, site="local")])
        final = {r.key: r for r in run.wait(timeout=120).values()}
    for record in final.values():
        stored = open_store().job(record.job_id)
        assert (stored.workdir, stored.stdout, stored.stderr) == (record.workdir, record.stdout, record.stderr)
        assert (Path(record.stdout).read_text(), Path(record.stderr).read_text()) == ("out\n", "err\n")
    assert (final["named"].stdout, final["named"].stderr) == (str(tmp_path / "w" / "o.txt"), str(tmp_path / "e.txt"))
    default_dir = Path(final["default"].stdout).parent
    assert final["default"].workdir == str(default_dir) and default_dir.name == final["default"].job_id.split(".")[1]


def test_non_zero_exit_is_recorded(state_dir: Path, catalogue: Catalogue) -> None:
    record = run_one(catalogue, "fail", ["sh", "-c", "echo oops >&2; exit 3"])
    assert record.state is JobState.FAILED
    assert record.exit_code == 3
    assert Path(record.stderr).read_text() == "oops\n"


def test_walltime_kills_the_process_group(state_dir: Path, catalogue: Catalogue) -> None:
    record = run_one(
        catalogue, "walltime",
        ["sh", "-c", "sleep 60 & echo $! > child.pid; echo $$ > job.pid; wait"], walltime="2s",
    )
    assert record.state is JobState.FAILED
    assert record.reason == "walltime exceeded (TIMEOUT)"
    assert record.signal == signal.SIGTERM
    workdir = Path(record.workdir)
    for name in ("job.pid", "child.pid"):  # the shell and its background child
        assert gone(int((workdir / name).read_text())), f"{name} survived the walltime kill"


# A parent holding `size` MiB forks `children` workers that keep it shared, then all sleep.
MEMORY_JOB = """
import os, sys, time
size, children = int(sys.argv[1]), int(sys.argv[2])
block = bytearray(b"x") * (size * 1024 * 1024)  # written, so resident
pids = [os.fork() or time.sleep(3) or os._exit(0) for _ in range(children)]
time.sleep(3)
for pid in pids:
    os.waitpid(pid, 0)
print("done", len(block) // 1024 // 1024)
"""


def test_job_over_its_memory_is_killed_and_says_so(state_dir: Path, catalogue: Catalogue) -> None:
    record = run_one(catalogue, "memory-over", [sys.executable, "-c", MEMORY_JOB, "200", "0"],
                     memory="100M")
    assert record.state is JobState.FAILED
    assert record.reason is not None and "memory limit exceeded" in record.reason
    assert "100 MiB requested" in record.reason and "OUT_OF_MEMORY" in record.reason
    used = int(record.reason.split(": ")[1].split()[0])
    assert 100 < used <= 260


def test_memory_not_enforced_where_the_site_says_so(state_dir: Path, tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("local:\n  backend: local\n  options: {max_cores: 2, enforce_memory: false}\n")
    record = run_one(Catalogue.load(sites), "memory-free",
                     [sys.executable, "-c", MEMORY_JOB, "150", "0"], memory="100M")
    assert record.state is JobState.COMPLETED, record.reason


def test_memory_shared_by_forked_workers_is_counted_once(
    state_dir: Path, catalogue: Catalogue
) -> None:
    # 4 workers share the parent's 120 MiB: each resident size is ~120 MiB, the job's use ~130.
    record = run_one(catalogue, "memory-shared", [sys.executable, "-c", MEMORY_JOB, "120", "4"],
                     memory="250M")
    assert record.state is JobState.COMPLETED, record.reason
    assert Path(record.stdout).read_text().split() == ["done", "120"]


def test_cancel_running_and_queued_jobs(state_dir: Path, catalogue: Catalogue) -> None:
    spec = make_spec(["sh", "-c", "echo $$ > job.pid; exec sleep 60"])
    with Run.open("cancel", catalogue=catalogue, store=open_store()) as run:
        records = run.submit([JobRequest(key=f"c{i}", spec=spec, site="local") for i in range(3)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [r.state for r in run.snapshot().values()]
            if states.count(JobState.RUNNING) == 2:  # the site runs 2 cores; one job waits
                break
            time.sleep(0.2)
        assert sorted(s.value for s in states) == ["queued", "running", "running"]
        run.cancel()
        final = run.wait(timeout=60)
    assert {r.state for r in final.values()} == {JobState.CANCELLED}
    for record in records:
        pid_file = Path(record.workdir) / "job.pid"
        if pid_file.exists():
            assert gone(int(pid_file.read_text()))


def test_jobs_over_the_cores_budget_or_without_executable_are_refused(
    state_dir: Path, catalogue: Catalogue
) -> None:
    with Run.open("refused", catalogue=catalogue, store=open_store()) as run:
        with pytest.raises(BadInput) as too_big:
            run.submit([JobRequest(key="big", spec=make_spec(["true"], cores=3), site="local")])
        assert too_big.value.field == "cores" and "2" in str(too_big.value)
        with pytest.raises(BadInput) as missing:
            run.submit([
                JobRequest(key="fine", spec=make_spec(["true"]), site="local"),
                JobRequest(key="typo", spec=make_spec(["no-such-program-xyz"]), site="local"),
            ])
        assert missing.value.field == "argv" and "no-such-program-xyz" in str(missing.value)
        with pytest.raises(BadInput) as no_input:
            run.submit([JobRequest(key="in", spec=make_spec(["cat"], stdin="/no/such/input"),
                                   site="local")])
        assert no_input.value.field == "stdin"
        assert run.store.jobs_of_run(run.run_id) == []
    assert local_rows(state_dir, run.run_id) == []


def test_more_gpus_than_the_site_has_are_refused(state_dir: Path, tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("local:\n  backend: local\n  options: {max_cores: 2, max_gpus: 1}\n")
    catalogue = Catalogue.load(sites)
    assert LocalBackend(catalogue.get("local")).describe()["GPUs"] == 1
    with Run.open("gpus", catalogue=catalogue, store=open_store()) as run:
        with pytest.raises(BadInput) as refused:
            run.submit([JobRequest(key="two", spec=make_spec(["true"], gpus=2), site="local")])
        assert refused.value.field == "gpus"
        assert "2 GPU(s) requested, but site 'local' has 1" in str(refused.value)
        assert run.store.jobs_of_run(run.run_id) == []


def test_describe_publishes_glue_attributes(catalogue: Catalogue) -> None:
    attributes = LocalBackend(catalogue.get("local")).describe()
    assert attributes["GlueCEInfoLRMSType"] == "local"
    assert attributes["GlueCEInfoTotalCPUs"] == 2
    assert attributes["GlueCEStateStatus"] == "Production"
    assert attributes["GlueHostMainMemoryRAMSize"] > 0


SUBMITTER = """
import sys
from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store

key, count, sites, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
script = "date +%s.%N; sleep 0.03; date +%s.%N"
# The first job holds a core until the test sees both processes submitted: their jobs overlap.
first = f"date +%s.%N; while [ ! -e {go} ]; do sleep 0.05; done; date +%s.%N"
requests = [
    JobRequest(key=f"j{i}", spec=make_spec(["sh", "-c", first if i == 0 else script],
                                           cores=2 if i % 10 == 5 else 1), site="local")
    for i in range(count)
]
with Run.open(key, catalogue=Catalogue.load(sites), store=open_store()) as run:
    print("ready", flush=True)
    sys.stdin.readline()  # both processes submit at the same moment
    run.submit(requests)
    print("submitted", flush=True)
    states = {r.state.value for r in run.wait(timeout=600).values()}
print(" ".join(sorted(states)), flush=True)
sys.exit(0 if states == {"completed"} else 1)
"""


def peak_cores(intervals: list[tuple[float, float, int]]) -> int:
    """Most cores in use at any instant; an interval ending when another starts does not overlap."""
    events = sorted([(start, 1, cores) for start, _, cores in intervals]
                    + [(end, 0, -cores) for _, end, cores in intervals])
    peak = used = 0
    for _, _, delta in events:
        used += delta
        peak = max(peak, used)
    return peak


def test_200_jobs_share_the_cores_budget_across_two_processes(
    state_dir: Path, catalogue: Catalogue, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    command = [sys.executable, "-c", SUBMITTER]
    submitters = [
        subprocess.Popen([*command, key, "100", str(EXAMPLE_SITES), str(go)], cwd=ROOT, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for key in ("budget-a", "budget-b")
    ]
    for process in submitters:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == "ready\n", line + process.communicate(timeout=60)[1]
    for process in submitters:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in submitters:
        assert process.stdout is not None and process.stdout.readline() == "submitted\n"
    go.touch()
    outputs = [p.communicate(timeout=600) for p in submitters]
    for process, (out, err) in zip(submitters, outputs, strict=True):
        assert process.returncode == 0, out + err
        assert out.split() == ["completed"]
    rows = [row for key in ("budget-a", "budget-b") for row in local_rows(state_dir, run_id_for(key))]
    assert len(rows) == 200 and {row["state"] for row in rows} == {"completed"}
    assert len({row["batch"] for row in rows}) == 2
    # Both processes had jobs waiting at the same time, each alone could have used 2 cores.
    first_end = min(max(r["ended"] for r in rows if r["batch"] == b) for b in {r["batch"] for r in rows})
    assert max(r["submitted"] for r in rows) < first_end
    recorded = [(r["started"], r["ended"], r["cores"]) for r in rows]
    assert peak_cores(recorded) == 2  # the budget was used, and never exceeded
    actual = []  # the processes' own clock readings, inside the recorded intervals
    for row in rows:
        start, end = (float(v) for v in Path(row["stdout"]).read_text().split())
        assert row["started"] <= start <= end <= row["ended"]
        actual.append((start, end, row["cores"]))
    assert peak_cores(actual) <= 2


KILLED_SUBMITTER = """
import os, signal, sys
from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import SQLiteStore, open_store

key, log, sites, moment = sys.argv[1:5]
if moment == "before-confirm":  # die after the backend got the jobs, before the store knew
    SQLiteStore.set_native_ids = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if moment == "before-supervisor":  # die after recording the batch, before starting its supervisor
    from esap_executors.backends.local import LocalBackend
    LocalBackend._start_supervisor = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
run = Run.open(key, catalogue=Catalogue.load(sites), store=open_store())
requests = [
    JobRequest(key=f"k{i}", spec=make_spec(["sh", "-c", f"echo k{i} >> {log}; sleep 0.5"]),
               site="local")
    for i in range(12)
]
run.submit(requests)
print("submitted", flush=True)
run.wait(timeout=600)
"""


@pytest.mark.parametrize("moment", ["mid-run", "before-confirm", "before-supervisor"])
def test_run_resumed_after_submitter_sigkill_has_no_duplicates(
    state_dir: Path, catalogue: Catalogue, tmp_path: Path, moment: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a batch nobody supervises is adopted by the next poll after this grace
    monkeypatch.setattr(local_backend, "UNCLAIMED_GRACE_S", 1.0)
    log = tmp_path / "ran.log"
    key = f"resume-{moment}"
    submitter = subprocess.Popen(
        [sys.executable, "-c", KILLED_SUBMITTER, key, str(log), str(EXAMPLE_SITES), moment],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    if moment == "mid-run":
        assert submitter.stdout is not None
        assert submitter.stdout.readline().strip() == "submitted"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not log.exists():
            time.sleep(0.05)
        submitter.send_signal(signal.SIGKILL)
    submitter.communicate(timeout=120)
    assert submitter.returncode == -signal.SIGKILL
    killed_at = time.time()

    requests = [
        JobRequest(key=f"k{i}", spec=make_spec(["sh", "-c", f"echo k{i} >> {log}; sleep 0.5"]),
                   site="local")
        for i in range(12)
    ]
    with Run.open(key, catalogue=catalogue, store=open_store()) as run:
        again = run.submit(requests)
        final = run.wait(timeout=300)
    assert len({r.job_id for r in again}) == 12 and set(final) == {r.job_id for r in again}
    assert {r.state for r in final.values()} == {JobState.COMPLETED}
    assert len(run.store.jobs_of_run(run.run_id)) == 12
    rows = local_rows(state_dir, run.run_id)
    assert len(rows) == 12 and len({row["batch"] for row in rows}) == 1
    assert sorted(log.read_text().split()) == sorted(f"k{i}" for i in range(12))
    # The supervisor outlived the submitter: jobs kept ending after it was killed.
    assert max(row["ended"] for row in rows) > killed_at - 0.5


def test_container_job_runs_under_the_site_runtime(state_dir: Path, tmp_path: Path) -> None:
    require_service("containers")
    has_image = subprocess.run(["podman", "image", "exists", "localhost/busybox:ci"], check=False)
    if has_image.returncode != 0:
        message = "image localhost/busybox:ci missing (scripts/services/containers.sh start)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    sites = tmp_path / "sites.yaml"
    sites.write_text(
        "local:\n  backend: local\n  options: {max_cores: 2}\n"
        "  container:\n    runtime: podman\n    images: {busybox: localhost/busybox:ci}\n"
    )
    spec = make_spec(["sh", "-c", "echo inside $PWD; ls /bin/busybox"], container=Container("busybox"))
    with Run.open("container", catalogue=Catalogue.load(sites), store=open_store()) as run:
        run.submit([JobRequest(key="c", spec=spec, site="local")])
        (record,) = run.wait(timeout=120).values()
    assert record.state is JobState.COMPLETED, Path(record.stderr).read_text()
    assert Path(record.stdout).read_text() == f"inside {record.workdir}\n/bin/busybox\n"


def test_jobs_of_a_killed_supervisor_are_failed_and_the_rest_adopted(
    state_dir: Path, catalogue: Catalogue
) -> None:
    sleeper = make_spec(["sh", "-c", "echo $$ > job.pid; exec sleep 60"])
    with Run.open("adopt", catalogue=catalogue, store=open_store()) as run:
        records = run.submit([
            JobRequest(key="s1", spec=sleeper, site="local"),
            JobRequest(key="s2", spec=sleeper, site="local"),
            JobRequest(key="later", spec=make_spec(["echo", "adopted"]), site="local"),
        ])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(
            [r for r in local_rows(state_dir, run.run_id) if r["pid"] is not None]
        ) < 2:
            time.sleep(0.1)
        db = sqlite3.connect(state_dir / "state.db")
        (supervisor,) = db.execute("SELECT supervisor_pid FROM local_batches").fetchone()
        db.close()
        os.kill(supervisor, signal.SIGKILL)
        final = run.wait(timeout=120)
    by_key = {r.key: r for r in final.values()}
    for key in ("s1", "s2"):
        assert by_key[key].state is JobState.FAILED
        assert by_key[key].reason == "local supervisor lost"
        assert gone(int((Path(by_key[key].workdir) / "job.pid").read_text()))
    assert by_key["later"].state is JobState.COMPLETED
    assert Path(by_key["later"].stdout).read_text() == "adopted\n"
    assert len(records) == 3


def test_a_job_sent_twice_while_live_runs_once(state_dir: Path, catalogue: Catalogue) -> None:
    backend = LocalBackend(catalogue.get("local"))
    backend.use_store(open_store())
    workdir = state_dir / "twice"
    job = Submission(job_id="rtwice.1", run_id="rtwice", name="twice",
                     spec=make_spec(["sh", "-c", "echo once >> ../twice.log; sleep 1"]),
                     workdir=str(workdir), stdout=str(workdir / "out"), stderr=str(workdir / "err"))
    first = backend.submit([job])
    assert backend.submit([job]) == first
    deadline = time.monotonic() + 60
    while not backend.poll(first, run_id="rtwice", since=0).get(first[0], JobStatus(JobState.QUEUED)).state.is_final:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert (state_dir / "twice.log").read_text() == "once\n"
    assert [f.native_id for f in backend.find("rtwice", since=0)] == first


def test_jobs_run_on_the_store_the_run_was_given(state_dir: Path, tmp_path: Path, catalogue: Catalogue) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    with Run.open("given-store", catalogue=catalogue, store=open_store(elsewhere)) as run:
        [record] = run.submit([JobRequest(key="k", spec=make_spec(["true"]), site="local")])
        final = run.wait(timeout=120)
    assert final[record.job_id].state is JobState.COMPLETED
    queued = sqlite3.connect(elsewhere).execute("SELECT job_id, state FROM local_jobs").fetchall()
    assert queued == [(record.job_id, "completed")]
    assert not (state_dir / "state.db").exists()
