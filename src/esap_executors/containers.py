"""Run a job's argv under the site's container runtime, with the image from the site's image map."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from .backends import backend_class, capabilities_of
from .errors import BadInput
from .job import JobSpec
from .sites import Site


def resolve_image(site: Site, image: str) -> str:
    """The local file, directory or tag the site maps `image` to; never a registry pull."""
    local = site.container.images.get(image)
    if local is None:
        known = ", ".join(sorted(site.container.images)) or "none"
        raise BadInput(
            f"image {image!r} is not in the image map of site {site.name} (known: {known}); "
            "images are never pulled on these sites",
            field="container",
        )
    return local


def check_container(site: Site, spec: JobSpec) -> None:
    if spec.container is None or capabilities_of(site).step_images:
        return  # (the backend checks the images it runs the steps in)
    runtime = runtime_for(site, spec)
    if runtime is None:
        raise BadInput(f"site {site.name} has no container runtime", field="container")
    if runtime not in capabilities_of(site).container_runtimes:
        declared = backend_class(site.backend).capabilities.container_runtimes
        why = ("the site's options do not let its jobs run containers" if runtime in declared
               else f"backend {site.backend} runs no {runtime} containers")
        raise BadInput(f"site {site.name} cannot run containers: {why}", field="container")
    resolve_image(site, spec.container.image)


def runtime_for(site: Site, spec: JobSpec) -> str | None:
    if spec.container is not None and spec.container.engine and site.container.runtime is None:
        return None
    return site.container.runtime


def container_argv(
    site: Site, spec: JobSpec, workdir: str, argv: Sequence[str], binds: Sequence[str] = ()
) -> list[str]:
    """argv wrapped for the site's runtime; the working directory is bound at the same path."""
    if spec.container is None:
        return list(argv)
    runtime = runtime_for(site, spec)
    image = resolve_image(site, spec.container.image)
    mounts = [workdir, *binds]
    if runtime == "apptainer":
        command = [shutil.which("apptainer") or "apptainer", "exec", "--containall", "--cleanenv"]
        for path in mounts:
            command += ["--bind", f"{path}:{path}"]
        command += ["--pwd", workdir]
        for name, value in spec.env.items():
            command += ["--env", f"{name}={value}"]
        return [*command, image, *argv]
    if runtime == "podman":
        command = [shutil.which("podman") or "podman", "run", "--rm", "--pull=never"]
        if not spec.network:
            command.append("--network=none")
        for path in mounts:
            command += ["-v", f"{path}:{path}"]
        command += ["-w", workdir]
        for name, value in spec.env.items():
            command += ["-e", f"{name}={value}"]
        return [*command, image, *argv]
    raise BadInput(f"site {site.name} has no container runtime", field="container")
