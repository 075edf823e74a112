"""Detached supervisor of one batch of local jobs.

`LocalBackend.submit` records a batch in the state store's SQLite database and starts
`python -m esap_executors.backends.local_supervisor --db PATH --batch ID`. The supervisor
detaches (its own session, then a second fork, so it survives the submitting process),
claims the batch, and runs each job as a process in its own process group when the job's
cores fit the site's budget. The budget is shared by every esap process of the user:
a job becomes `running` only inside a write transaction that checks the cores in use.

One supervisor runs many jobs without a Python interpreter per job: it forks and execs
each job directly and waits for SIGCHLD, so its cost per job is one fork/exec and a share
of a few short transactions.

This module imports only the standard library (and the package's standard-library-only helpers):
it is the process that runs the jobs. Its tables belong to state_schema.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from .. import state_schema
from ..sqlite_wal import connect_wal
from .local_memory import session_memory_mib, stat_fields

QUEUED, RUNNING = "queued", "running"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
LIVE_STATES = (QUEUED, RUNNING)

WALLTIME_REASON = "walltime exceeded (TIMEOUT)"
MEMORY_REASON = "memory limit exceeded: {used} MiB used, {limit} MiB requested (OUT_OF_MEMORY)"
CANCEL_REASON = "cancelled by user"
LOST_REASON = "local supervisor lost"

KILL_GRACE_S = 3.0  # between SIGTERM and SIGKILL of a job's process group
IDLE_TICK_S = 0.25  # cancel requests are seen within this
CANCEL_CHECK_S = 0.2
MEMORY_CHECK_S = 0.5
BLOCKED_TICK_S = 0.05  # while own jobs wait for cores another process may free
QUEUE_SCAN_LIMIT = 256


def connect(db_path: str) -> sqlite3.Connection:
    """The state database, brought to the current schema (it may be this process's first opener)."""
    db = connect_wal(db_path, timeout=60)
    state_schema.migrate(db)
    return db


@contextlib.contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot); None when gone or a zombie."""
    fields = stat_fields(pid)
    if fields is None or fields[0] == b"Z":
        return None
    return int(fields[19])


def process_group_of(pid: int) -> int | None:
    fields = stat_fields(pid)
    return None if fields is None else int(fields[2])


def supervisor_alive(pid: int | None, start: int | None) -> bool:
    return pid is not None and start is not None and process_start_ticks(pid) == start


@dataclass
class Job:
    id: int
    argv: list[str]
    env: dict[str, str]
    workdir: str
    stdin: str | None
    stdout: str
    stderr: str
    cores: int
    walltime_s: int | None
    success_codes: tuple[int, ...]
    memory_mib: int | None = None


@dataclass
class Running:
    job: Job
    process: subprocess.Popen[bytes]
    deadline: float | None  # monotonic
    end_reason: str | None = None  # set when the supervisor decided to kill the job
    end_state: str | None = None
    kill_at: float | None = None  # monotonic time of the SIGKILL escalation
    peak_memory_mib: int | None = None


@dataclass
class Ending:
    job_id: int
    state: str
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    ended: float = field(default_factory=time.time)
    cpu_s: float | None = None
    max_memory_mib: int | None = None


class Supervisor:
    def __init__(self, db_path: str, batch: str) -> None:
        self.db = connect(db_path)
        self.batch = batch
        self.site = ""
        self.jobs: dict[int, Job] = {}
        self.running: dict[int, Running] = {}  # by pid
        self.endings: list[Ending] = []
        # Pids are written with the next transaction, or after IDLE_TICK_S at the latest:
        # only a supervisor adopting this batch after a crash needs them.
        self.pids_to_record: list[tuple[int, int]] = []
        self.pids_waiting_since = 0.0
        self.terminating = False
        self.blocked = False
        self.next_cancel_check = 0.0
        self.next_memory_check = 0.0
        self.executables: dict[tuple[str, str], str | None] = {}
        self.has_queued = True
        self._wake_r, self._wake_w = os.pipe()

    # setup
    def claim(self) -> bool:
        """Become the batch's supervisor unless a live one exists; fail jobs a dead one left."""
        me, start = os.getpid(), process_start_ticks(os.getpid())
        with immediate(self.db) as db:
            row = db.execute(
                "SELECT site, supervisor_pid, supervisor_start FROM local_batches WHERE batch=?",
                (self.batch,),
            ).fetchone()
            if row is None:
                return False
            self.site = str(row[0])
            if row[1] not in (None, me) and supervisor_alive(row[1], row[2]):
                return False
            db.execute(
                "UPDATE local_batches SET supervisor_pid=?, supervisor_start=? WHERE batch=?",
                (me, start, self.batch),
            )
            left = db.execute(
                "SELECT id, pid, started FROM local_jobs WHERE batch=? AND state=?",
                (self.batch, RUNNING),
            ).fetchall()
            for job_id, pid, started in left:
                kill_orphan_group(pid, started)
                db.execute(
                    "UPDATE local_jobs SET state=?, reason=?, ended=? WHERE id=?",
                    (FAILED, LOST_REASON, time.time(), job_id),
                )
            rows = db.execute(
                "SELECT id, argv, env, workdir, stdin, stdout, stderr, cores, walltime_s, "
                "success_codes, memory_mib FROM local_jobs WHERE batch=? AND state=? ORDER BY id",
                (self.batch, QUEUED),
            ).fetchall()
        for r in rows:
            self.jobs[r[0]] = Job(
                id=r[0], argv=json.loads(r[1]), env=json.loads(r[2]), workdir=r[3], stdin=r[4],
                stdout=r[5], stderr=r[6], cores=r[7], walltime_s=r[8],
                success_codes=tuple(json.loads(r[9])), memory_mib=r[10],
            )
        return True

    def install_signals(self) -> None:
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_terminate)
        for number in (signal.SIGCHLD, signal.SIGTERM):
            signal.siginterrupt(number, False)  # SQLite's file I/O is restarted, not failed
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _on_terminate(self, *_: Any) -> None:
        self.terminating = True

    # main loop
    def run(self) -> None:
        self.install_signals()
        while self.running or self.has_queued:
            try:
                self.reap()
                now = time.monotonic()
                if self.terminating:
                    self.kill_all(now)
                self.enforce_limits(now)
                self.settle_and_start()
                if self.running or self.has_queued:
                    self.sleep()
            except sqlite3.OperationalError as exc:  # a long lock: keep the jobs, try again
                print(f"esap local supervisor {self.batch}: {exc}; retrying", file=sys.stderr, flush=True)
                time.sleep(1)
        while True:
            try:
                self.finish()
                return
            except sqlite3.OperationalError as exc:
                print(f"esap local supervisor {self.batch}: {exc}; retrying", file=sys.stderr, flush=True)
                time.sleep(1)

    def reap(self) -> None:
        while self.running:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            entry = self.running.pop(pid, None)
            if entry is None:
                os.waitpid(pid, 0)
                continue
            # The exited leader still holds the group id: clean up what it left behind.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)  # the job's CPU time, with its waited-for children
            code = os.waitstatus_to_exitcode(status)
            entry.process.returncode = code
            ending = ending_of(entry, code)
            ending.cpu_s = usage.ru_utime + usage.ru_stime
            ending.max_memory_mib = entry.peak_memory_mib
            self.endings.append(ending)

    def enforce_limits(self, now: float) -> None:
        cancelled: set[int] = set()
        if self.running and now >= self.next_cancel_check:
            self.next_cancel_check = now + CANCEL_CHECK_S
            rows = self.db.execute(
                "SELECT id FROM local_jobs WHERE batch=? AND state=? AND cancel_requested=1",
                (self.batch, RUNNING),
            ).fetchall()
            cancelled = {r[0] for r in rows}
        memory = self.memory_in_use(now)
        for pid, entry in self.running.items():
            if pid in memory:
                entry.peak_memory_mib = max(entry.peak_memory_mib or 0, memory[pid])
            if entry.end_state is None:
                limit = entry.job.memory_mib
                if entry.job.id in cancelled:
                    self.start_kill(pid, entry, CANCELLED, CANCEL_REASON, now)
                elif entry.deadline is not None and now >= entry.deadline:
                    self.start_kill(pid, entry, FAILED, WALLTIME_REASON, now)
                elif limit is not None and memory.get(pid, 0) > limit:
                    reason = MEMORY_REASON.format(used=memory[pid], limit=limit)
                    self.start_kill(pid, entry, FAILED, reason, now)
            elif entry.kill_at is not None and now >= entry.kill_at:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                entry.kill_at = None

    def memory_in_use(self, now: float) -> dict[int, int]:
        """MiB used by each running job (by pid), every MEMORY_CHECK_S: limits and peaks."""
        if now < self.next_memory_check or not self.running:
            return {}
        self.next_memory_check = now + MEMORY_CHECK_S
        return session_memory_mib([pid for pid, e in self.running.items() if not e.end_state])

    def start_kill(self, pid: int, entry: Running, state: str, reason: str, now: float) -> None:
        entry.end_state, entry.end_reason = state, reason
        entry.kill_at = now + KILL_GRACE_S
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)

    def kill_all(self, now: float) -> None:
        for pid, entry in self.running.items():
            if entry.end_state is None:
                self.start_kill(pid, entry, FAILED, "local supervisor terminated", now)
        if self.has_queued:
            with immediate(self.db) as db:
                db.execute(
                    "UPDATE local_jobs SET state=?, reason=?, ended=? WHERE batch=? AND state=?",
                    (FAILED, "local supervisor terminated", time.time(), self.batch, QUEUED),
                )
            self.has_queued = False

    def settle_and_start(self) -> None:
        """One transaction: record ended jobs and pids, then start the jobs whose cores fit."""
        if not (self.endings or self.has_queued):
            return
        if not self.endings and not self.may_start():
            return
        with immediate(self.db) as db:
            self.record(db)
            to_start = self.choose(db) if self.has_queued and not self.terminating else []
        self.recorded()
        for job in to_start:
            self.launch(job)

    def budget_used_queued(self, db: sqlite3.Connection) -> tuple[int, int, int]:
        """The site's cores budget, the cores in use, and how many of our jobs still wait."""
        row = db.execute(
            "SELECT (SELECT max_cores FROM local_slots WHERE site=?), "
            "(SELECT COALESCE(SUM(cores), 0) FROM local_jobs WHERE site=? AND state=?), "
            "(SELECT COUNT(*) FROM local_jobs WHERE batch=? AND state=?)",
            (self.site, self.site, RUNNING, self.batch, QUEUED),
        ).fetchone()
        return int(row[0] or 1), int(row[1]), int(row[2])

    def may_start(self) -> bool:
        """Cheap read before taking the write lock: is any core free on the site?"""
        budget, used, mine_left = self.budget_used_queued(self.db)
        self.has_queued = bool(mine_left)
        # Woken by SIGCHLD when our own jobs free cores; poll often when others hold them.
        ours = sum(entry.job.cores for entry in self.running.values())
        self.blocked = self.has_queued and used >= budget and used > ours
        return self.has_queued and used < budget

    def record(self, db: sqlite3.Connection) -> None:
        """Write pids and endings; `recorded()` forgets them once the transaction committed."""
        if self.pids_to_record:
            db.executemany("UPDATE local_jobs SET pid=? WHERE id=?", self.pids_to_record)
        if self.endings:
            db.executemany(
                "UPDATE local_jobs SET state=?, exit_code=?, signal=?, reason=?, ended=?, cpu_used_s=?, "
                "max_memory_mib=? WHERE id=?",
                [(e.state, e.exit_code, e.signal, e.reason, e.ended, e.cpu_s, e.max_memory_mib, e.job_id)
                 for e in self.endings],
            )

    def recorded(self) -> None:
        self.pids_to_record.clear()
        self.endings.clear()

    def choose(self, db: sqlite3.Connection) -> list[Job]:
        """Mark running the oldest queued jobs of the site that fit, if they are ours.

        Queued jobs of other live batches that are older keep their cores reserved: first come,
        first served across every esap process of the user.
        """
        budget, used, mine_left = self.budget_used_queued(db)
        free = budget - used
        self.has_queued = bool(mine_left)
        self.blocked = self.has_queued
        if free <= 0 or not self.has_queued:
            return []
        rows = db.execute(
            "SELECT j.id, j.cores, j.batch, b.supervisor_pid, b.supervisor_start FROM local_jobs j "
            "JOIN local_batches b ON b.batch = j.batch WHERE j.site=? AND j.state=? "
            "ORDER BY j.id LIMIT ?",
            (self.site, QUEUED, QUEUE_SCAN_LIMIT),
        ).fetchall()
        chosen: list[Job] = []
        too_big: list[int] = []
        live_others: dict[str, bool] = {}
        for job_id, cores, batch, pid, start in rows:
            if free <= 0:
                break
            if cores > budget:
                if batch == self.batch:
                    too_big.append(job_id)
                continue
            if cores > free:
                break  # first come, first served: a big job is not overtaken by small ones
            if batch != self.batch:
                if batch not in live_others:
                    live_others[batch] = supervisor_alive(pid, start)
                if live_others[batch]:
                    free -= cores
                continue
            job = self.jobs.get(job_id)
            if job is not None:
                chosen.append(job)
                free -= cores
        now = time.time()
        if chosen:
            db.executemany(
                "UPDATE local_jobs SET state=?, started=? WHERE id=?",
                [(RUNNING, now, job.id) for job in chosen],
            )
        if too_big:
            reason = f"needs more cores than the site's budget of {budget}"
            db.executemany(
                "UPDATE local_jobs SET state=?, reason=?, ended=? WHERE id=?",
                [(FAILED, reason, now, i) for i in too_big],
            )
        if len(chosen) + len(too_big) >= mine_left:
            self.has_queued = False
        self.blocked = self.has_queued and not chosen
        return chosen

    def launch(self, job: Job) -> None:
        opened: list[IO[bytes]] = []
        try:
            ensure_directory(job.workdir)
            stdin: IO[bytes] | int = subprocess.DEVNULL
            if job.stdin:
                stdin = open(os.path.join(job.workdir, job.stdin), "rb")  # noqa: SIM115
                opened.append(stdin)
            stdout = open_output(job.stdout)
            opened.append(stdout)
            stderr = stdout if job.stderr == job.stdout else open_output(job.stderr)
            opened.append(stderr)
            env = {**os.environ, **job.env} if job.env else None
            process = subprocess.Popen(
                job.argv, executable=self.executable(job), cwd=job.workdir, stdin=stdin,
                stdout=stdout, stderr=stderr, env=env, start_new_session=True,
            )
        except OSError as exc:
            reason = f"could not start {job.argv[0] if job.argv else 'the job'}: {exc.strerror or exc}"
            self.endings.append(Ending(job.id, FAILED, reason=reason))
            return
        finally:
            for handle in opened:
                handle.close()
        deadline = time.monotonic() + job.walltime_s if job.walltime_s else None
        self.running[process.pid] = Running(job, process, deadline)
        if not self.pids_to_record:
            self.pids_waiting_since = time.monotonic()
        self.pids_to_record.append((process.pid, job.id))

    def executable(self, job: Job) -> str | None:
        """argv[0] looked up on the job's PATH once per program, not once per job."""
        program = job.argv[0]
        if "/" in program:
            return None
        search_path = job.env.get("PATH") or os.environ.get("PATH", os.defpath)
        key = (program, search_path)
        if key not in self.executables:
            self.executables[key] = shutil.which(program, path=search_path)
        return self.executables[key]

    def sleep(self) -> None:
        if self.endings:
            return  # failed launches: record them now
        if self.pids_to_record and time.monotonic() - self.pids_waiting_since >= IDLE_TICK_S:
            with immediate(self.db) as db:
                self.record(db)
            self.recorded()
        timeout = BLOCKED_TICK_S if self.blocked else IDLE_TICK_S
        now = time.monotonic()
        for entry in self.running.values():
            due = entry.kill_at if entry.end_state else entry.deadline
            if due is not None:
                timeout = min(timeout, max(0.0, due - now))
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass

    def finish(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with immediate(self.db) as db:
            self.record(db)
            db.execute(
                "UPDATE local_batches SET finished=?, cpu_s=? WHERE batch=?",
                (time.time(), usage.ru_utime + usage.ru_stime, self.batch),
            )
        self.recorded()


def ending_of(entry: Running, code: int) -> Ending:
    signal_number = -code if code < 0 else None
    exit_code = code if code >= 0 else None
    if entry.end_state is not None:
        return Ending(entry.job.id, entry.end_state, exit_code, signal_number, entry.end_reason)
    if signal_number is not None:
        name = signal.Signals(signal_number).name if signal_number in _SIGNALS else str(signal_number)
        return Ending(entry.job.id, FAILED, None, signal_number, f"terminated by {name}")
    state = COMPLETED if code in entry.job.success_codes else FAILED
    return Ending(entry.job.id, state, exit_code)


_SIGNALS = {s.value for s in signal.Signals}


def open_output(path: str) -> IO[bytes]:
    ensure_directory(os.path.dirname(path))
    return open(path, "ab")  # noqa: SIM115


def ensure_directory(path: str) -> None:
    if path and not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)


def kill_orphan_group(pid: int | None, started: float | None) -> None:
    """SIGKILL the group of a job a dead supervisor left, if that process is still the job."""
    if pid is None or started is None or process_group_of(pid) != pid:
        return
    ticks = process_start_ticks(pid)
    if ticks is None:
        return
    began = _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    if not started - 2 <= began <= started + 30:
        return  # the pid was reused by another process
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _boot_time() -> float:
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def detach() -> None:
    """Second fork: the process that started us exits, we are adopted by init."""
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="esap-local-supervisor")
    parser.add_argument("--db", required=True)
    parser.add_argument("--batch", required=True)
    parser.add_argument("--foreground", action="store_true", help="do not detach (debugging)")
    args = parser.parse_args(argv)
    if not args.foreground:
        detach()
    supervisor = Supervisor(args.db, args.batch)
    if not supervisor.claim():
        return 0
    supervisor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
