"""CWL scatter benchmark: esap-cwltool against toil-cwl-runner --batchSystem slurm on the same cluster.

    .venv/bin/python benchmarks/cwl_scatter.py [--width 100] [--toil /work/bench-venv/bin/toil-cwl-runner] [--write]
        [--floor] [--no-toil]

A workflow with one 100-way scatter of a trivial step (`echo`) runs on the SLURM cluster of
scripts/services/slurm.sh, first with `esap-cwltool --executor esap --site slurm-local`, then
with `toil-cwl-runner --batchSystem slurm` (installed in its own environment, e.g.
`python3 -m venv /work/bench-venv && /work/bench-venv/bin/pip install 'toil[cwl]'`; not a
dependency of this project). Both runs go through a PATH directory of wrappers that log every
SLURM command (sbatch = submissions; squeue, sacct, scontrol = queries), so the scheduler
load of the two runners is counted the same way. --write replaces the "## cwl" section of
benchmarks/RESULTS.md.

--floor also measures the scheduler's floor for the same scatter (issue 21: <= 1.5x): one bare
`sbatch --array` of N tasks each writing its item to a file, waited on with squeue every 0.2 s, in
the same run as esap-cwltool; --no-toil leaves toil out. With --write and --no-toil the floor
comparison is appended to the "## cwl" section (the toil comparison there is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
SITES = ROOT / "examples" / "sites.yaml"
SLURM_COMMANDS = ("sbatch", "squeue", "sacct", "scontrol", "scancel", "sinfo", "srun")
QUERIES = ("squeue", "sacct", "scontrol", "sinfo")

WORKFLOW = """\
cwlVersion: v1.2
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
inputs:
  items: int[]
outputs:
  outs:
    type: File[]
    outputSource: step/out
steps:
  step:
    scatter: item
    in: {item: items}
    out: [out]
    run:
      class: CommandLineTool
      requirements:
        ResourceRequirement: {coresMin: 1, ramMin: 100}
      baseCommand: echo
      inputs:
        item: {type: int, inputBinding: {position: 1}}
      stdout: out.txt
      outputs:
        out: stdout
