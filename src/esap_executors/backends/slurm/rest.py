"""The slurmrestd path: JWT headers, API version and job fields taken from the server's own
OpenAPI description (v0.0.38 on Slurm 22.05, v0.0.40+ on 24.11)."""

from __future__ import annotations

import logging
import pwd
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import requests

from ...errors import AuthError, BadInput, Unreachable
from ...formats.durations import rest_duration_seconds
from ...formats.hostlists import expand_hostlist, expand_index_ranges
from ...formats.slurm_numbers import rest_number as _number
from ...formats.slurm_numbers import rest_number_struct
from ...formats.timestamps import format_slurm_timestamp
from ..base import Usage
from .cluster import ClusterInfo, Node, Partition, gpus_in_gres
from .mapping import BatchJob, rest_fields
from .records import SlurmRecord, decode_wait_status, normal_state
from .token import TokenSource

log = logging.getLogger(__name__)

_SUBMIT_PATH = re.compile(r"^/slurm/v(\d+)\.(\d+)\.(\d+)/job/submit/?$")
PROBE_VERSIONS = ("0.0.42", "0.0.41", "0.0.40", "0.0.39", "0.0.38")
BUGGY_DB_EXIT_CODES = {"0.0.38"}  # slurmdb v0.0.38 reports return_code 0 for failed jobs
INFINITE = 0xFFFFFFFF
PER_JOB_ASKS = 3  # before jobs/state: at most this many GET .../job/{id} per poll, else accounting
STATE_CHUNK = 200  # single job ids per GET .../jobs/state/ (URL length)
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_BUSY = "resource temporarily unavailable"  # slurmctld's EAGAIN
_ID_SEGMENT = re.compile(r"/\d+(?:_\d+)?(?=/|$)")


def endpoint(method: str, path: str) -> str:
    """`GET /slurm/v0.0.42/job/{id}`: a request's endpoint, its job id left out."""
    return f"{method} {_ID_SEGMENT.sub('/{id}', path)}"
_USER_ERRORS = ("account", "partition", "time limit", "qos", "node configuration", "gres", "memory")


