"""Does this tree rank exactly as another? Every LoCoMo dev question, recalled by both.

Speed work on ranking must not change a result. This stores the LoCoMo conversations
through the real engine (SQLite, vectors cached by ``bench/locomo_variants.py``) once per
tree, in a subprocess whose ``PYTHONPATH`` is that tree's ``src``, recalls every question
in several ways, and compares, per question and per way, the ranked memories (by their
``dia_id``: memory ids are random), their scores (within 1e-9), the collapsed versions and
the ``why`` of each result.

    python bench/recall_identity.py --data ../shared/data/locomo-dev.json --against /work/main

Ways: the default (limit 10), collapse off with a deep list (limit 50), explain on,
``min_score`` 0.5, two sessions (the question's and the next conversation's), a metadata
filter (the conversation's first speaker) and all sessions.

``--postgres`` stores in PostgreSQL instead (a throwaway ``pgserver``, a database per tree),
and where the tree's PostgresStore has them, sets its ``guess_min_rows`` and
``floors_min_rows`` defaults to ``--pg-guess-min-rows`` and ``--pg-floors-min-rows``
(default 0: every scope goes through the HNSW guess of stores/pg_follow_up.py and the
score floors of stores/pg_bounds.py, which LoCoMo's small sessions would otherwise skip):

    python bench/recall_identity.py --data ../shared/data/locomo-dev.json --postgres
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
WAYS = ("default", "deep", "explain", "min_score", "two_sessions", "filtered", "everywhere")
TOLERANCE = 1e-9


def dump(
    data: Path,
    cache: Path,
    out: Path,
    postgres: str | None = None,
    min_rows: tuple[int, int] = (0, 0),
) -> None:
    """Recall every question every way with the memstore importable here; write JSON."""
    from locomo import BENCH_ACCOUNT, CATEGORIES, SettableClock, open_store, store_conversation
    from locomo_variants import CachedEmbedder

    import memstore
    import memstore.engine
    from memstore.embedding import load_embedder
    from memstore.engine import MemoryEngine

    # Memory ids are random, and sets of them order some float32 products and exact ties
    # (recall.py builds sets of ids): numbered ids plus one hash seed make two runs of one
    # tree agree bit for bit (with random ids, main differs from itself on ~1 in 760).
    numbers = itertools.count()
    memstore.engine.new_memory_id = lambda: f"mem_{next(numbers):024x}"  # type: ignore[attr-defined]
    samples = json.loads(data.read_text())
    embedder = CachedEmbedder(load_embedder(), cache)
    clock = SettableClock()
    answers: dict[str, Any] = {"memstore": str(Path(memstore.__file__).parent)}
    if postgres is not None:
        _pg_min_rows(*min_rows)
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp), postgres) as store:
        engine = MemoryEngine(store, embedder, clock=clock)
        engine.ensure_account(BENCH_ACCOUNT)
        sessions = [str(s.get("sample_id", f"conversation-{n}")) for n, s in enumerate(samples)]
        for sample, session in zip(samples, sessions, strict=True):
            store_conversation(engine, clock, sample, session)
        for n, sample in enumerate(samples):
            session, other = sessions[n], sessions[(n + 1) % len(sessions)]
            speaker = sample["conversation"]["speaker_a"]
            for i, qa in enumerate(sample["qa"]):
                if qa.get("category") not in CATEGORIES or not qa.get("evidence"):
                    continue
                q = qa["question"]
                ways: dict[str, dict[str, Any]] = {
                    "default": {"session": session, "limit": 10},
                    "deep": {"session": session, "limit": 50, "collapse": False},
                    "explain": {"session": session, "limit": 10, "explain": True},
                    "min_score": {"session": session, "limit": 10, "min_score": 0.5},
                    "two_sessions": {"session": [session, other], "limit": 10},
                    "filtered": {"session": session, "limit": 10, "filters": {"speaker": speaker}},
                    "everywhere": {"session": "*", "limit": 10},
                }
                for way, kwargs in ways.items():
                    hits = engine.recall(BENCH_ACCOUNT, q, charge=False, **kwargs)
                    answers[f"{session}#{i} {way}"] = [_hit(h) for h in hits]
    embedder.save()
    out.write_text(json.dumps(answers))


def _pg_min_rows(guess: int, floors: int) -> None:
    """PostgresStore's guess_min_rows and floors_min_rows defaults, where the tree has them
    (read when a store is made)."""
    import memstore.stores.postgres as postgres

    for name, rows in (("GUESS_MIN_ROWS", guess), ("FLOORS_MIN_ROWS", floors)):
        if hasattr(postgres, name):
            setattr(postgres, name, rows)


def _hit(h: Any) -> dict[str, Any]:
    """One result, named by its dia_id and its collapsed versions' (stable across runs)."""
    dia = {h.id: h.metadata["dia_id"]}
    why = None
    if h.why is not None:
        why = h.why.model_dump(mode="json")
        why["neighbor_of"] = why["neighbor_of"] is not None  # an id: random per run
    return {
        "dia_id": dia[h.id],
        "score": h.score,
        "similar": h.similar,
        "similar_ids": len(h.similar_ids),
        "why": why,
    }


