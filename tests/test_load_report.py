"""bench/load.py's summary: the steady-state figures leave out the warm-up and split the
latency by request kind (what the README's load rows report)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.load import LoadReport


def test_steady_figures_leave_out_the_warm_up_and_group_by_kind():
    report = LoadReport(clients=2, seconds=10.0, started=100.0, warm_up=5.0)
    for sent, kind, ms in [
        (100.5, "remember", 2000.0),  # sent in the warm-up: in the whole run only
        (104.9, "recall", 1500.0),
        (105.0, "recall", 10.0),
        (106.0, "recall", 30.0),
        (107.0, "remember", 40.0),
    ]:
        report.requests += 1
        report.starts.append(sent)
        report.kinds.append(kind)
        report.latencies_ms.append(ms)
    summary = report.summary()
    assert summary["p99_ms"] == 2000.0
    assert summary["steady"] == {"p50_ms": 30.0, "p99_ms": 40.0, "n": 3}
    assert summary["steady_by_kind"] == {
        "recall": {"p50_ms": 20.0, "p99_ms": 30.0, "n": 2},
        "remember": {"p50_ms": 40.0, "p99_ms": 40.0, "n": 1},
    }
    assert summary["warm_up_s"] == 5.0


def test_a_run_shorter_than_the_warm_up_has_empty_steady_figures():
    report = LoadReport(clients=1, seconds=1.0, started=0.0)
    report.requests, report.starts, report.kinds, report.latencies_ms = 1, [0.5], ["recall"], [9.0]
    summary = report.summary()
    assert summary["steady"]["n"] == 0 and summary["steady_by_kind"] == {}


@given(
    st.lists(
        st.tuples(
            st.floats(0, 60, allow_nan=False),
            st.sampled_from(["recall", "remember", "remember batch of 5"]),
            st.floats(0, 1e6, allow_nan=False),
        ),
        max_size=300,
    ),
    st.floats(0, 60, allow_nan=False),
)
def test_steady_figures_hold_for_any_run(requests, warm_up):
    report = LoadReport(clients=1, seconds=60.0, started=0.0, warm_up=warm_up)
    for sent, kind, ms in requests:
        report.requests += 1
        report.starts.append(sent)
        report.kinds.append(kind)
        report.latencies_ms.append(ms)
    summary = report.summary()
    kept = [(kind, ms) for sent, kind, ms in requests if sent >= warm_up]
    assert summary["steady"]["n"] == len(kept)
    assert sum(k["n"] for k in summary["steady_by_kind"].values()) == len(kept)
    for kind, figures in summary["steady_by_kind"].items():
        mine = sorted(ms for k, ms in kept if k == kind)
        assert figures["n"] == len(mine)
        assert round(mine[0], 1) <= figures["p50_ms"] <= figures["p99_ms"] <= round(mine[-1], 1)
