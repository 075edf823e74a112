"""Where a transfer site runs a step's own image (Rosetta), a Snakemake job runs in the site's
Snakemake image or in its rule's `container:` image; in the rule's image the job's Snakemake
deploys no container again (the site runs none inside a step)."""

from __future__ import annotations

from esap_executors.job import Container
from snakemake_executor_plugin_esap import transfer


def test_the_rule_image_replaces_the_sites_only_where_steps_run_in_images() -> None:
    assert transfer.job_image("reg/snakemake:ci", None, step_images=True) == Container("reg/snakemake:ci")
    assert transfer.job_image("reg/snakemake:ci", "docker://reg/mine:1", step_images=True) == Container("reg/mine:1")
    assert transfer.job_image("reg/snakemake:ci", "docker://reg/mine:1", step_images=False) is None
    assert transfer.job_image(None, None, step_images=True) is None


def test_in_the_rule_image_the_job_deploys_no_container() -> None:
    command = ("python -m snakemake --snakefile /w/Snakefile --software-deployment-method conda apptainer "
               "--cores 1")
    assert transfer.job_command(command, "/w", in_rule_image=True) == (
        "python -m snakemake --snakefile Snakefile --software-deployment-method conda --cores 1")
    assert transfer.job_command("python -m snakemake --sdm apptainer --cores 1", "/w", in_rule_image=True) == (
        "python -m snakemake --cores 1")
    assert "apptainer" in transfer.job_command("python -m snakemake --sdm apptainer", "/w")


def test_in_the_rule_image_the_deployment_option_goes_under_each_of_its_names() -> None:
    # (Snakemake 9 writes the job's command with --deployment-method)
    for option in ("--software-deployment-method", "--deployment-method", "--deployment", "--sdm"):
        assert transfer.job_command(f"python -m snakemake {option} apptainer --cores 1", "/w",
                                    in_rule_image=True) == "python -m snakemake --cores 1"
        assert transfer.job_command(f"python -m snakemake {option} conda apptainer --cores 1", "/w",
                                    in_rule_image=True) == f"python -m snakemake {option} conda --cores 1"
