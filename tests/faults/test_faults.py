"""The fault-injection suite, bounded for CI: a few iterations (harness.py), each a fresh
cluster with one daemon killed with SIGKILL at a random moment. `LUSTREPY_FAULT_SEEDS`
(a count) runs more; `scripts/faults N` runs long series and prints each failing seed."""

from __future__ import annotations

import os

import pytest

from tests.faults.harness import DNE_SEEDS, iterate, plan

# Seeds chosen so that the test command sees the MDS (after a barrier) and a client killed.
# OSS kills run in `scripts/faults` series only: late in the whole suite, an OSS restarted by
# an iteration took 30 s and then 2 minutes to serve (it takes 0.3 s alone; cause not found
# yet), longer than the calls wait for it. Two seeds run two MDTs, killing MDT0's and MDT1's MDS.
BASE_SEEDS = [s for s in range(100) if plan(s).victim == "mds"][:3] + \
             [s for s in range(100) if plan(s).victim == "client"][:1] + \
             [next(s for s in range(DNE_SEEDS, DNE_SEEDS + 100) if plan(s).victim == v) for v in ("mds", "mdt1")]
SEEDS = BASE_SEEDS + list(range(1000, 1000 + int(os.environ.get("LUSTREPY_FAULT_SEEDS", "0"))))


@pytest.mark.timeout(400)
@pytest.mark.parametrize("seed", SEEDS)
def test_nothing_that_returned_is_lost(seed, tmp_path):
    problems = iterate(seed, tmp_path)
    assert not problems, "\n".join(problems)
