"""make bench-cluster's utilisation is time-weighted (tests/bench/bench_cluster.py): a dip
counts for as long as it lasts, whatever the sampling."""

from __future__ import annotations

import math

from tests.bench.bench_cluster import time_weighted_utilisation


def test_a_long_dip_counts_for_its_length() -> None:
    # 8 GPUs: one 8-GPU pod runs 0-10 s, nothing 10-20 s, another runs 20-30 s
    recs = [{"gpus": 8, "running": 0.0, "finished": 10.0}, {"gpus": 8, "running": 20.0, "finished": 30.0}]
    assert math.isclose(time_weighted_utilisation(recs, 0.0, 30.0, 8), 2 / 3)


def test_intervals_are_clipped_to_the_window_and_open_ones_run_to_its_end() -> None:
    recs = [
        {"gpus": 4, "running": -5.0, "finished": 5.0},  # started before the window: 5 s inside
        {"gpus": 2, "running": 8.0},  # still running at the end: 2 s inside
        {"gpus": 1, "start": 1.0},  # never ran
    ]
    assert math.isclose(time_weighted_utilisation(recs, 0.0, 10.0, 8), (4 * 5 + 2 * 2) / 80)
    assert math.isnan(time_weighted_utilisation(recs, 10.0, 10.0, 8))