def compare(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, list[str]]:
    """Per way, the questions whose answers differ."""
    differ: dict[str, list[str]] = {way: [] for way in WAYS}
    for key, answer in theirs.items():
        if key == "memstore":
            continue
        way = key.rsplit(" ", 1)[1]
        if not _same(mine.get(key), answer):
            differ[way].append(key)
    return differ


def _same(a: list[dict[str, Any]] | None, b: list[dict[str, Any]]) -> bool:
    if a is None or len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if abs(x["score"] - y["score"]) > TOLERANCE:
            return False
        if {**x, "score": 0} != {**y, "score": 0}:
            return False
    return True


def run_tree(tree: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """``dump`` in a subprocess importing memstore from ``tree``/src."""
    # Set iteration order (and with it the row order of some float32 products) follows
    # the hash seed: both trees run with the same one.
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "PYTHONHASHSEED": args.seed}
    command = [sys.executable, __file__, "--dump", str(out), "--data", str(args.data)]
    if args.postgres_url:
        command += ["--postgres-url", args.postgres_url]
        command += ["--pg-guess-min-rows", str(args.pg_guess_min_rows)]
        command += ["--pg-floors-min-rows", str(args.pg_floors_min_rows)]
    subprocess.run([*command, "--cache", str(args.cache)], env=env, check=True)
    answers: dict[str, Any] = json.loads(out.read_text())
    expected = str((tree / "src" / "memstore").resolve())
    assert answers["memstore"] == expected, f"imported {answers['memstore']}, not {expected}"
    return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--against", type=Path, default=Path("/work/main"), help="other tree")
    parser.add_argument("--tree", type=Path, default=ROOT, help="this tree (default: here)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/locomo-vectors.npz"))
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", default="0", help="PYTHONHASHSEED of both runs")
    parser.add_argument("--postgres", action="store_true", help="store in a throwaway pgserver")
    parser.add_argument("--pg-guess-min-rows", type=int, default=0)
    parser.add_argument("--pg-floors-min-rows", type=int, default=0)
    parser.add_argument("--postgres-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dump:
        min_rows = (args.pg_guess_min_rows, args.pg_floors_min_rows)
        dump(args.data, args.cache, args.dump, args.postgres_url, min_rows)
        return 0
    server = None
    if args.postgres:
        from locomo import pgserver_url

        args.postgres_url, server = pgserver_url()
    with tempfile.TemporaryDirectory() as tmp:
        theirs = run_tree(args.against.resolve(), args, Path(tmp) / "theirs.json")
        mine = run_tree(args.tree.resolve(), args, Path(tmp) / "mine.json")
    differ = compare(mine, theirs)
    questions = len(theirs) // len(WAYS)
    failed = False
    for way in WAYS:
        same = questions - len(differ[way])
        print(f"{way:<13} {same}/{questions} identical")
        for key in differ[way][:5]:
            print(f"    differs: {key}")
            for name, answers in (("theirs", theirs), ("mine", mine)):
                shown = " ".join(f"{h['dia_id']}:{h['score']}" for h in answers.get(key) or [])
                print(f"      {name}: {shown}")
        failed |= bool(differ[way])
    print(f"{args.tree} against {args.against}")
    print("reproduce: python bench/recall_identity.py " + shlex.join(argv or sys.argv[1:]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
