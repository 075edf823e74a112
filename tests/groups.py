"""The parts of a whole test run that scripts/test.sh runs at the same time (ESAP_TEST_GROUP).

Parts running together must not disturb each other: each owns the services it loads hard (the
HTCondor pool whose four slots some tests count, the host's small SLURM cluster), and tests that
stop or restart a shared daemon (marker `stops_a_service`) run in the part "alone", after the
others. Every collected test belongs to exactly one part: the first rule whose prefix its node id
starts with, else DEFAULT. The parts are balanced by the durations of a whole CI run.
"""

from __future__ import annotations

ALONE = "alone"
DEFAULT = "platforms"
# (node id prefix, part): the first match wins
RULES: tuple[tuple[str, str], ...] = (
    # the HTCondor pool: its tests, the bundles sized by its slots, the CWL conformance runs (the
    # stock cwltool baseline is measured once per process, so the four sites stay together)
    ("tests/htcondor/", "htcondor"),
    ("tests/cwl/test_conformance.py", "htcondor"),
    ("tests/cwl/test_transfer.py", "htcondor"),
    ("tests/snakemake/test_bundles.py", "htcondor"),
    ("tests/snakemake/test_transfer.py", "htcondor"),
    ("tests/jdl/", "htcondor"),
    ("tests/staging/", "htcondor"),
    # the host's SLURM cluster: its tests, with those that count its queue (submit limits)
    ("tests/slurm/", "slurm"),
    ("tests/snakemake/", "slurm"),
    ("tests/cwl/", "slurm"),
    ("tests/auth/", "slurm"),
    ("tests/faults/", "slurm"),
    # the rest: the local backend, Rosetta, ESAP, UWS, reports, the bad-input corpus
)
PARALLEL = ("htcondor", "slurm", DEFAULT)
GROUPS = (*PARALLEL, ALONE)


def group_of(nodeid: str, stops_a_service: bool) -> str:
    """The part that runs the test with this node id (relative to the project's root)."""
    if stops_a_service:
        return ALONE
    for prefix, group in RULES:
        if nodeid.startswith(prefix):
            return group
    return DEFAULT