class RestAccess:
    kind = "rest"

    def __init__(self, url: str, tokens: TokenSource, *, version: str | None = None,
                 timeout: float = 30.0, workers: int = 8) -> None:
        self.url = url.rstrip("/")
        self.tokens = tokens
        self.timeout = timeout
        self.workers = workers
        self._local = threading.local()
        self._schema: dict[str, Any] | None = None
        # run name -> (slurmctld's last_update of its last answer, the run's records in it)
        self._queue_seen: dict[str, tuple[int, list[SlurmRecord]]] = {}
        # requests per endpoint: which daemon answered what (slurmctld under /slurm/, slurmdbd
        # under /slurmdb/), for operators (debug log) and tests
        self.requests: Counter[str] = Counter()
        self._requests_lock = threading.Lock()
        self.version = version or self._choose_version()
        self.exit_codes_in_records = self.version not in BUGGY_DB_EXIT_CODES
        self._job_props = self._submit_job_properties()

    # --- HTTP -----------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
              body: Any = None, ok_missing: bool = False, not_modified_ok: bool = False) -> dict[str, Any]:
        for attempt in (1, 2):
            headers = {"X-SLURM-USER-NAME": self.tokens.user, "X-SLURM-USER-TOKEN": self.tokens.token()}
            asked = endpoint(method, path)
            with self._requests_lock:
                self.requests[asked] += 1
            log.debug("slurmrestd %s", asked)
            try:
                response = self._session().request(
                    method, self.url + path, params=params, json=body, headers=headers, timeout=self.timeout
                )
            except requests.RequestException as exc:
                raise Unreachable(f"slurmrestd at {self.url} is unreachable: {type(exc).__name__}") from None
            if response.status_code in (401, 403) and attempt == 1:
                self.tokens.refresh()
                continue
            break
        if not_modified_ok and response.status_code == 304:  # v0.0.38: nothing changed since update_time
            return {}
        if response.status_code in (401, 403):
            raise AuthError(f"slurmrestd refused the token of user {self.tokens.user} (HTTP {response.status_code})")
        try:
            data: dict[str, Any] = response.json()
        except ValueError:
            if ok_missing and response.status_code == 404:
                return {}
            raise Unreachable(
                f"slurmrestd {method} {path}: HTTP {response.status_code}: {response.text.strip()[:200]}"
            ) from None
        errors = [e for e in data.get("errors") or [] if isinstance(e, dict)]
        if errors or response.status_code >= 400:
            text = "; ".join(str(e.get("error") or e.get("description") or e) for e in errors)
            text = text or f"HTTP {response.status_code}"
            if method == "POST" and any(word in text.lower() for word in _USER_ERRORS):
                raise BadInput(f"SLURM refused the job: {text}")
            if ok_missing and response.status_code == 404:
                return data
            if method == "GET" and "nothing found" in text.lower():  # slurmdb: no job matched
                return {}
            raise Unreachable(f"slurmrestd {method} {path}: {text}")
        return data

    # --- what the server speaks -----------------------------------------------------
    def _openapi(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = self._call("GET", "/openapi/v3")
        return self._schema

    def _choose_version(self) -> str:
        """The newest API version whose job submission the server describes."""
        try:
            paths = self._openapi().get("paths") or {}
        except Unreachable:
            paths = {}
        versions = []
        for path in paths:
            match = _SUBMIT_PATH.match(path)
            if match:
                versions.append(tuple(int(g) for g in match.groups()))
        db_ok = {v for v in versions if any(p.startswith(f"/slurmdb/v{_dotted(v)}/jobs") for p in paths)}
        if db_ok:
            return _dotted(max(db_ok))
        for version in PROBE_VERSIONS:  # no usable description: ask each version's ping
            try:
                self._call("GET", f"/slurm/v{version}/ping")
                return version
            except Unreachable:
                continue
        raise Unreachable(f"slurmrestd at {self.url} speaks no API version this client knows")

    def _submit_job_properties(self) -> dict[str, Any]:
        try:
            spec = self._openapi()
        except Unreachable:
            return {}
        paths = spec.get("paths") or {}
        operation = (paths.get(f"/slurm/v{self.version}/job/submit") or
                     paths.get(f"/slurm/v{self.version}/job/submit/") or {}).get("post") or {}
        content = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
        request_schema = self._resolve(content.get("schema") or {})
        self._request_props = request_schema.get("properties") or {}
        job_schema = self._resolve(self._request_props.get("job") or {})
        return dict(job_schema.get("properties") or {})

    def _resolve(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 10:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = ((self._schema or {}).get("components") or {}).get("schemas", {}).get(name) or {}
            seen += 1
        if "allOf" in schema:
            merged: dict[str, Any] = {"properties": {}}
            for part in schema["allOf"]:
                merged["properties"].update(self._resolve(part).get("properties") or {})
            return merged
        return dict(schema)

    def _fit(self, fields: Mapping[str, object]) -> dict[str, Any]:
        """Spell canonical fields the way this server's job schema wants them."""
        props = self._job_props
        job: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "checkpoint_signal":
                job.update(self._signal_fields(value))
                continue
            name = key
            if props and key not in props:
                name = _ALTERNATIVES.get(key, (key, None))[0]
                if name not in props:
                    raise BadInput(f"slurmrestd API v{self.version} cannot request {key.replace('_', ' ')}",
                                   field=key)
                value = _ALTERNATIVES[key][1](value)
            job[name] = self._shape(props.get(name) or {}, value)
        return job

    def _signal_fields(self, value: Any) -> dict[str, Any]:
        """A checkpoint's warning signal to the batch script: kill_warning_* (v0.0.40 and later)."""
        signal, delay = value
        props = self._job_props
        if not props or "kill_warning_signal" in props:
            return {"kill_warning_signal": signal,
                    "kill_warning_delay": self._shape(props.get("kill_warning_delay") or {}, delay),
                    "kill_warning_flags": ["BATCH_JOB"]}
        # v0.0.38's `signal` refuses "B:" (the batch shell, which runs the job's command): without
        # it only job steps would get the signal
        raise BadInput(f"slurmrestd API v{self.version} cannot send a signal to the job's script before its "
                       "time limit", field="checkpoint")

    def _shape(self, prop: Mapping[str, Any], value: object) -> Any:
        schema = self._resolve(prop)
        kind = schema.get("type")
        inner = schema.get("properties") or {}
        if isinstance(value, dict) and kind == "array":
            return [f"{k}={v}" for k, v in value.items()]
        if kind == "object" and "number" in inner and isinstance(value, int):
            return rest_number_struct(value)
        if kind == "string" and isinstance(value, int):
            return str(value)
        return value

    # --- verbs ----------------------------------------------------------------------
    def _base_env(self) -> dict[str, str]:
        """slurmrestd starts jobs with only the environment it is sent: a minimal login one."""
        env = dict(BASE_ENV)
        try:
            entry = pwd.getpwnam(self.tokens.user)
        except KeyError:
            return env
        env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
        return env

    def submit(self, batch: BatchJob) -> str:
        job = self._fit(rest_fields(batch, self._base_env()))
        body: dict[str, Any] = {"job": job}
        if "script" in self._job_props and "script" not in getattr(self, "_request_props", {}):
            job["script"] = batch.script
        else:
            body["script"] = batch.script
        data = self._submit_when_accepted(body)
        job_id = data.get("job_id")
        if job_id is None:
            job_id = (data.get("result") or {}).get("job_id")
        if job_id is None:
            raise Unreachable(f"slurmrestd accepted the job but returned no job id: {data}")
        return str(job_id)

    def _submit_when_accepted(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """slurmctld refuses new jobs for a while when busy (EAGAIN, e.g. MaxJobCount reached until
        finished jobs age out): sbatch waits and retries, so does this, for up to `timeout`."""
        deadline = time.monotonic() + self.timeout
        pause = 1.0
        while True:
            try:
                return self._call("POST", f"/slurm/v{self.version}/job/submit", body=body)
            except Unreachable as exc:
                if _BUSY not in str(exc).lower() or time.monotonic() + pause > deadline:
                    raise
                log.info("slurmctld does not take jobs now (%s); retrying in %.0f s", exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, 10.0)

    def run_records(self, run_name: str, since: float) -> list[SlurmRecord]:
        data = self._call("GET", f"/slurmdb/v{self.version}/jobs",
                          params={"job_name": run_name, "start_time": format_slurm_timestamp(since - 60)})
        records: dict[str, SlurmRecord] = {}
        for job in data.get("jobs") or []:
            for record in self._db_records(job):
                records[record.native_id] = record
        return list(records.values())

    def usage(self, native_ids: Sequence[str], run_name: str, since: float) -> dict[str, Usage]:
        """slurmdb's jobs of the run: elapsed time, the steps' CPU time and their peak memory."""
        wanted = set(native_ids)
        data = self._call("GET", f"/slurmdb/v{self.version}/jobs",
                          params={"job_name": run_name, "start_time": format_slurm_timestamp(since - 60)})
        found: dict[str, Usage] = {}
        for job in data.get("jobs") or []:
            array = job.get("array") or {}
            array_id, task_id = _number(array.get("job_id")), _number(array.get("task_id"))
            native = f"{array_id}_{task_id}" if array_id and task_id is not None else str(job.get("job_id"))
            if native in wanted:
                found[native] = _db_usage(job)
        return found

    def details(self, native_ids: Sequence[str], run_name: str, since: float) -> list[SlurmRecord]:
        """slurmctld's view (exit codes are right there on every version), one request."""
        if not native_ids:
            return []
        wanted = set(native_ids)
        data = self._call("GET", f"/slurm/v{self.version}/jobs", params={"update_time": int(since - 60)})
        found = []
        for job in data.get("jobs") or []:
            if job.get("name") != run_name:
                continue
            record = _ctld_record(job)
            if record.native_id in wanted:
                found.append(replace(record, req_mem=_memory_request(job)))
        return self._with_peaks(found, run_name, since)

    def _with_peaks(self, records: list[SlurmRecord], run_name: str, since: float) -> list[SlurmRecord]:
        """Jobs killed by SIGKILL get their peak memory from slurmdb (one more request), which
        tells a kill for memory by accounting (records.killed_for_memory) from any other."""
        killed = [r.native_id for r in records if r.signal == 9 and r.req_mem]
        if not killed:
            return records
        peaks = {native: usage.max_memory_mib for native, usage in self.usage(killed, run_name, since).items()}
        return [replace(r, max_rss=f"{peaks[r.native_id]}M") if peaks.get(r.native_id) is not None else r
                for r in records]

    def queue_records(self, run_name: str, since: float) -> list[SlurmRecord]:
        """slurmctld's view of the run: immediate, and with comments (slurmdb shows a comment
        only once a job ended). Incremental: the request carries the controller's own time of
        the last answer (`last_update`), and slurmctld answers "nothing changed" (HTTP 304 or an
        empty list without last_update) in a few bytes until some job changes; then the run's
        records are those of the previous answer."""
        seen = self._queue_seen.get(run_name)
        update_time = seen[0] if seen is not None else int(since - 60)
        data = self._call("GET", f"/slurm/v{self.version}/jobs", params={"update_time": update_time},
                          not_modified_ok=True)
        last_update = _number(data.get("last_update")) or 0
        if seen is not None and not data.get("jobs") and not last_update:
            return list(seen[1])  # nothing changed since the previous answer
        records = _ctld_records(job for job in data.get("jobs") or [] if job.get("name") == run_name)
        if last_update:  # v0.0.38 has no last_update: every request asks for the whole window
            self._queue_seen[run_name] = (last_update, records)
        return records

    def job_states(self, native_ids: Sequence[str]) -> tuple[list[SlurmRecord], bool] | None:
        """The controller's states of exactly these jobs (GET /slurm/vX/jobs/state, Slurm 24.05+):
        a few bytes per job, whatever else the controller holds. One request for the single jobs
        and one per job array (the answer names a task by the task's own job id, so tasks of two
        arrays in one answer could not be told apart). None when the server has no such path.
        The answer has no exit codes (second value True): a COMPLETED job exited 0; other final
        states are completed from accounting by the caller. Older servers: see _few_job_records."""
        path = f"/slurm/v{self.version}/jobs/state/"
        try:
            paths = self._openapi().get("paths") or {}
        except Unreachable:
            return None
        if path not in paths and path.rstrip("/") not in paths:
            few = self._few_job_records(native_ids)
            return None if few is None else (few, False)
        arrays = sorted({n.partition("_")[0] for n in native_ids if "_" in n})
        singles = sorted({n for n in native_ids if "_" not in n})
        asks: list[tuple[str | None, list[str]]] = [(array, [array]) for array in arrays]
        asks += [(None, singles[i:i + STATE_CHUNK]) for i in range(0, len(singles), STATE_CHUNK)]
        records = []
        for array, ids in asks:
            data = self._call("GET", path, params=[("job_id", i) for i in ids])
            for job in data.get("jobs") or []:
                own, _, task = str(job.get("job_id") or "").partition("_")
                native = f"{array}_{task}" if array and task else own
                state = normal_state(_state_text(job.get("state")))
                records.append(SlurmRecord(native_id=native, state=state,
                                           exit_code=0 if state == "COMPLETED" else None))
        return records, True

    def _few_job_records(self, native_ids: Sequence[str]) -> list[SlurmRecord] | None:
        """Before Slurm 24.05: GET /slurm/vX/job/{id} (a whole array in one answer) when the
        run's live jobs are in at most PER_JOB_ASKS scheduler jobs, else None (accounting)."""
        ids = sorted({n.partition("_")[0] for n in native_ids})
        if len(ids) > PER_JOB_ASKS:
            return None
        records = []
        for job_id in ids:
            data = self._call("GET", f"/slurm/v{self.version}/job/{job_id}", ok_missing=True)
            records += _ctld_records(data.get("jobs") or [])
        return records

    def cancel(self, native_ids: Sequence[str]) -> None:
        def one(native: str) -> None:
            self._call("DELETE", f"/slurm/v{self.version}/job/{native}", ok_missing=True)

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(one, native_ids))

    def cluster(self) -> ClusterInfo:
        ping = self._call("GET", f"/slurm/v{self.version}/ping")
        release = str(((ping.get("meta") or {}).get("Slurm") or (ping.get("meta") or {}).get("slurm") or {})
                      .get("release", ""))
        partitions = {}
        for item in self._call("GET", f"/slurm/v{self.version}/partitions").get("partitions") or []:
            partitions[item["name"]] = _partition(item)
        nodes = {}
        for item in self._call("GET", f"/slurm/v{self.version}/nodes").get("nodes") or []:
            nodes[item["name"]] = Node(
                name=item["name"],
                cpus=_number(item.get("cpus")) or 0,
                memory_mib=_number(item.get("real_memory")) or 0,
                tmp_mib=_number(item.get("temporary_disk", item.get("tmp_disk"))) or 0,
                gpus=gpus_in_gres(str(item.get("gres") or "")),
                state=_state_text(item.get("state")).upper(),
            )
        associations: frozenset[tuple[str, str]] | None = None
        qos: frozenset[str] | None = None
        try:
            data = self._call("GET", f"/slurmdb/v{self.version}/associations", params={"user": self.tokens.user})
            pairs: set[tuple[str, str]] = set()
            allowed: set[str] = set()
            for assoc in data.get("associations") or []:
                if assoc.get("user") != self.tokens.user or not assoc.get("account"):
                    continue
                pairs.add((assoc["account"], assoc.get("partition") or ""))
                allowed.update(_qos_names(assoc.get("qos")))
            associations, qos = frozenset(pairs), frozenset(allowed) or None
        except Unreachable as exc:
            log.info("account validation skipped: %s", exc)
        return ClusterInfo(version=release, partitions=partitions, nodes=nodes, associations=associations,
                           qos=qos, user=self.tokens.user, extra={"api": f"v{self.version}"})

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()

    # --- slurmdb records ------------------------------------------------------------
    def _db_records(self, job: Mapping[str, Any]) -> Iterable[SlurmRecord]:
        state = job.get("state") or {}
        slurm_state = normal_state(_state_text(state.get("current")))
        reason = state.get("reason") or None
        comment = job.get("comment")
        if isinstance(comment, dict):
            comment = comment.get("job")
        exit_code = signal = None
        if self.exit_codes_in_records:
            exit_code, signal = _exit_struct(job.get("exit_code"))
        elif slurm_state == "COMPLETED":  # COMPLETED means exit code 0; others come from explain()
            exit_code = 0
        common = {"state": slurm_state, "reason": reason, "comment": str(comment or ""),
                  "exit_code": exit_code, "signal": signal, "name": str(job.get("name") or "")}
        array = job.get("array") or {}
        array_id = _number(array.get("job_id")) or 0
        task_id = _number(array.get("task_id"))
        if array_id and task_id is not None:
            yield SlurmRecord(native_id=f"{array_id}_{task_id}", **common)  # type: ignore[arg-type]
            return
        pending = array.get("task")
        if array_id and pending:
            for index in expand_index_ranges(str(pending), field="array.task"):
                yield SlurmRecord(native_id=f"{array_id}_{index}", **common)  # type: ignore[arg-type]
            return
        yield SlurmRecord(native_id=str(job.get("job_id")), **common)  # type: ignore[arg-type]


_ALTERNATIVES: dict[str, tuple[str, Any]] = {
    "gpus": ("tres_per_job", lambda n: f"gres/gpu:{n}"),
    "tmp_disk": ("temporary_disk_per_node", lambda n: n),
}


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(v) for v in version)


def _db_usage(job: Mapping[str, Any]) -> Usage:
    """Wall time of the job; CPU time and peak memory summed / maxed over its steps."""
    steps = job.get("steps") or []
    cpu = sum(rest_duration_seconds((step.get("time") or {}).get("total")) for step in steps)
    peaks = [
        _number(entry.get("count"))
        for step in steps
        for entry in ((step.get("tres") or {}).get("requested") or {}).get("max") or []
        if entry.get("type") == "mem"
    ]
    memory = max((p for p in peaks if p is not None), default=None)
    wall = _number((job.get("time") or {}).get("elapsed"))
    return Usage(wall_s=None if wall is None else float(wall), cpu_s=cpu if steps else None,
                 max_memory_mib=None if memory is None else -(-memory // (1024 * 1024)))


def _state_text(value: Any) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


def _qos_names(value: Any) -> list[str]:
    names = []
    for item in value or []:
        names.append(item.get("name", "") if isinstance(item, dict) else str(item))
    return [n for n in names if n]


def _exit_struct(value: Any) -> tuple[int | None, int | None]:
    if isinstance(value, dict):
        code = _number(value.get("return_code"))
        signal_info = value.get("signal") or {}
        signal = _number(signal_info.get("id", signal_info.get("signal_id"))) if isinstance(signal_info, dict) else None
        return code, signal or None
    if isinstance(value, int):  # slurmctld v0.0.38: a wait(2) status
        return decode_wait_status(value)
    return None, None


def _ctld_records(jobs: Iterable[Mapping[str, Any]]) -> list[SlurmRecord]:
    """Controller job entries -> one record per job or array task (pending tasks share one entry)."""
    records = []
    for job in jobs:
        record = _ctld_record(job)
        pending = str(job.get("array_task_string") or "")
        array_id = _number(job.get("array_job_id"))
        if pending and array_id:  # the record of an array's tasks that have not started yet
            records += [replace(record, native_id=f"{array_id}_{i}")
                        for i in expand_index_ranges(pending, field="array_task_string")]
        else:
            records.append(record)
    return records


def _ctld_record(job: Mapping[str, Any]) -> SlurmRecord:
    array_id = _number(job.get("array_job_id")) or 0
    task_id = _number(job.get("array_task_id"))
    native = f"{array_id}_{task_id}" if array_id and task_id is not None else str(job.get("job_id"))
    code, signal = _exit_struct(job.get("exit_code"))
    return SlurmRecord(
        native_id=native,
        state=normal_state(_state_text(job.get("job_state"))),
        exit_code=code,
        signal=signal,
        reason=str(job.get("state_reason") or "") or None,
        comment=str(job.get("comment") or ""),
        name=str(job.get("name") or ""),
        node_list=str(job.get("nodes") or ""),
        stdout=str(job.get("standard_output") or "") or None,
        stderr=str(job.get("standard_error") or "") or None,
    )


def _memory_request(job: Mapping[str, Any]) -> str:
    """The controller's memory request of a job per node, as sacct's ReqMem writes it ("" if none)."""
    per_node = _number(job.get("memory_per_node"))
    if not per_node:
        per_cpu, cpus = _number(job.get("memory_per_cpu")), _number(job.get("cpus"))
        per_node = per_cpu * cpus if per_cpu and cpus else None
    return f"{per_node}M" if per_node else ""


def _partition(item: Mapping[str, Any]) -> Partition:
    flags = item.get("flags") or []
    default = "default" in [str(f).lower() for f in flags]
    if isinstance(item.get("partition"), dict):  # v0.0.40+: {"partition": {"state": [...]}}
        states = item["partition"].get("state") or []
        default = default or "DEFAULT" in [str(s).upper() for s in states]
    limit: Any = item.get("max_time_limit")
    if limit is None and isinstance(item.get("maximums"), dict):
        limit = item["maximums"].get("time")
    minutes = _number(limit)
    if minutes is not None and (minutes < 0 or minutes >= INFINITE):
        minutes = None
    nodes = item.get("nodes")
    if isinstance(nodes, dict):
        nodes = nodes.get("configured") or nodes.get("nodes") or ""
    state = item.get("state")
    if isinstance(item.get("partition"), dict):
        state = item["partition"].get("state")
    words = [str(s).upper() for s in (state if isinstance(state, list) else [state])]
    state_text = "UP" if "UP" in words else str(state)
    return Partition(
        name=str(item["name"]),
        nodes=tuple(expand_hostlist(str(nodes or ""), field=f"nodes of partition {item['name']}")),
        max_time_s=None if minutes is None else minutes * 60,
        state=state_text,
        default=default,
    )
