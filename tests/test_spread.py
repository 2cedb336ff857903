"""``ranking.spread`` in index space gives bit for bit the sums of a walk of the links.

The walk below is how spreading is defined (docs/ranking.md, "Order" 7): for each memory of
``fused`` in its order, each memory ``Context.reach`` yields gets SPREAD[|offset|] of its
fused relevance. ``spread`` computes it with numpy; ranks and ties follow the exact float
sums and the order of the answer's keys, so both must be the same.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from memstore.ranking import CONTEXT_RADIUS, SPREAD, Context, spread


def walked(fused: dict[str, float], context: Context) -> dict[str, float]:
    """Spreading as defined: one walk of the links per memory, in the order of ``fused``."""
    out = dict(fused)
    for memory_id, relevance in fused.items():
        for offset, neighbor in context.reach(memory_id):
            out[neighbor] = out.get(neighbor, 0.0) + SPREAD[abs(offset)] * relevance
    return out


@st.composite
def recalls(draw: st.DrawFn) -> tuple[dict[str, float], Context]:
    """Sessions of memories in order, a store's ``neighbors`` answer for some of them (each
    side cut short at random, as the time window does) and a fused list over them and
    over memories in no session's context."""
    sessions = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))
    order = [[f"s{s}m{i}" for i in range(size)] for s, size in enumerate(sessions)]
    around: dict[str, dict[int, str]] = {}
    for memories in order:
        for at in draw(st.sets(st.integers(0, len(memories) - 1))):
            offsets: dict[int, str] = {}
            for side in (-1, 1):
                reach = draw(st.integers(0, CONTEXT_RADIUS))
                for step in range(1, reach + 1):
                    if not 0 <= at + side * step < len(memories):
                        break
                    offsets[side * step] = memories[at + side * step]
            around[memories[at]] = offsets
    known = [m for memories in order for m in memories] + [f"lone{i}" for i in range(4)]
    chosen = draw(st.lists(st.sampled_from(known), unique=True))
    values = st.one_of(st.sampled_from([0.1, 0.2, 1 / 6]), st.floats(0.001, 3.0))
    return {m: draw(values) for m in chosen}, Context(around)


@settings(max_examples=300, deadline=None)
@given(recalls())
def test_spread_equals_the_walk_bit_for_bit_and_in_key_order(case):
    fused, context = case
    expected = walked(fused, context)
    got = spread(fused, context)
    assert list(got) == list(expected)
    assert all(got[m] == expected[m] for m in expected)  # exact floats, not approximately
