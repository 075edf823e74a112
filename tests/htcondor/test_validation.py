"""Refusals before anything reaches the schedd: the user's error in one line, nothing sent."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from esap_executors.errors import BadInput
from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.store import Store
from tests.htcondor.conftest import running_as_root


def submit_one(catalogue: Catalogue, store: Store, argv: list[str]) -> None:
    with Run.open(f"htc-val-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site="htcondor-local") as run:
        try:
            run.submit([JobRequest(key="v", spec=make_spec(argv))])
        finally:
            assert run.backend("htcondor-local").action_count == 0


def test_root_without_an_owner_is_told_how_to_fix_it(catalogue: Catalogue, store: Store) -> None:
    if not running_as_root():
        pytest.skip("only root needs options.owner")
    site = catalogue.get("htcondor-local")
    options = {k: v for k, v in site.options.items() if k != "owner"}
    catalogue.sites["htcondor-local"] = dataclasses.replace(site, options=options)
    with pytest.raises(BadInput, match="never runs jobs owned by root.*options.owner"):
        submit_one(catalogue, store, ["true"])


def test_a_work_root_the_owner_cannot_reach_is_refused(catalogue: Catalogue, store: Store) -> None:
    if not running_as_root():
        pytest.skip("only root submits for another user")
    site = catalogue.get("htcondor-local")
    catalogue.sites["htcondor-local"] = dataclasses.replace(site, work_root="/root/esap-htcondor-work")
    with pytest.raises(BadInput, match="not reachable by the job owner"):
        submit_one(catalogue, store, ["true"])


def test_a_line_break_in_an_argument_is_refused(catalogue: Catalogue, store: Store) -> None:
    with pytest.raises(BadInput, match="line break"):
        submit_one(catalogue, store, ["echo", "two\nlines"])


def test_match_time_substitution_syntax_is_refused(catalogue: Catalogue, store: Store) -> None:
    with pytest.raises(BadInput, match="reads \\$\\$ as a value of the machine"):
        submit_one(catalogue, store, ["echo", "$$(Memory)"])
