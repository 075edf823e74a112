"""Submission: each step's script (or a bundle of a run's scripts) and inputs uploaded to the
storage, then its task started with the runner software."""

from __future__ import annotations

import secrets
import shlex
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ..base import Submission
from .client import RosettaClient
from .completion import RosettaCompletion
from .steps import step_of, step_password, task_name, token_of


class RosettaSubmission(RosettaCompletion):
    """Submission of batch and interactive steps."""

    def submit(self, jobs: Sequence[Submission]) -> list[str]:
        """Per step: upload its script, start its task; `workers` steps at a time (starting a
        task holds Rosetta's request while it runs ssh and sbatch)."""
        if not jobs:
            return []
        self._resolve()
        computing, software = self._computing_uuid, self._software_uuid
        assert computing and software
        for job in jobs:
            if job.spec.interactive:
                self._interactive_software(job.spec.container.image if job.spec.container else "")
            elif job.spec.container is not None:
                self._step_software(job.spec.container.image)
        for run_id in sorted({job.run_id for job in jobs}):
            self._ensure_run_folders(run_id)
        for job in jobs:
            self._submitted[token_of(job.job_id)] = time.time()
            self._streams[token_of(job.job_id)] = (job.stdout, job.stderr)
            self._outputs[token_of(job.job_id)] = job

        bundled = self._upload_scripts([job for job in jobs if not job.spec.interactive])

        def send(client: RosettaClient, job: Submission) -> str:
            token = token_of(job.job_id)
            if job.spec.interactive:
                return self._start_interactive(client, job, token)
            if job.spec.stage_in:
                self._upload_inputs(client, job, token)
            if token not in bundled:
                self._act()
                client.upload(f"{self._run_folder(job.run_id)}steps/", f"{step_of(token)}.sh",
                              self._script(job).encode())
            spec = job.spec
            self._act()
            container = self._step_containers[spec.container.image] if spec.container else software
            client.start_task(
                name=task_name(token), container=container, computing=computing, password=step_password(token),
                kept=False, cpus=spec.cores, memory=f"{spec.memory_mib}M" if spec.memory_mib else None,
                partition=spec.partition,
            )
            return token

        return self._each(send, jobs)

    def _upload_scripts(self, jobs: Sequence[Submission]) -> set[str]:
        """The scripts of a run's steps submitted together as one bundle (one upload; each
        runner takes its section, see runner/esap-runner.sh); the tokens bundled."""
        bundled: set[str] = set()
        by_run: dict[str, list[Submission]] = {}
        for job in jobs:
            by_run.setdefault(job.run_id, []).append(job)
        for run_id, members in by_run.items():
            if len(members) < 2:
                continue
            nonce = secrets.token_hex(8)
            sections = []
            for job in members:
                step = step_of(token_of(job.job_id))
                sections.append(f"#esap-step {step} {nonce}\n{self._script(job)}#esap-end {nonce}\n")
            first = step_of(token_of(members[0].job_id))
            self._act()
            self.client.upload(f"{self._run_folder(run_id)}steps/", f"{first}+{len(members)}.steps",
                               "".join(sections).encode())
            bundled.update(token_of(job.job_id) for job in members)
        return bundled

    def _upload_inputs(self, client: RosettaClient, job: Submission, token: str) -> None:
        """The step's input files and folders into its working folder on the storage."""
        work = f"{self._run_folder(job.run_id)}{step_of(token)}/work"
        files: list[tuple[PurePosixPath, Path]] = []
        folders: set[PurePosixPath] = {PurePosixPath(".")}
        for entry in job.spec.stage_in:
            dest, source = PurePosixPath(entry.dest), Path(entry.source)
            if source.is_dir():
                folders.add(dest)
                for path in sorted(source.rglob("*")):
                    relative = dest / path.relative_to(source).as_posix()
                    if path.is_dir():
                        folders.add(relative)
                    elif path.is_file():
                        files.append((relative, path))
            else:
                files.append((dest, source))
        for relative, _ in files:
            folders.update(relative.parents)
        run_folder, step = self._run_folder(job.run_id), step_of(token)
        self._add_folder(client, run_folder, step)
        self._add_folder(client, f"{run_folder}{step}/", "work")
        for folder in sorted(folders - {PurePosixPath(".")}, key=lambda f: len(f.parts)):
            parent = work if str(folder.parent) == "." else f"{work}/{folder.parent}"
            self._add_folder(client, parent + "/", folder.name)
        for relative, source in files:
            target = work if str(relative.parent) == "." else f"{work}/{relative.parent}"
            self._act()
            client.upload(target + "/", relative.name, source.read_bytes())

    def _script(self, job: Submission) -> str:
        spec = job.spec
        lines = ["#!/bin/sh", f"# esap-heartbeat: {self.heartbeat}", f"# esap job {job.job_id} ({job.name})"]
        if spec.walltime_s:
            lines.append(f"# esap-walltime: {spec.walltime_s}")  # the runner enforces it
        for key, value in spec.env.items():
            lines.append(f"export {key}={shlex.quote(value)}")
        if spec.argv:
            lines.append("exec " + shlex.join(spec.argv))
        else:
            lines.append(spec.script or "")
        return "\n".join(lines) + "\n"
