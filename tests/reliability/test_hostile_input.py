"""What a client sends can never corrupt or lock its own data (issue 14, items 4, 5, 8, 11).

Property tests over the engine (both stores): any metadata value, filter, cursor or session
name either works, and then listing, recall and export still work, or raises
ValidationError. Never another exception, never a stored value that cannot be read back.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memstore.engine import MemoryEngine
from memstore.errors import ValidationError
from memstore.models import MAX_FILTER_KEYS
from memstore.transfer import export_jsonl

pytestmark = pytest.mark.reliability

A, B = "acct_a", "acct_b"
SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
# Any text, or text with a lone surrogate somewhere (JSON's "\ud800" escape carries one).
texts = st.text(max_size=12) | st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=4), SURROGATES, st.text(max_size=4)
)
integers = st.integers() | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64])
scalars = st.one_of(
    st.none(), st.booleans(), integers, st.floats(allow_nan=True, allow_infinity=True), texts
)
values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=3), scalars)
keys = st.sampled_from(["kind", "n", "a.b", "x-y"]) | texts
metadatas = st.dictionaries(keys, values, max_size=4)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def readable(engine: MemoryEngine, account: str) -> None:
    """Everything the account holds can still be listed, recalled and exported."""
    engine.list(account, "*", limit=1000)
    engine.recall(account, "anything", "*")
    out = io.StringIO()
    count = export_jsonl(engine, account, out)
    # one record per "\n" (str.splitlines would also split at U+0085 or U+2028 in a value)
    assert out.getvalue().count("\n") == count + 1
    out.getvalue().encode("utf-8")


@PROPERTY
@given(metadata=metadatas)
def test_any_metadata_is_stored_readably_or_refused(engine, metadata):
    try:
        result = engine.remember(A, "metadata probe", "probe", metadata)
    except ValidationError:
        pass
    else:
        assert result.memory.metadata == {**result.memory.metadata, **metadata}
    readable(engine, A)


@PROPERTY
@given(metadata=metadatas)
def test_any_metadata_in_an_update_is_stored_readably_or_refused(engine, metadata):
    memory = engine.remember(A, "update probe", "probe").memory
    with contextlib.suppress(ValidationError):
        engine.update(A, memory.id, metadata=metadata)
    readable(engine, A)


@PROPERTY
@given(filters=metadatas | st.dictionaries(st.text(max_size=8), values, min_size=17))
def test_any_filters_recall_or_are_refused(engine, filters):
    engine.remember(A, "filter probe", "probe", {"kind": "docs", "n": 3})
    with contextlib.suppress(ValidationError):
        engine.recall(A, "probe", "*", filters=filters)


@PROPERTY
@given(name=texts)
def test_any_session_name_is_stored_under_its_nfc_form_or_refused(engine, name):
    try:
        memory = engine.remember(A, "session probe", name).memory
    except ValidationError:
        return
    assert memory.session == unicodedata.normalize("NFC", name)
    assert {s.session for s in engine.sessions(A)} >= {memory.session}
    assert [m.id for m in engine.list(A, name).memories] == [memory.id]
    readable(engine, A)


@pytest.mark.parametrize(
    "name",
    [
        "a\u202eb",  # right-to-left override
        "a\u2066b",  # left-to-right isolate
        "\u200b",  # zero-width space only
        "\u200e\u200f",  # direction marks only
        "a\x1fb",
        "a\x85b",  # NEL, a C1 control character
        "\ud800",
    ],
)
def test_session_names_with_bidi_control_or_nothing_visible_are_refused(engine, name):
    with pytest.raises(ValidationError):
        engine.remember(A, "x", name)


def test_look_alike_session_names_are_one_session(engine):
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    first = engine.remember(A, "same place", composed)
    second = engine.remember(A, "same place", decomposed)
    assert second.deduplicated and second.memory.id == first.memory.id
    assert [s.session for s in engine.sessions(A)] == [composed]


@PROPERTY
@given(
    cursor=st.text(max_size=60)
    | st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))
    | st.integers().map(lambda n: base64.b64encode(f"s{n}".encode()).decode())
    | st.sampled_from(["czk=", "cyA1", "czFfMA", "s9223372036854775808"])
)
def test_any_cursor_pages_or_is_refused(engine, cursor):
    with contextlib.suppress(ValidationError):
        engine.list(A, "*", limit=2, cursor=cursor)


@PROPERTY
@given(ttl=integers | st.floats() | st.booleans() | st.text(max_size=3))
def test_any_ttl_is_used_or_refused(engine, ttl):
    with contextlib.suppress(ValidationError):
        engine.remember(A, "ttl probe", "probe", ttl=ttl)


@PROPERTY
@given(limit=integers | st.floats() | st.booleans())
def test_any_limit_is_used_or_refused(engine, limit):
    for call in (
        lambda: engine.list(A, "*", limit=limit),
        lambda: engine.recall(A, "probe", "*", limit=limit),
    ):
        with contextlib.suppress(ValidationError):
            call()


# -- cursors (item 8)
def test_cursors_are_opaque_and_bound_to_their_account(engine):
    for i in range(3):
        engine.remember(A, f"page {i}")
        engine.remember(B, f"page {i}")
    cursor = engine.list(A, limit=1).next_cursor
    assert cursor is not None
    assert b"s" not in base64.urlsafe_b64decode(cursor + "==")[:2]  # no readable "s<seq>"
    assert len(engine.list(A, limit=5, cursor=cursor).memories) == 2
    with pytest.raises(ValidationError):
        engine.list(B, limit=5, cursor=cursor)  # another account's cursor
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "AB")
    with pytest.raises(ValidationError):
        engine.list(A, limit=5, cursor=tampered)


def test_a_cursor_does_not_move_when_another_account_writes(engine):
    engine.remember(A, "one")
    engine.remember(A, "two")
    before = engine.list(A, limit=1).next_cursor
    for i in range(37):
        engine.remember(B, f"noise {i}")
    after = engine.list(A, limit=1).next_cursor
    # Same page, but nothing in the cursor relates to the global counter: two cursors for
    # the same position differ (random nonce), and both still work.
    assert before != after
    assert engine.list(A, cursor=before).memories == engine.list(A, cursor=after).memories


@pytest.mark.parametrize(
    "cursor",
    [
        base64.urlsafe_b64encode(b"s5").decode(),
        base64.urlsafe_b64encode(b"s 5").decode(),
        base64.urlsafe_b64encode(b"s1_0").decode(),
        base64.urlsafe_b64encode(b"s9223372036854775808").decode(),
        "A" * 44,
    ],
)
def test_old_style_and_forged_cursors_are_refused(engine, cursor):
    engine.remember(A, "x")
    with pytest.raises(ValidationError):
        engine.list(A, cursor=cursor)


# -- integers (item 5)
@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 18446744073709551616, 10**400])
def test_integers_past_64_bits_are_refused_in_metadata_and_filters(engine, value):
    with pytest.raises(ValidationError):
        engine.remember(A, "big", metadata={"n": value})
    used = engine.usage(A).ops_used
    with pytest.raises(ValidationError):
        engine.recall(A, "big", filters={"n": value})
    assert engine.usage(A).ops_used == used  # refused before it was charged


def test_filter_keys_are_capped(engine):
    engine.remember(A, "capped", metadata={f"k{i}": 1 for i in range(20)})
    cap = {f"k{i}": 1 for i in range(MAX_FILTER_KEYS)}
    assert [m.content for m in engine.recall(A, "capped", filters=cap)] == ["capped"]
    with pytest.raises(ValidationError, match="at most 16"):
        engine.recall(A, "capped", filters={**cap, "k19": 1})


# -- lone surrogates (item 4): the SQLite migration repairs rows older versions stored
def test_the_migration_repairs_metadata_holding_a_lone_surrogate(tmp_path, embedder):
    import sqlite3

    from memstore.stores.sqlite import MIGRATIONS, SQLiteStore

    store = SQLiteStore.open_dir(tmp_path)
    engine = MemoryEngine(store, embedder)
    memory = engine.remember(A, "poisoned", "poison", {"k": "fine"}).memory
    store.close()
    # What an older version wrote for {"k": "\ud800"}: ASCII-escaped JSON.
    conn = sqlite3.connect(tmp_path / "memstore.db")
    conn.execute("UPDATE memories SET metadata = ?", (json.dumps({"k": "a\ud800"}),))
    conn.execute(f"PRAGMA user_version = {MIGRATIONS.index('repair_lone_surrogates')}")
    conn.commit()
    conn.close()
    store = SQLiteStore.open_dir(tmp_path)
    try:
        engine = MemoryEngine(store, embedder)
        assert engine.get(A, memory.id).metadata == {"k": "a\ufffd"}
        readable(engine, A)
    finally:
        store.close()
