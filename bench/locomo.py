"""Retrieval quality on LoCoMo: does recall put the evidence turns of a question on top?

Every dialog turn becomes one memory, stored through the real default engine (SQLite
store, e5 embedder) in one session per conversation; every QA of category 1-4 with
evidence is a recall query in that session. Reports recall@5, recall@10, hit@5 and MRR
of the evidence dia_ids, overall, per category and per conversation, and how well the
shown score separates evidence from the rest: of the top 10 memories scoring at least
``min_score`` (0.5, 0.8), the share that are evidence (precision) and the share of all
evidence they hold.

    python bench/locomo.py --data ../shared/data/locomo-dev.json [--json] [--postgres]

``--postgres`` stores the turns in PostgreSQL + pgvector (a throwaway ``pgserver``, a fresh
database per run) instead of SQLite, to check that both backends rank alike.

A turn is stored the way an agent keeping a conversation log would write it: who said
it, when, and what (with the caption of a shared photo), e.g.
``[1:56 pm on 8 May, 2023] Caroline: I went to a LGBTQ support group yesterday ...``.
The date goes in the text because that is where a user's own memories carry it (and
questions ask "when"); it is also in metadata, and the memory's created time is the
session's date (the engine's clock is set to it while that session is stored).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from memstore.embedding import Embedder, load_embedder
from memstore.engine import MemoryEngine
from memstore.stores.base import Store
from memstore.stores.sqlite import SQLiteStore

BATCH = 100
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}

BENCH_ACCOUNT = "bench"
MIN_SCORES = (0.5, 0.8)


class SettableClock:
    """The engine's clock, moved to each session's date so created_at is that date."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def session_time(text: str) -> float:
    """'1:56 pm on 8 May, 2023' -> a UTC timestamp."""
    moment = datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y")
    return moment.replace(tzinfo=UTC).timestamp()


def turn_text(turn: dict[str, Any], when: str) -> str:
    text = turn.get("text", "").strip()
    if turn.get("blip_caption"):
        text += f" [shared a photo: {turn['blip_caption']}]"
    return f"[{when}] {turn['speaker']}: {text}"


def sessions_of(conversation: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    keys = [k for k in conversation if re.fullmatch(r"session_\d+", k)]
    keys.sort(key=lambda k: int(k.split("_")[1]))
    return [(conversation[f"{k}_date_time"], conversation[k]) for k in keys if conversation[k]]


def store_conversation(
    engine: MemoryEngine, clock: SettableClock, sample: dict[str, Any], session: str
) -> dict[str, str]:
    """Remember every turn; return memory id -> dia_id."""
    by_id: dict[str, str] = {}
    for when, turns in sessions_of(sample["conversation"]):
        clock.now = session_time(when)
        items = [
            {
                "content": turn_text(t, when),
                "session": session,
                "metadata": {"date": when, "speaker": t["speaker"], "dia_id": t["dia_id"]},
            }
            for t in turns
        ]
        for start in range(0, len(items), BATCH):
            for result in engine.remember_many(BENCH_ACCOUNT, items[start : start + BATCH]):
                by_id[result.memory.id] = result.memory.metadata["dia_id"]
    clock.now = time.time()
    return by_id


def score_query(found: list[str], evidence: set[str]) -> dict[str, float]:
    ranks = [i for i, d in enumerate(found) if d in evidence]
    return {
        "recall@5": len(evidence & set(found[:5])) / len(evidence),
        "recall@10": len(evidence & set(found[:10])) / len(evidence),
        "hit@5": float(bool(evidence & set(found[:5]))),
        "mrr": 1.0 / (ranks[0] + 1) if ranks else 0.0,
    }


def run(
    data: Path,
    limit_conversations: int | None = None,
    collapse: bool = True,
    embedder: Embedder | None = None,
    postgres: str | None = None,
) -> dict[str, Any]:
    """``postgres``: a PostgreSQL server URL to store in (a new database), else SQLite."""
    samples = json.loads(data.read_text())[:limit_conversations]
    clock = SettableClock()
    per_category: dict[int, list[dict[str, float]]] = defaultdict(list)
    per_conversation: dict[str, list[dict[str, float]]] = defaultdict(list)
    # min_score -> [memories scoring at least it, evidence among them, evidence in all]
    thresholds = {t: [0, 0, 0] for t in MIN_SCORES}
    started = time.perf_counter()
    timings = {"store": 0.0, "recall": 0.0}
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp), postgres) as store:
        engine = MemoryEngine(store, embedder or load_embedder(), clock=clock)
        engine.ensure_account(BENCH_ACCOUNT)
        for n, sample in enumerate(samples):
            session = str(sample.get("sample_id", f"conversation-{n}"))
            t0 = time.perf_counter()
            dia_of = store_conversation(engine, clock, sample, session)
            t1 = time.perf_counter()
            for qa in sample["qa"]:
                if qa.get("category") not in CATEGORIES or not qa.get("evidence"):
                    continue
                hits = engine.recall(
                    BENCH_ACCOUNT, qa["question"], session=session, limit=10, collapse=collapse
                )
                found = [dia_of.get(h.id, "") for h in hits]
                evidence = set(qa["evidence"])
                scored = score_query(found, evidence)
                per_category[qa["category"]].append(scored)
                per_conversation[session].append(scored)
                for t, counts in thresholds.items():
                    kept = [d for d, h in zip(found, hits, strict=True) if h.score >= t]
                    counts[0] += len(kept)
                    counts[1] += sum(d in evidence for d in kept)
                    counts[2] += len(evidence)
            timings["store"] += t1 - t0
            timings["recall"] += time.perf_counter() - t1
    return {
        "per_category": per_category,
        "per_conversation": per_conversation,
        "thresholds": thresholds,
        "wall": time.perf_counter() - started,
        **timings,
    }


