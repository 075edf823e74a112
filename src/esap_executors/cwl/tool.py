"""cwltool's tool factory with CommandLineTools whose jobs go to a site."""

from __future__ import annotations

import os
from collections.abc import Generator, MutableMapping
from typing import Any

from cwltool.command_line_tool import CommandLineTool
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.errors import UnsupportedRequirement
from cwltool.job import JobBase
from cwltool.process import Process, shortname
from cwltool.workflow import default_make_tool

from .job import EsapCommandLineJob


class EsapCommandLineTool(CommandLineTool):
    def make_job_runner(self, runtimeContext: RuntimeContext) -> type[JobBase]:
        return EsapCommandLineJob

    def job(
        self,
        job_order: MutableMapping[str, Any],
        output_callbacks: Any,
        runtimeContext: RuntimeContext,
    ) -> Generator[Any, None, None]:
        session = runtimeContext.esap  # type: ignore[attr-defined]
        docker, docker_required = self.get_requirement("DockerRequirement")
        if docker and docker_required and not runtimeContext.use_container:
            raise UnsupportedRequirement(
                "--no-container, but this CommandLineTool has DockerRequirement under 'requirements'."
            )
        image = None
        if docker and runtimeContext.use_container:
            image = str(docker.get("dockerPull") or docker.get("dockerImageId") or "")
            if not image:
                raise UnsupportedRequirement(
                    "esap-cwltool runs images from the site's image map: DockerRequirement needs "
                    "dockerPull or dockerImageId (dockerLoad, dockerFile and dockerImport are not supported)"
                )
        tool_id = str(self.tool.get("id", ""))
        stem = runtimeContext.name or shortname(tool_id or "job")
        key = session.job_key(stem, "" if tool_id.startswith("_:") else tool_id, job_order)
        root = session.job_root(key)
        # host paths everywhere: a container mounts the job's directory at the same path
        inner = runtimeContext.copy()
        inner.use_container = False
        inner.outdir = os.path.join(root, "out")
        inner.tmpdir = os.path.join(root, "tmp")
        inner.stagedir = os.path.join(root, "stage")
        for job in super().job(job_order, output_callbacks, inner):
            if isinstance(job, EsapCommandLineJob):
                job.esap_key = key
                job.esap_root = root
                job.esap_image = image
            yield job


def esap_make_tool(toolpath_object: Any, loadingContext: LoadingContext) -> Process:
    if toolpath_object.get("class") == "CommandLineTool":
        return EsapCommandLineTool(toolpath_object, loadingContext)
    return default_make_tool(toolpath_object, loadingContext)