"""


def command_log_path(workdir: Path) -> Path:
    return workdir / "slurm-commands.log"


def make_wrappers(workdir: Path) -> Path:
    """A directory of wrappers that log each SLURM command, then run the real one."""
    wrappers = workdir / "wrappers"
    wrappers.mkdir()
    log = command_log_path(workdir)
    for name in SLURM_COMMANDS:
        real = shutil.which(name)
        if real is None:
            continue
        path = wrappers / name
        path.write_text(f'#!/bin/sh\necho {name} >> "{log}"\nexec "{real}" "$@"\n')
        path.chmod(0o755)
    return wrappers


def timed_run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, Counter[str], str]:
    log = command_log_path(cwd.parent)
    log.write_text("")
    start = time.perf_counter()
    completed = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    outs = json.loads(completed.stdout)["outs"]
    assert len(outs) == len(set(o["checksum"] for o in outs)), "outputs missing or duplicated"
    return elapsed, Counter(log.read_text().split()), completed.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--toil", default="/work/bench-venv/bin/toil-cwl-runner")
    parser.add_argument("--site", default="slurm-local")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--floor", action="store_true", help="also the bare array floor of the same scatter")
    parser.add_argument("--no-toil", action="store_true", help="leave toil-cwl-runner out")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="esap-cwl-bench-", dir="/tmp"))
    try:
        run_both(args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_both(args: argparse.Namespace, base: Path) -> None:
    base.chmod(0o755)
    (base / "wf.cwl").write_text(WORKFLOW)
    (base / "job.json").write_text(json.dumps({"items": list(range(args.width))}))
    wrappers = make_wrappers(base)
    env = dict(os.environ, PATH=f"{wrappers}:{VENV_BIN}:{os.environ['PATH']}")

    esap_dir = base / "esap"
    esap_dir.mkdir()
    esap_env = dict(env, ESAP_SITES=str(SITES), ESAP_STATE_DIR=str(base / "esap-state"))
    esap_time, esap_calls, _ = timed_run(
        [str(VENV_BIN / "esap-cwltool"), "--quiet", "--site", args.site, "--outdir", str(esap_dir / "out"),
         str(base / "wf.cwl"), str(base / "job.json")],
        cwd=esap_dir, env=esap_env,
    )
    print(f"esap-cwltool: {esap_time:.1f} s, {dict(esap_calls)}")
    if args.floor:
        floor_time = floor_scatter(args.width, base)
        print(f"floor (sbatch --array + 0.2 s squeue loop): {floor_time:.1f} s; esap {esap_time / floor_time:.2f}x")
        if args.write and args.no_toil:
            write_floor(args, esap_time, esap_calls, floor_time)
    if args.no_toil:
        return

    toil_dir = base / "toil"
    toil_dir.mkdir()
    # toil's workers (_toil_worker) must be on PATH, on the submit host and in the batch jobs
    toil_bin = str(Path(args.toil).parent)
    toil_env = dict(env, PATH=f"{wrappers}:{toil_bin}:{os.environ['PATH']}", TOIL_SLURM_ARGS="--partition=debug")
    toil_time, toil_calls, _ = timed_run(
        [args.toil, "--quiet", "--batchSystem", "slurm", "--jobStore", str(toil_dir / "jobstore"),
         "--workDir", str(toil_dir), "--outdir", str(toil_dir / "out"), "--defaultMemory", "100Mi",
         "--defaultDisk", "100Mi", str(base / "wf.cwl"), str(base / "job.json")],
        cwd=toil_dir, env=toil_env,
    )
    print(f"toil-cwl-runner: {toil_time:.1f} s, {dict(toil_calls)}")
    ratio = esap_time / toil_time
    print(f"ratio esap/toil wall time: {ratio:.2f} (target <= 0.33)")
    if args.write:
        write_results(args, esap_time, esap_calls, toil_time, toil_calls, ratio)


def floor_scatter(width: int, base: Path) -> float:
    """The same scatter as one bare job array (each task writes its item), squeue every 0.2 s."""
    out = base / "floor"
    out.mkdir()
    start = time.perf_counter()
    job = subprocess.run(["sbatch", "--parsable", "-J", "bench-cwl-floor", "-o", "/dev/null", "-D", str(out),
                          "--mem=100M", f"--array=0-{width - 1}", "--wrap", 'echo "$SLURM_ARRAY_TASK_ID" > '
                          '"out-$SLURM_ARRAY_TASK_ID.txt"'], check=True, capture_output=True, text=True).stdout.strip()
    while subprocess.run(["squeue", "-h", "-j", job, "-o", "%i"], capture_output=True, text=True).stdout.strip():
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    if len(list(out.glob("out-*.txt"))) != width:
        raise SystemExit(f"the floor's array wrote {len(list(out.glob('out-*.txt')))} of {width} files")
    return elapsed


def write_floor(args: argparse.Namespace, esap_time: float, esap_calls: Counter[str], floor_time: float) -> None:
    from results_file import append_to_section

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    ratio = esap_time / floor_time
    entry = "\n".join([
        f"### {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} — against the floor (issue 21)",
        "",
        f"`benchmarks/cwl_scatter.py --floor --no-toil --width {args.width} --site {args.site}`: the same "
        f"{args.width}-way scatter with esap-cwltool, then as one bare `sbatch --array` (each task writes its item "
        "to a file; squeue every 0.2 s). Load average at the end: "
        f"{load} on {os.cpu_count()} cores (above 2: a loaded machine, compare these two rows only).",
        "",
        "| runner | wall time (s) | sbatch calls | scheduler queries | x floor |",
        "|---|---:|---:|---:|---:|",
        f"| esap-cwltool --executor esap | {esap_time:.1f} | {esap_calls['sbatch']} | {queries(esap_calls)} "
        f"| **{ratio:.2f}** (target <= 1.5) |",
        f"| floor: sbatch --array + 0.2 s squeue loop | {floor_time:.1f} | 1 | - | 1.00 |",
        "",
    ])
    append_to_section("## cwl", entry)


def queries(calls: Counter[str]) -> int:
    return sum(calls[name] for name in QUERIES)


def toil_version(toil: str) -> str:
    done = subprocess.run([toil, "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[-1] if done.returncode == 0 else "?"


def write_results(args: argparse.Namespace, esap_time: float, esap_calls: Counter[str], toil_time: float,
                  toil_calls: Counter[str], ratio: float) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    slurm = subprocess.run(["sinfo", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    verdict = "meets" if ratio <= 0.33 else "misses"
    lines = [
        "## cwl",
        "",
        f"`benchmarks/cwl_scatter.py`: one {args.width}-way scatter of a trivial step (`echo`) on "
        f"{args.site} ({slurm}, scripts/services/slurm.sh cluster on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "SLURM commands counted through logging wrappers on PATH (queries = squeue + sacct + scontrol + sinfo). "
        f"toil-cwl-runner {toil_version(args.toil)} with `--batchSystem slurm` and its defaults otherwise; "
        "esap-cwltool with the site's poll settings from examples/sites.yaml. "
        f"Load average at the end: {load} (other projects' tests may share the machine).",
        "",
        "| runner | wall time (s) | sbatch calls | scheduler queries | ratio |",
        "|---|---:|---:|---:|---:|",
        f"| esap-cwltool --executor esap | {esap_time:.1f} | {esap_calls['sbatch']} | {queries(esap_calls)} "
        f"| **{ratio:.2f}** ({verdict} target <= 0.33) |",
        f"| toil-cwl-runner --batchSystem slurm | {toil_time:.1f} | {toil_calls['sbatch']} | {queries(toil_calls)} "
        "| 1.00 (reference) |",
        "",
    ]
    results_md = ROOT / "benchmarks" / "RESULTS.md"
    results_md.write_text(replace_section(results_md.read_text(), "## cwl", "\n".join(lines)))


def replace_section(text: str, heading: str, section: str) -> str:
    start = text.find(heading + "\n")
    if start < 0:
        return text.rstrip("\n") + "\n\n" + section
    end = text.find("\n## ", start + 1)
    rest = "" if end < 0 else text[end + 1:]
    return text[:start] + section + ("\n" + rest if rest else "")


if __name__ == "__main__":
    main()
