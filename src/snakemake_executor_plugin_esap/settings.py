"""Settings of the `esap` executor: each field becomes `--esap-<field>` (and a profile key)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from snakemake_interface_executor_plugins.settings import ExecutorSettingsBase

from .basket import read_into_config_file, unparse

if TYPE_CHECKING:
    from esap_executors.esap.basket_config import BasketConfig


def _text(help_text: str, *, env_var: bool = False, metavar: str = "VALUE") -> dict[str, object]:
    return {"help": help_text, "type": str, "env_var": env_var, "metavar": metavar}


def _seconds(help_text: str) -> dict[str, object]:
    return {"help": help_text, "type": float, "metavar": "SECONDS"}


@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    site: str | None = field(
        default=None,
        metadata=_text(
            "Site of the catalogue that runs the jobs (a rule's `esap_site` resource overrides "
            "it; a rule's `esap_requirements` resource chooses a site by matchmaking). "
            "Default: the built-in `local` site.",
            env_var=True,
            metavar="SITE",
        ),
    )
    sites: str | None = field(
        default=None,
        metadata=_text(
            "Site catalogue (sites.yaml). Default: $ESAP_SITES, else ~/.config/esap/sites.yaml.",
            env_var=True,
            metavar="FILE",
        ),
    )
    run_id: str | None = field(
        default=None,
        metadata=_text(
            "An explicit run key (e.g. the ESAP UWS job that runs this workflow): the run's "
            "jobs are recorded under it, so a second invocation with the same key joins the same "
            "run. Default: a new run per invocation.",
            metavar="KEY",
        ),
    )
    account: str | None = field(
        default=None,
        metadata=_text(
            "Account charged on SLURM sites (default: $SBATCH_ACCOUNT, then $SLURM_ACCOUNT, then "
            "the site's default). A rule's `esap_account` or `slurm_account` resource overrides it.",
            metavar="ACCOUNT",
        ),
    )
    partition: str | None = field(
        default=None,
        metadata=_text(
            "Partition on SLURM sites (default: the site's). A rule's `esap_partition` or "
            "`slurm_partition` resource overrides it.",
            metavar="PARTITION",
        ),
    )
    qos: str | None = field(
        default=None,
        metadata=_text(
            "Quality of service on SLURM sites. A rule's `esap_qos` or `qos` resource overrides it.",
            metavar="QOS",
        ),
    )
    poll_interval: float | None = field(
        default=None,
        metadata=_seconds(
            "First interval between scheduler queries (one query per site for all jobs); it "
            "grows while nothing changes. Default: the site's poll.start."
        ),
    )
    max_poll_interval: float | None = field(
        default=None,
        metadata=_seconds("Ceiling of the interval between scheduler queries. Default: the site's."),
    )
    requirements: str | None = field(
        default=None,
        metadata=_text(
            "ClassAd requirements choosing the site for every job without `esap_site` "
            "(e.g. 'other.GLUE2ComputingShareMaxCPUsPerJob >= 4').",
            metavar="EXPR",
        ),
    )

    max_bundle: int = field(
        default=10,
        metadata={
            "help": "When a batch holds more jobs of one rule than the site has slots for, run up to "
                    "this many of them in one scheduler job, starting Snakemake once for all "
                    "(each job keeps its own log and status). 1: one scheduler job per job.",
            "type": int,
            "metavar": "JOBS",
        },
    )

    usage_report: str | None = field(
        default=None,
        metadata=_text(
            "At the end, write what each scheduler job used against its request (wall and CPU "
            "time, peak memory, efficiencies) to this CSV file, and name the jobs that used less "
            "than half of their cores or memory.",
            metavar="FILE",
        ),
    )

    report: str | None = field(
        default=None,
        metadata=_text("At the end, write the run's HTML report (timeline, usage against requests) to "
                       "this file.", metavar="FILE"),
    )
    notify: str | None = field(
        default=None,
        metadata=_text("At the end, POST the run's summary as JSON to this http(s) URL (retried).",
                       metavar="URL"),
    )
    notify_auth: str = field(
        default="none",
        metadata={"help": "token: send the platform token (esap login, $BEARER_TOKEN) with the notice.",
                  "type": str, "choices": ("none", "token"), "metavar": "none|token"},
    )

    direct_shell: str = field(
        default="yes",
        metadata={"help": "yes: a plain shell rule's job (no conda, container, modules, benchmark, shadow, "
                          "storage files) runs its formatted command in the scheduler job without starting "
                          "Snakemake there (same shell, own log, exit code and retries); no: every job "
                          "starts a Snakemake.",
                  "type": str, "choices": ("no", "yes"), "metavar": "no|yes"},
    )

    right_size: str = field(
        default="no",
        metadata={"help": "yes: each rule's memory and runtime from what it used in earlier runs on its site "
                          "(a high percentile of the recorded peaks with a margin, never above the rule's own).",
                  "type": str, "choices": ("no", "yes"), "metavar": "no|yes"},
    )

    inputs_from_basket: BasketConfig | None = field(
        default=None,
        metadata={
            "help": "KEY[=FILE]: your ESAP shopping basket as config[KEY] (a list of URLs). The basket "
                    "($ESAP_GATEWAY_URL, your platform token; Rucio DIDs through $ESAP_RUCIO_URL) is read "
                    "and every item checked while Snakemake reads its options, and written to FILE "
                    "(default esap-basket.yaml); give --configfile FILE as well, which makes it config. "
                    "An item that cannot be used is named and nothing runs (exit 2).",
            "metavar": "KEY[=FILE]",
            "parse_func": read_into_config_file,
            "unparse_func": unparse,
        },
    )

    def effective_account(self) -> str | None:
        return self.account or os.environ.get("SBATCH_ACCOUNT") or os.environ.get("SLURM_ACCOUNT")
