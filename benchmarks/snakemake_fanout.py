"""Snakemake 200-job fan-out: the esap executor vs the anchor executor plugins.

    python benchmarks/snakemake_fanout.py [--jobs 200] [--only slurm|htcondor] [--anchor-venv DIR]
                                          [--no-append] [--floor] [--no-anchors] [--compare-direct]

The same Snakefile (N independent `work` jobs, one wildcard each, gathered by `all`) runs:
  - on SLURM (site slurm-local): esap vs snakemake-executor-plugin-slurm 2.8;
  - on HTCondor (site htcondor-local): esap vs snakemake-executor-plugin-htcondor 0.3;
each tool with its default settings, and esap once more with the anchor's poll intervals
(slurm plugin: first check after 40 s, +10 s per quiet cycle up to 180 s; htcondor plugin:
every 10 s). The anchors live in their own venv (--anchor-venv, default /work/bench-venv-smk:
snakemake 9.27.1 + the two plugins), never in the project's dependencies.

Measured per run: wall time of `snakemake`, the executor's CPU (the snakemake process and the
commands it waited for), and scheduler calls, counted by pass-through shims that call the real
thing: the SLURM commands on PATH (sbatch, sacct, squeue, scontrol, scancel, sacctmgr, sinfo,
sshare, srun — also inside jobs), HTTP requests to slurmrestd, and the htcondor2 Schedd methods
(submit, query, xquery, history, act). HTCondor never runs root's jobs, so the htcondor anchor
runs as the pool's job user (esap does this itself through the site's `owner` option).
--floor adds the scheduler's floor for the same N trivial jobs (SLURM: one `sbatch --array` of
`true` waited on with squeue every 0.2 s; HTCondor: one cluster of /bin/true procs, its event log
followed), --no-anchors leaves the anchor plugins out (issue 21's ratio is against the floor),
--compare-direct adds esap with `--esap-direct-shell no` (every job starts a Snakemake).
Results are appended to benchmarks/RESULTS.md, section "snakemake".
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from results_file import append_to_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## snakemake"
SITES = ROOT / "examples" / "sites.yaml"
TARGET = 0.5
SLURM_COMMANDS = ("sbatch", "sacct", "squeue", "scontrol", "scancel", "sacctmgr", "sinfo", "sshare", "srun")
HTCONDOR_USER = "esapuser"
CHROOT_SNAKEMAKE = "/opt/esap-exec/bin/python"

SNAKEFILE = """
N = {jobs}

rule all:
    input: expand("out/{{i}}.txt", i=range(N))

rule work:
    output: "out/{{i}}.txt"
    shell: "echo {{wildcards.i}} > {{output}}"
