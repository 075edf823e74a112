"""The CLI path: sbatch / sacct / scancel / scontrol / sacctmgr, always as argv lists."""

from __future__ import annotations

import getpass
import logging
import os
import subprocess
from collections.abc import Callable, Sequence
from typing import TypeVar

from ...errors import BadInput, Unreachable
from ...formats.durations import parse_slurm_limit, sacct_seconds
from ...formats.hostlists import expand_hostlist
from ...formats.memory import sacct_memory_mib
from ...formats.timestamps import format_slurm_timestamp
from ..base import Usage
from .cluster import ClusterInfo, Node, Partition, gpus_in_gres
from .mapping import BatchJob, sbatch_argv
from .records import (
    SlurmRecord,
    decode_wait_status,
    expand_array_id,
    normal_state,
    parse_exit_code,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

RECORD_FIELDS = "JobID,State,ExitCode,Reason,Comment"
DETAIL_FIELDS = "JobID,State,ExitCode,Reason,Comment,NodeList,Elapsed,MaxRSS,TotalCPU,ReqMem"
QUEUE_FORMAT = "JobArrayID:|,State:|,Reason:|,exit_code:|,Comment:"
CANCEL_CHUNK = 500  # ids per scancel call: keeps argv far below ARG_MAX
# errors that mean "the request is wrong", not "the cluster is unreachable"
_USER_ERRORS = (
    "Invalid account", "invalid partition", "Requested time limit", "Invalid qos",
    "Requested node configuration is not available", "Invalid generic resource",
    "Memory required by task is not available", "Invalid feature specification",
    "More processors requested than permitted",
)


def command_path(name: str, commands: str | None) -> str:
    """A SLURM client command of the site: from its `commands` directory, else from PATH."""
    return os.path.join(os.path.expanduser(commands), name) if commands else name


class CliAccess:
    kind = "cli"
    exit_codes_in_records = True

    def __init__(self, *, timeout: float = 60.0, user: str | None = None, commands: str | None = None) -> None:
        self.timeout = timeout
        self.user = user or getpass.getuser()
        self.commands = commands  # the directory of this cluster's client commands; None: PATH
        self.max_submit_jobs: int | None = None  # read with the associations
        self.default_qos: str | None = None  # the associations' default QoS, when they agree
        self.qos_max_submit: dict[str, int] = {}  # MaxSubmitJobsPerUser of the QoS that have one

    # --- plumbing -------------------------------------------------------------------
    def _run(self, argv: list[str], *, stdin: str | None = None, what: str) -> str:
        argv = [command_path(argv[0], self.commands), *argv[1:]]
        try:
            result = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except FileNotFoundError:
            raise Unreachable(f"{argv[0]} not found: is this a SLURM login node?") from None
        except subprocess.TimeoutExpired:
            raise Unreachable(f"{what}: {argv[0]} did not answer within {self.timeout:.0f} s") from None
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            text = message[-1] if message else f"exit code {result.returncode}"
            if any(marker.lower() in text.lower() for marker in _USER_ERRORS):
                raise BadInput(f"SLURM refused the job: {text}")
            raise Unreachable(f"{what} failed: {text}")
        return result.stdout

    # --- verbs ----------------------------------------------------------------------
    def submit(self, batch: BatchJob) -> str:
        out = self._run(sbatch_argv(batch), stdin=batch.script, what="sbatch")
        # --parsable prints "jobid" or "jobid;cluster"
        return out.strip().splitlines()[-1].split(";", 1)[0]

    def run_records(self, run_name: str, since: float) -> list[SlurmRecord]:
        out = self._run(
            [
                "sacct", "--noheader", "--parsable2", "--allocations", "--duplicates",
                f"--name={run_name}", f"--starttime={format_slurm_timestamp(since - 60)}", "--endtime=now",
                f"--format={RECORD_FIELDS}",
            ],
            what="sacct",
        )
        return _latest(_parse_sacct(out, RECORD_FIELDS))

    def details(self, native_ids: Sequence[str], run_name: str, since: float) -> list[SlurmRecord]:
        if not native_ids:
            return []
        out = self._run(
            [
                "sacct", "--noheader", "--parsable2", "--duplicates",
                f"--jobs={','.join(native_ids)}", f"--starttime={format_slurm_timestamp(since - 60)}",
                "--endtime=now", f"--format={DETAIL_FIELDS}",
            ],
            what="sacct",
        )
        records = _parse_sacct(out, DETAIL_FIELDS, keep_steps=True)
        # MaxRSS is only reported on steps: carry the batch step's value to its job
        rss = {r.native_id.split(".", 1)[0]: r.max_rss for r in records if r.native_id.endswith(".batch")}
        jobs = [r for r in records if "." not in r.native_id]
        return [
            SlurmRecord(**{**r.__dict__, "max_rss": rss.get(r.native_id, r.max_rss)}) for r in _latest(jobs)
        ]

    def usage(self, native_ids: Sequence[str], run_name: str, since: float) -> dict[str, Usage]:
        """sacct: Elapsed, TotalCPU and the batch step's MaxRSS."""
        return {
            r.native_id: Usage(wall_s=_accounted(sacct_seconds, r.elapsed, "sacct Elapsed"),
                               cpu_s=_accounted(sacct_seconds, r.total_cpu, "sacct TotalCPU"),
                               max_memory_mib=_accounted(sacct_memory_mib, r.max_rss, "sacct MaxRSS"))
            for r in self.details(native_ids, run_name, since)
        }

    def cancel(self, native_ids: Sequence[str]) -> None:
        for start in range(0, len(native_ids), CANCEL_CHUNK):
            self._run(["scancel", *native_ids[start:start + CANCEL_CHUNK]], what="scancel")

    def queue_records(self, run_name: str, since: float) -> list[SlurmRecord]:
        """The controller's view of the run (squeue): immediate, with exit codes and comments,
        for as long as the controller keeps finished jobs (MinJobAge)."""
        out = self._run(
            ["squeue", "--noheader", f"--name={run_name}", "--states=all",
             f"--Format={QUEUE_FORMAT}"],
            what="squeue",
        )
        records = []
        for line in out.splitlines():
            parts = line.rstrip().split("|", 4)
            if len(parts) < 5:
                continue
            job_id, state, reason, status, comment = (p.strip() for p in parts)
            # squeue's exit_code: a raw wait(2) status on Slurm 22.05, "code:signal" (as sacct) on 24.11+
            if ":" in status:
                code, signal = parse_exit_code(status)
            else:
                code, signal = decode_wait_status(int(status)) if status.isdigit() else (None, None)
            state = normal_state(state)
            if state in ("PENDING", "RUNNING", "CONFIGURING", "REQUEUED"):
                code = signal = None
            for native in expand_array_id(job_id):
                records.append(SlurmRecord(
                    native_id=native, state=state, exit_code=code, signal=signal,
                    reason=None if reason in ("None", "(null)") else reason,
                    comment="" if comment == "(null)" else comment,
                ))
        return records

    def cluster(self) -> ClusterInfo:
        config = _key_values(self._run(["scontrol", "show", "config"], what="scontrol show config"))
        partitions = {}
        for line in self._run(["scontrol", "--oneliner", "show", "partition"], what="scontrol").splitlines():
            values = _key_values(line, oneline=True)
            if "PartitionName" not in values:
                continue
            name = values["PartitionName"]
            partitions[name] = Partition(
                name=name,
                nodes=tuple(expand_hostlist(values.get("Nodes", ""), field=f"Nodes of partition {name}")),
                max_time_s=parse_slurm_limit(values.get("MaxTime", "UNLIMITED"), field=f"MaxTime of partition {name}"),
                state=values.get("State", "UP"),
                default=values.get("Default", "NO") == "YES",
            )
        nodes_info = {}
        for line in self._run(["scontrol", "--oneliner", "show", "node"], what="scontrol").splitlines():
            values = _key_values(line, oneline=True)
            if "NodeName" not in values:
                continue
            nodes_info[values["NodeName"]] = Node(
                name=values["NodeName"],
                cpus=int(values.get("CPUTot", "0") or 0),
                memory_mib=int(values.get("RealMemory", "0") or 0),
                tmp_mib=int(values.get("TmpDisk", "0") or 0),
                gpus=gpus_in_gres(values.get("Gres", "")),
                state=values.get("State", ""),
            )
        enforce = config.get("AccountingStorageEnforce", "none")
        associations: frozenset[tuple[str, str]] | None = None
        qos: frozenset[str] | None = None
        if config.get("AccountingStorageType", "").endswith("slurmdbd"):
            associations, qos = self._associations()
        return ClusterInfo(
            version=config.get("SLURM_VERSION", ""),
            partitions=partitions,
            nodes=nodes_info,
            associations=associations,
            qos=qos,
            max_array_size=int(config.get("MaxArraySize", "1001") or 1001),
            enforce_associations="associations" in enforce or "limits" in enforce or "qos" in enforce,
            user=self.user,
            max_submit_jobs=self.max_submit_jobs,
            default_qos=self.default_qos,
            qos_max_submit=dict(self.qos_max_submit),
        )

    def _associations(self) -> tuple[frozenset[tuple[str, str]] | None, frozenset[str] | None]:
        """The user's (account, partition) pairs and allowed QoS; None where nobody may tell.

        sacctmgr is not open to users on every centre, or answers nothing for them (PrivateData):
        then sshare, which users may run, names the accounts; without either, nothing is refused
        here and the controller has the last word.
        """
        pairs: set[tuple[str, str]] = set()
        allowed: set[str] = set()
        try:
            out = self._run(
                ["sacctmgr", "--noheader", "--parsable2", "show", "associations",
                 f"user={self.user}", "format=Account,Partition,QOS,MaxSubmit,DefaultQOS"],
                what="sacctmgr",
            )
            defaults: set[str] = set()
            for line in out.splitlines():
                account, partition, qos_list, max_submit, default_qos = (line.split("|") + [""] * 5)[:5]
                if account:
                    pairs.add((account, partition))
                    allowed.update(q for q in qos_list.split(",") if q)
                    defaults.add(default_qos.strip())
                if max_submit.strip().isdigit():  # the tightest of the user's associations
                    self.max_submit_jobs = min(int(max_submit), self.max_submit_jobs or int(max_submit))
            self.default_qos = defaults.pop() or None if len(defaults) == 1 else None
            self.qos_max_submit = self._qos_max_submit()
        except (Unreachable, BadInput) as exc:  # BadInput: its message names an account
            log.info("sacctmgr: %s", exc)
        if pairs:
            return frozenset(pairs), frozenset(allowed) or None
        try:
            out = self._run(["sshare", "--noheader", "--parsable2", "-U", "-u", self.user,
                             "-o", "Account,Partition"], what="sshare")
        except (Unreachable, BadInput) as exc:
            log.info("account validation skipped: %s", exc)
            return None, None
        for line in out.splitlines():
            account, partition = (line.split("|") + ["", ""])[:2]
            if account:
                pairs.add((account, partition))
        if not pairs:
            log.info("account validation skipped: neither sacctmgr nor sshare named an account")
            return None, None
        return frozenset(pairs), None

    def _qos_max_submit(self) -> dict[str, int]:
        """Each QoS's MaxSubmitJobsPerUser, where it has one."""
        out = self._run(["sacctmgr", "--noheader", "--parsable2", "show", "qos", "format=Name,MaxSubmitPU"],
                        what="sacctmgr")
        limits = {}
        for line in out.splitlines():
            name, limit = (line.split("|") + [""])[:2]
            if name and limit.strip().isdigit():
                limits[name] = int(limit)
        return limits

    def close(self) -> None:
        pass


def _key_values(text: str, *, oneline: bool = False) -> dict[str, str]:
    values: dict[str, str] = {}
    if oneline:
        for token in text.split():
            key, sep, value = token.partition("=")
            if sep:
                values[key] = value
        return values
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _parse_sacct(out: str, fields: str, *, keep_steps: bool = False) -> list[SlurmRecord]:
    names = fields.split(",")
    records = []
    for line in out.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < len(names):
            continue
        # a comment may itself contain "|": everything between Reason and the fixed tail
        if len(parts) > len(names):
            extra = len(parts) - len(names)
            at = names.index("Comment")
            parts[at:at + extra + 1] = ["|".join(parts[at:at + extra + 1])]
        row = dict(zip(names, parts, strict=True))
        job_id = row["JobID"]
        if "." in job_id and not keep_steps:
            continue
        code, signal = parse_exit_code(row.get("ExitCode", ""))
        for native in expand_array_id(job_id):
            records.append(
                SlurmRecord(
                    native_id=native,
                    state=normal_state(row.get("State", "")),
                    exit_code=code,
                    signal=signal,
                    reason=row.get("Reason") or None,
                    comment=row.get("Comment", ""),
                    node_list=row.get("NodeList", ""),
                    elapsed=row.get("Elapsed", ""),
                    max_rss=row.get("MaxRSS", ""),
                    total_cpu=row.get("TotalCPU", ""),
                    req_mem=row.get("ReqMem", ""),
                )
            )
    return records


def _latest(records: list[SlurmRecord]) -> list[SlurmRecord]:
    """With --duplicates a requeued job has several rows: sacct lists the newest last."""
    by_id: dict[str, SlurmRecord] = {}
    for record in records:
        by_id[record.native_id] = record
    return list(by_id.values())


def _accounted(parse: Callable[..., _T | None], text: str, field: str) -> _T | None:
    """A figure of the scheduler's accounting; one it prints in a form we do not know is shown as unknown
    ("-"), since a scheduler's answer is not the user's bad input."""
    try:
        return parse(text, field=field)
    except BadInput:
        return None
