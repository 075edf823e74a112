"""Rosetta: each step runs as a Rosetta task of one runner image, through the real Rosetta web
application (HTML forms and its file manager API; reference: rosetta.md §3, §4, §9, §11.1).

Rosetta runs images as long-lived services: a task has no command, no arguments and no exit
code, and Rosetta never notices that it ended. So the backend registers nothing per step; it
uses one runner software (`esap-runner`, built from `runner/`) and

- uploads the step's shell script to the site's storage (`esap/<run>/steps/<step>.sh`);
- starts a task named `esap-<run>-<step>` (<= 36 characters, run-scoped, so a rerun finds it)
  whose task password is `<run>-<step>.<128 random bits>` (steps.step_password);
- learns completion from the storage: the runner touches `esap/<run>/status/<step>.hb` every
  heartbeat period and, last, writes `esap/<run>/status/<step>.exit-<code>`; one file-manager
  listing of that folder per poll cycle covers every step of the run. A heartbeat older than
  two periods (plus slack) is a runner that died silently (killed, out of memory, SLURM time
  limit): the step fails with that reason;
- then downloads the step's stdout/stderr and stops and deletes the task.

Why the task password carries the step's identity: it is the only per-task value Rosetta hands
to the container. With `access_method=direct_tunnel` (no proxy auth) Rosetta exports the task
password as AUTH_PASS into the container on every computing type (`SINGULARITYENV_AUTH_PASS`
on SSH standalone and SLURM computings). A software's `env_vars` are per software, not per
task (one software per step would need an HTML form per step), and an atomic claim of a
pending step from a queue folder would let any runner take any step, losing the 1:1 link
between a task (and its SLURM job, its resources) and its step that cancel and reattach need.
`direct_tunnel` is a power-user option in Rosetta: the account must be a power user.

The password is `<token>.<32 hex digits>` from `secrets`: the runner takes the token before
the dot, and knowing a run id (or a step's name) gives no step's password, so no one can
guess it to reach a task's interface or tunnel. esap sends it as Rosetta's custom task
password, which Rosetta hands to the container and never stores (an auth token would be
kept in its database and shown on the task's page), and esap keeps it nowhere: not in the
state store, argv, logs or messages. Nothing later needs it: polling, collection, cancel and
reattach after a restart (`find`) go by the run-scoped task names and the storage.

The modules, one concern each: session (connection, folders, request pool), discovery
(validation, software resolution, describe), submission, completion (poll from the storage
listing, collection, find), cleanup (cancel, task removal), interactive; steps (names, the
password, the runner's result format).

A step that names its own image runs in that image with the runner added, registered as
Rosetta software on first use (images.py says why and how).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from ...sites import Site
from ..base import Capabilities
from .steps import job_id_of, parse_result, task_name, token_of, usage_of
from .submission import RosettaSubmission

__all__ = ["RosettaBackend", "job_id_of", "parse_result", "task_name", "token_of", "usage_of"]


class RosettaBackend(RosettaSubmission):
    name = "rosetta"
    capabilities: ClassVar[Capabilities] = Capabilities(
        file_transfer=True,  # the step's files move through Rosetta's file manager
        shared_filesystem=False,
        billing_fields=frozenset({"partition"}),  # Rosetta's task form takes cpus, memory, partition
        usage_accounting=True,  # the runner measures wall and CPU time
        software_images=True,  # Rosetta's software page names each container's registry and image
        step_images=True,  # a step's own image runs with the runner added (images.py)
        interactive=True,  # a software with an interface port as a task the user opens
    )
    option_types: ClassVar[Mapping[str, type | tuple[type, ...]]] = {
        "url": str,  # the Rosetta web application, e.g. https://rosetta.example.org
        "computing": str,  # computing resource name, as Rosetta lists it
        "storage": str,  # storage name on that computing (default "data")
        "software": str,  # the runner software name (default "esap-runner")
        "software_tag": str,  # its image tag (default: the only one registered)
        "heartbeat": int,  # seconds between runner heartbeats (default 10)
        "timeout": (int, float),  # seconds per Rosetta request
        "workers": int,  # steps started or collected at once (default 4)
        "start_timeout": (int, float),  # seconds a started task's runner has to report (default 300)
        # steps with their own image (images.py): the registry Rosetta pulls from, where esap
        # pushes each step image with the runner added; the software its tags register under;
        # the Rosetta group that software belongs to (default: the account's only group)
        "registry": str,
        "registry_tls_verify": bool,
        "builder": str,
        "step_software": str,
        "group": str,
    }

    @classmethod
    def capabilities_on(cls, site: Site) -> Capabilities:
        """A step never sees the submit side's files, whatever the site says: it runs in a
        container on the computing, with only the storage bound."""
        return replace(cls.capabilities.for_site(site), shared_filesystem=False)
