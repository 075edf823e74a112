"""Step images on Rosetta: a step that names its own container image (CWL DockerRequirement,
`esap run --container`, a Snakemake step's image) runs in that image.

Rosetta starts a task by running an image's entrypoint (`singularity run docker://…`); it passes
no command, and it cannot run a container inside another (no engine inside the task). So the
runner cannot start the step's image; instead the step's image gets the runner: esap builds,
once per image, `FROM <the step's image>` with `esap-runner` as its entrypoint, pushes it to
the site's registry (`options.registry`, the one Rosetta's computings pull from) and registers
it as a tag of one Rosetta software (`options.step_software`, default `esap-step`) for the
account's group (Rosetta lets only its admins register software for everyone). The tag names
the image and a hash of its content id and the runner's, so a changed image or runner is a new
tag and an unchanged one is built, pushed and registered once. The step's image needs what the
runner uses: a POSIX shell with sleep, touch, mv, sed, date and timeout.

Images are built with podman (argv lists; `options.builder` names another podman-compatible
CLI). A step's image is a registry reference, or a name of the site's image map
(`container.images`) standing for one.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ...errors import BadInput, EsapError

RUNNER = Path(__file__).parent / "runner" / "esap-runner.sh"
BUILD_TIMEOUT = 900.0  # seconds for a pull, a build or a push
_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


class ImageError(EsapError):
    """The step's image could not be pulled, built or pushed (the builder's own words)."""

    exit_code = 3


@dataclass(frozen=True)
class StepImage:
    source: str  # the image the step names (registry reference)
    image_name: str  # the derived image in the site's registry
    tag: str

    def reference(self, registry: str) -> str:
        return f"{registry}/{self.image_name}:{self.tag}"


def runner_digest() -> str:
    return hashlib.sha256(RUNNER.read_bytes()).hexdigest()


def derived_tag(source: str, content_id: str) -> str:
    """`<readable name>-<12 hex>`: the name for people, the hash of the source image's content
    id and of the runner for identity (≤ 128 characters, a valid registry tag)."""
    readable = _TAG_CHARS.sub("-", source.rsplit("/", 1)[-1]).strip("-.")[:80] or "image"
    digest = hashlib.sha256(f"{content_id}\n{runner_digest()}".encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


class ImageBuilder:
    """Pulls, builds and pushes with a podman-compatible CLI."""

    def __init__(self, *, builder: str = "podman", tls_verify: bool = True, image_name: str = "esap-step") -> None:
        self.builder = builder
        self.tls_verify = tls_verify
        self.image_name = image_name

    def _cli(self) -> str:
        path = shutil.which(self.builder)
        if path is None:
            raise BadInput(f"steps with their own image need {self.builder!r} on this host to add the esap runner "
                           "to the image", field="options.builder")
        return path

    def _run(self, argv: list[str], what: str) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ImageError(f"{what}: no answer from {self.builder} within {int(BUILD_TIMEOUT)} s") from None
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            raise ImageError(f"{what}: {said[:300]}")
        return done.stdout.strip()

    def _tls(self) -> list[str]:
        return [] if self.tls_verify else ["--tls-verify=false"]

    def content_id(self, source: str) -> str:
        """The local image's id, pulled first when this host does not have it."""
        cli = self._cli()
        inspect = [cli, "image", "inspect", "--format", "{{.Id}}", source]
        done = subprocess.run(inspect, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
        try:
            self._run([cli, "pull", "-q", *self._tls(), source], f"pull image {source}")
        except ImageError as exc:
            raise BadInput(f"the step's image {source!r} cannot be pulled: {exc}", field="container") from None
        return self._run(inspect, f"inspect image {source}")

    def step_image(self, source: str) -> StepImage:
        return StepImage(source=source, image_name=self.image_name, tag=derived_tag(source, self.content_id(source)))

    def build_and_push(self, image: StepImage, registry: str) -> None:
        """`FROM source` with the runner as entrypoint (no RUN: the build needs nothing from the
        image), pushed to `registry`."""
        cli = self._cli()
        local = f"localhost/{image.image_name}:{image.tag}"
        with tempfile.TemporaryDirectory(prefix="esap-step-image-") as context:
            root = Path(context)
            shutil.copy(RUNNER, root / "esap-runner")
            (root / "storage").mkdir()  # the bind point of Rosetta's storage
            (root / "Containerfile").write_text(
                f"FROM {image.source}\n"
                "COPY --chmod=755 esap-runner /usr/local/bin/esap-runner\n"
                "COPY storage /storage\n"
                'ENTRYPOINT ["/usr/local/bin/esap-runner"]\n'
                "CMD []\n"
            )
            self._run([cli, "build", "-q", "--pull=never", "-t", local, str(root)],
                      f"build {image.source} with the esap runner")
        self._run([cli, "push", "-q", *self._tls(), local, f"docker://{image.reference(registry)}"],
                  f"push {image.reference(registry)}")
