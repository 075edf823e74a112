"""cwltool's tool factory with CommandLineTools whose jobs go to a site."""

from __future__ import annotations

import os
from collections.abc import Generator, MutableMapping
from typing import Any, cast

from cwltool.command_line_tool import CommandLineTool
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.errors import UnsupportedRequirement, WorkflowException
from cwltool.job import JobBase
from cwltool.process import Process, shortname
from cwltool.stdfsaccess import StdFsAccess
from cwltool.workflow import default_make_tool

from ..errors import EsapError
from .job import SANDBOX_NAME, EsapCommandLineJob
from .placement import named_site


class EsapCommandLineTool(CommandLineTool):
    def make_job_runner(self, runtimeContext: RuntimeContext) -> type[JobBase]:
        # cwltool calls this after checking the inputs: an invalid job order is reported as
        # such (as stock cwltool does), before a requirement this runner cannot meet
        unsupported = getattr(runtimeContext, "esap_unsupported", None)
        if unsupported:
            raise UnsupportedRequirement(unsupported)
        return EsapCommandLineJob

    def job(
        self,
        job_order: MutableMapping[str, Any],
        output_callbacks: Any,
        runtimeContext: RuntimeContext,
    ) -> Generator[Any, None, None]:
        session = runtimeContext.esap  # type: ignore[attr-defined]
        docker, docker_required = self.get_requirement("DockerRequirement")
        unsupported = None
        if docker and docker_required and not runtimeContext.use_container:
            unsupported = "--no-container, but this CommandLineTool has DockerRequirement under 'requirements'."
        image = None
        if docker and runtimeContext.use_container:
            image = str(docker.get("dockerPull") or docker.get("dockerImageId") or "")
            if not image:
                unsupported = (
                    "esap-cwltool runs images from the site's image map: DockerRequirement needs "
                    "dockerPull or dockerImageId (dockerLoad, dockerFile and dockerImport are not supported)"
                )
        tool_id = str(self.tool.get("id", ""))
        stem = runtimeContext.name or shortname(tool_id or "job")
        key = session.job_key(stem, "" if tool_id.startswith("_:") else tool_id, job_order)
        root = session.job_root(key)
        inner = runtimeContext.copy()
        inner.use_container = False
        inner.esap_unsupported = unsupported  # type: ignore[attr-defined]
        # the command line is built for the site the step is expected on (EsapCommandLineJob.run
        # checks that the placement agrees): a site without a shared filesystem gets fixed
        # per-job paths that the job script makes on the execute host, as a container would;
        # everywhere else host paths (a container mounts the job's directory at the same path)
        virtual = None
        try:
            transfer = session.transfers_files(session.site(named_site(self) or session.default_site))
        except EsapError:
            transfer = False  # refused by EsapCommandLineJob.run, outside cwltool's workflow machinery
        if transfer:
            if runtimeContext.cachedir:  # cwltool would make the cache directory the job's outdir
                raise WorkflowException("--cachedir is not supported on sites without a shared filesystem")
            virtual = session.virtual_root(root)
            inner.make_fs_access = keep_paths_under(virtual, inner.make_fs_access)
        base = virtual or root
        inner.outdir = os.path.join(base, "out")
        inner.tmpdir = os.path.join(base, "tmp")
        inner.stagedir = os.path.join(base, "stage")
        for job in super().job(job_order, output_callbacks, inner):
            if isinstance(job, EsapCommandLineJob):
                job.esap_key = key
                job.esap_root = root
                job.esap_image = image
                if virtual is not None:
                    # this side's directories: what is sent, and where `out` comes back
                    job.esap_virtual = virtual
                    job.outdir = os.path.join(root, "out")
                    job.tmpdir = os.path.join(root, SANDBOX_NAME, "tmp")
                    job.stagedir = os.path.join(root, SANDBOX_NAME, "stage")
            yield job


def keep_paths_under(root: str, base: type[StdFsAccess]) -> type[StdFsAccess]:
    """cwltool resolves the job's directories with realpath: paths under the job's virtual root
    exist only on the execute host, where a link of that name may also be left on this one."""

    def realpath(self: StdFsAccess, path: str) -> str:
        return path if path == root or path.startswith(root + "/") else base.realpath(self, path)

    return cast(type[StdFsAccess], type(f"Esap{base.__name__}", (base,), {"realpath": realpath}))


def esap_make_tool(toolpath_object: Any, loadingContext: LoadingContext) -> Process:
    if toolpath_object.get("class") == "CommandLineTool":
        return EsapCommandLineTool(toolpath_object, loadingContext)
    return default_make_tool(toolpath_object, loadingContext)