@contextmanager
def open_store(tmp: Path, postgres: str | None) -> Iterator[Store]:
    """A SQLite store in ``tmp``, or a PostgresStore in a new database of the server
    ``postgres`` (dropped afterwards)."""
    if postgres is None:
        store: Store = SQLiteStore.open_dir(tmp)
        try:
            yield store
        finally:
            store.close()
        return
    import psycopg

    from memstore.stores.postgres import PostgresStore

    name = f"locomo_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    pg = PostgresStore(urlunsplit(urlsplit(postgres)._replace(path="/" + name)))
    try:
        yield pg
    finally:
        pg.close()
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_databases = itertools.count()


def pgserver_url() -> tuple[str, object]:
    """A throwaway pgserver (bench/pg_recall.py); keep the server object referenced."""
    from pg_recall import start_pgserver

    url, server, _ = start_pgserver()
    return url, server


def mean(rows: list[dict[str, float]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows) if rows else 0.0


METRICS = ("recall@5", "recall@10", "hit@5", "mrr")


def report(result: dict[str, Any], command: str, as_json: bool) -> None:
    per_category = result["per_category"]
    everything = [r for rows in per_category.values() for r in rows]
    print(f"{'category':<16}{'n':>6}" + "".join(f"{m:>11}" for m in METRICS))
    for cat in sorted(per_category):
        rows = per_category[cat]
        label = f"{cat} {CATEGORIES[cat]}"
        print(f"{label:<16}{len(rows):>6}" + "".join(f"{mean(rows, m):>11.3f}" for m in METRICS))
    print(
        f"{'overall':<16}{len(everything):>6}"
        + "".join(f"{mean(everything, m):>11.3f}" for m in METRICS)
    )
    print(f"\n{'conversation':<16}{'n':>6}" + "".join(f"{m:>11}" for m in METRICS))
    for name, rows in result["per_conversation"].items():
        print(f"{name:<16}{len(rows):>6}" + "".join(f"{mean(rows, m):>11.3f}" for m in METRICS))
    print(f"\n{'min_score':<16}{'kept':>6}{'precision':>11}{'evidence':>11}")
    for t, (kept, hits, total) in result["thresholds"].items():
        precision = hits / kept if kept else 0.0
        print(f"{t:<16}{kept:>6}{precision:>11.3f}{hits / max(total, 1):>11.3f}")
    print(
        f"wall time {result['wall']:.1f} s (storing {result['store']:.1f} s, "
        f"{len(everything)} recalls {result['recall']:.1f} s)"
    )
    print(f"reproduce: {command}")
    if as_json:
        summary: dict[str, Any] = {m: round(mean(everything, m), 4) for m in METRICS}
        summary["n_queries"] = len(everything)
        for t, (kept, hits, _) in result["thresholds"].items():
            summary[f"precision@min_score_{t}"] = round(hits / kept, 4) if kept else None
        print(json.dumps(summary))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a LoCoMo JSON file")
    parser.add_argument("--json", action="store_true", help="end with one JSON summary line")
    parser.add_argument("--conversations", type=int, help="only the first N conversations")
    parser.add_argument(
        "--no-collapse", action="store_true", help="return every near-duplicate (collapse=false)"
    )
    parser.add_argument("--postgres", action="store_true", help="store in a throwaway pgserver")
    args = parser.parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in ["bench/locomo.py", *sys.argv[1:]])
    url, _server = pgserver_url() if args.postgres else (None, None)
    report(
        run(args.data, args.conversations, not args.no_collapse, postgres=url), command, args.json
    )


if __name__ == "__main__":
    main()