"""

# Imported by every Python process of a run (PYTHONPATH): counts Schedd calls and REST requests.
SITECUSTOMIZE = '''
import os, sys
_CALLS = os.environ.get("ESAP_BENCH_CALLS")

def _note(name):
    fd = os.open(_CALLS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, (name + "\\n").encode())
    finally:
        os.close(fd)

def _counted(cls, method, label):
    original = getattr(cls, method, None)
    if original is None or getattr(original, "_bench", False):
        return
    def wrapper(*args, **kwargs):
        _note(label)
        return original(*args, **kwargs)
    wrapper._bench = True
    setattr(cls, method, wrapper)

def _patch(module_name, module):
    if module_name == "htcondor2":
        for m in ("submit", "query", "xquery", "history", "act", "edit", "jobEpochHistory"):
            _counted(module.Schedd, m, "htcondor2.Schedd." + m)
    elif module_name == "requests.sessions":
        original = module.Session.request
        def request(self, method, url, *args, **kwargs):
            if ":6820" in str(url):
                _note("slurmrestd " + str(method).upper())
            return original(self, method, url, *args, **kwargs)
        module.Session.request = request

if _CALLS:
    import importlib.abc, importlib.util
    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name not in ("htcondor2", "requests.sessions"):
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            if spec is None or spec.loader is None:
                return spec
            loader = spec.loader
            exec_module = loader.exec_module
            def patched(module, _exec=exec_module, _name=name):
                _exec(module)
                _patch(_name, module)
            loader.exec_module = patched
            return spec
    sys.meta_path.insert(0, _Finder())
'''

# The htcondor anchor runs `<job_wrapper> <its python> -m snakemake ARGS`; jobs execute in the
# pool's own root, where the execute-side Snakemake lives.
JOB_WRAPPER = f"""#!/bin/sh
export PATH=/usr/local/bin:/usr/bin:/bin
while [ $# -gt 0 ] && [ "$1" != "-m" ]; do shift; done
shift 2
exec {CHROOT_SNAKEMAKE} -m snakemake "$@"
"""


@dataclass
class Outcome:
    scheduler: str
    tool: str
    settings: str
    jobs: int
    wall_s: float
    cpu_s: float
    calls: dict[str, int] = field(default_factory=dict)
    ok: bool = True
    note: str = ""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def shim_dir(base: Path) -> Path:
    """Pass-through wrappers: note the command, then run the real one."""
    shims = base / "shims"
    shims.mkdir()
    for name in SLURM_COMMANDS:
        real = shutil.which(name)
        if real is None:
            continue
        path = shims / name
        path.write_text(f'#!/bin/sh\necho {name} >> "$ESAP_BENCH_CALLS"\nexec {real} "$@"\n')
        path.chmod(0o755)
    (shims / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return shims


def run_case(base: Path, shims: Path, scheduler: str, tool: str, settings: str, jobs: int,
             command: list[str], *, as_user: str | None = None, env: dict[str, str] | None = None,
             timeout: float = 3600) -> Outcome:
    workdir = base / f"{scheduler}-{tool}-{settings}".replace(" ", "_")
    workdir.mkdir()
    (workdir / "Snakefile").write_text(SNAKEFILE.format(jobs=jobs))
    calls = workdir / "calls.txt"
    calls.touch()
    calls.chmod(0o666)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ESAP_POLL_", "SNAKEMAKE_"))}
    full_env.update(env or {})
    full_env.update(
        ESAP_BENCH_CALLS=str(calls),
        PATH=f"{shims}:{full_env.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(shims),
        ESAP_SITES=str(SITES),
    )
    shared = scheduler == "htcondor" and not as_user  # esap's pool jobs run as the site's owner
    if shared:
        workdir.chmod(0o777)
    if as_user:
        user = pwd.getpwnam(as_user)
        shutil.chown(workdir, user.pw_uid, user.pw_gid)
        full_env.update(HOME=user.pw_dir, USER=as_user, LOGNAME=as_user)
        command = ["runuser", "-u", as_user, "--", "env", *[f"{k}={v}" for k, v in full_env.items()],
                   *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = subprocess.run(command, cwd=workdir, env=full_env, capture_output=True, text=True,
                            timeout=timeout, check=False,
                            preexec_fn=(lambda: os.umask(0)) if shared else None)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    (workdir / "snakemake.log").write_text(result.stdout + result.stderr)
    done = len(list((workdir / "out").glob("*.txt"))) if (workdir / "out").is_dir() else 0
    counted = collections.Counter(line.strip() for line in calls.read_text().splitlines() if line.strip())
    ok = result.returncode == 0 and done == jobs
    note = "" if ok else f"exit {result.returncode}, {done}/{jobs} outputs; log {workdir / 'snakemake.log'}"
    outcome = Outcome(scheduler, tool, settings, jobs, wall, cpu, dict(sorted(counted.items())), ok, note)
    print(json.dumps(outcome.__dict__), flush=True)
    return outcome


def esap_command(site: str, jobs: int, poll: tuple[float, float] | None) -> list[str]:
    command = [sys.executable, "-m", "snakemake", "--executor", "esap", "--esap-site", site,
               "--jobs", str(jobs), "--latency-wait", "60"]
    if poll:
        command += ["--esap-poll-interval", str(poll[0]), "--esap-max-poll-interval", str(poll[1])]
    return command


@dataclass(frozen=True)
class Options:
    anchors: bool = True
    alike: bool = True
    floor: bool = False
    compare_direct: bool = False


def slurm_floor(base: Path, jobs: int) -> Outcome:
    """The same N trivial jobs as one bare array, waited on with squeue every 0.2 s."""
    start = time.monotonic()
    job = subprocess.run(["sbatch", "--parsable", "-J", "bench-smk-floor", "-o", "/dev/null", "-D", str(base),
                          f"--array=0-{jobs - 1}", "--wrap", "true"], check=True, capture_output=True,
                         text=True).stdout.strip()
    while subprocess.run(["squeue", "-h", "-j", job, "-o", "%i"], capture_output=True, text=True).stdout.strip():
        time.sleep(0.2)
    outcome = Outcome("slurm", "floor", "sbatch --array + 0.2 s squeue loop", jobs, time.monotonic() - start, 0.0,
                      {"sbatch": 1})
    print(json.dumps(outcome.__dict__), flush=True)
    return outcome


def htcondor_floor(jobs: int) -> Outcome:
    from backend_phases import catalogue_in
    from backend_phases import htcondor_floor as floor_timeline

    work_root = tempfile.mkdtemp(prefix="esap-bench-smk-floor-", dir="/tmp")
    os.chmod(work_root, 0o755)
    found = floor_timeline(catalogue_in(work_root), jobs)
    outcome = Outcome("htcondor", "floor", "one cluster of /bin/true, event log followed", jobs, found.total, 0.0,
                      {"htcondor2.Schedd.submit": 1})
    print(json.dumps(outcome.__dict__), flush=True)
    return outcome


def esap_variants(base: Path, shims: Path, scheduler: str, site: str, jobs: int, state: dict[str, str],
                  options: Options) -> list[Outcome]:
    outcomes = [run_case(base, shims, scheduler, "esap", "default", jobs, esap_command(site, jobs, None), env=state)]
    if options.compare_direct:
        outcomes.append(run_case(base, shims, scheduler, "esap", "--esap-direct-shell no", jobs,
                                 [*esap_command(site, jobs, None), "--esap-direct-shell", "no"], env=state))
    return outcomes


def slurm_cases(base: Path, shims: Path, jobs: int, anchor_python: str, options: Options) -> list[Outcome]:
    state = {"ESAP_STATE_DIR": str(base / "state-slurm")}
    outcomes = [slurm_floor(base, jobs)] if options.floor else []
    outcomes += esap_variants(base, shims, "slurm", "slurm-local", jobs, state, options)
    if not options.anchors:
        return outcomes
    outcomes.append(
        run_case(base, shims, "slurm", "snakemake-executor-plugin-slurm", "default", jobs,
                 [anchor_python, "-m", "snakemake", "--executor", "slurm", "--jobs", str(jobs),
                  "--latency-wait", "60"]))
    alike = options.alike
    if alike:
        outcomes.append(run_case(base, shims, "slurm", "esap", "anchor's poll intervals (40 s, up to 180 s)",
                                 jobs, esap_command("slurm-local", jobs, (40, 180)), env=state))
    return outcomes


def htcondor_cases(base: Path, shims: Path, jobs: int, anchor_python: str, options: Options) -> list[Outcome]:
    state = {"ESAP_STATE_DIR": str(base / "state-htcondor")}
    wrapper = base / "job_wrapper.sh"
    wrapper.write_text(JOB_WRAPPER)
    wrapper.chmod(0o755)
    outcomes = [htcondor_floor(jobs)] if options.floor else []
    outcomes += esap_variants(base, shims, "htcondor", "htcondor-local", jobs, state, options)
    if not options.anchors:
        return outcomes
    outcomes.append(
        run_case(base, shims, "htcondor", "snakemake-executor-plugin-htcondor", "default", jobs,
                 [anchor_python, "-m", "snakemake", "--executor", "htcondor", "--jobs", str(jobs),
                  "--latency-wait", "60", "--default-resources", f"job_wrapper='{wrapper}'"],
                 as_user=HTCONDOR_USER))
    alike = options.alike
    if alike:
        outcomes.append(run_case(base, shims, "htcondor", "esap", "anchor's poll interval (10 s)", jobs,
                                 esap_command("htcondor-local", jobs, (10, 10)), env=state))
    return outcomes


def markdown(outcomes: list[Outcome], jobs: int) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {now}",
        "",
        f"`benchmarks/snakemake_fanout.py`: {jobs} independent jobs (`echo` into one file each) "
        f"+ `all`, `--jobs {jobs}`, on {platform.node() or 'this machine'} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}); the services of scripts/services (SLURM 2 nodes, "
        "HTCondor personal pool in a Debian 13 root). Other tests may share the machine. "
        "CPU = the snakemake process and the commands it waited for (not the jobs). Calls = every "
        "scheduler interaction counted by pass-through shims (commands, slurmrestd requests, "
        "htcondor2 Schedd methods), including those made inside jobs.",
        "",
        "| scheduler | tool | settings | wall s | executor CPU s | scheduler calls | wall ratio esap/anchor "
        "| x floor |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    anchors = {o.scheduler: o for o in outcomes if o.tool not in ("esap", "floor") and o.ok}
    floors = {o.scheduler: o for o in outcomes if o.tool == "floor"}
    for o in outcomes:
        anchor, floor = anchors.get(o.scheduler), floors.get(o.scheduler)
        ratio = f"{o.wall_s / anchor.wall_s:.2f}" if o.tool == "esap" and anchor and o.ok else ""
        x_floor = f"{o.wall_s / floor.wall_s:.2f}" if floor and o.ok else ""
        calls = f"{o.total_calls}: " + ", ".join(f"{k} {v}" for k, v in o.calls.items()) if o.calls else "0"
        status = "" if o.ok else f" — FAILED ({o.note})"
        lines.append(f"| {o.scheduler} | {o.tool} | {o.settings}{status} | {o.wall_s:.1f} | {o.cpu_s:.1f} | "
                     f"{calls} | {ratio} | {x_floor} |")
    lines.append("")
    load = os.getloadavg()
    lines.append(f"Target: esap wall time <= {TARGET} x each anchor's, with one scheduler query per poll cycle; "
                 f"<= 3 x the floor (issue 21). Load average at the end: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} "
                 "on this machine's cores (above 2: a loaded machine, compare rows of one table only).")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--only", choices=["slurm", "htcondor"])
    parser.add_argument("--anchor-venv", default="/work/bench-venv-smk")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--defaults-only", action="store_true",
                        help="skip the esap run with the anchor's poll intervals")
    parser.add_argument("--floor", action="store_true", help="measure the scheduler's floor for the same jobs")
    parser.add_argument("--no-anchors", action="store_true", help="leave the anchor plugins out")
    parser.add_argument("--compare-direct", action="store_true", help="add esap with --esap-direct-shell no")
    args = parser.parse_args()
    options = Options(anchors=not args.no_anchors, alike=not args.defaults_only, floor=args.floor,
                      compare_direct=args.compare_direct)
    anchor_python = str(Path(args.anchor_venv) / "bin" / "python")
    if options.anchors and not Path(anchor_python).exists():
        parser.error(textwrap.dedent(f"""\
            no anchor venv at {args.anchor_venv}; create it with:
              python3 -m venv {args.anchor_venv} && {args.anchor_venv}/bin/pip install snakemake==9.27.1 \\
                snakemake-executor-plugin-slurm==2.8.0 snakemake-executor-plugin-htcondor==0.3.0"""))
    base = Path(tempfile.mkdtemp(prefix="esap-bench-smk-", dir="/tmp"))
    base.chmod(0o755)
    shims = shim_dir(base)
    outcomes: list[Outcome] = []
    if args.only in (None, "slurm"):
        outcomes += slurm_cases(base, shims, args.jobs, anchor_python, options)
    if args.only in (None, "htcondor"):
        outcomes += htcondor_cases(base, shims, args.jobs, anchor_python, options)
    text = markdown(outcomes, args.jobs)
    print(text)
    if not args.no_append:
        append_to_section(SECTION, text)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
