"""Every performance figure of the README in one run, printed as ONE markdown table.

    .venv/bin/python bench/report.py                 # 1k/10k/100k + PostgreSQL + load (long)
    .venv/bin/python bench/report.py --n 10000 --load-duration 20   # a quicker check

Runs, one after the other, each as its own process:

1. ``bench/latency.py`` at 1k, 10k ... ``--n`` memories in one session: the query embedding
   alone, memstore local and HTTP (cold and with the query vector cached), CrewAI's LanceDB
   storage and chromadb with the same vectors, and memstore over a throwaway pgserver (one
   session and 1% selectivity) up to ``--pg-max``;
2. ``bench/load.py``: 50 clients against one ``memstore serve`` over SQLite, with the
   embedder's own rate beside it (the ceiling of that mix on this machine);
3. ``bench/load.py --servers 3 --postgres``: the same clients over 3 servers sharing one
   PostgreSQL database.

The table carries the machine's load average before and after each part, and the command
that reproduces it; the README's Performance table is this output, pasted whole.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RECALL_BAR = 0.95  # as bench/latency.py: a peer is a rival only at recall@10 >= this


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_json(args: list[str]) -> dict[str, Any]:
    """Run a bench script (its progress on our stderr) and parse the JSON on its last line."""
    cmd = [sys.executable, *args]
    print("running:", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"{args[0]} printed no JSON (exit {out.returncode}):\n{out.stdout}")
    data: dict[str, Any] = json.loads(lines[-1])
    return data


def ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def fastest_peer(lv: dict[str, Any], peers: list[str]) -> str | None:
    """The peer with the lowest cold p50 among those whose recall@10 reaches the bar."""
    rivals = [p for p in peers if p in lv and lv[p]["recall_at_10"] >= RECALL_BAR]
    return min(rivals, key=lambda p: lv[p]["recall"]["p50"]) if rivals else None


def ratios(lv: dict[str, Any], path: str, best: str | None) -> str:
    """A cold recall's p50 over the query embedding alone and over the fastest rival."""
    p50 = lv[f"{path}_recall"]["p50"]
    embed = lv.get(f"query_embed_{path}", lv["query_embed"])  # the embeddings paired with it
    note = f"{p50 / embed['p50']:.2f}x embed"
    if best:
        note += f", {p50 / lv[best]['recall']['p50']:.2f}x {best}"
    return note


def latency_rows(levels: list[dict[str, Any]], peers: list[str]) -> list[list[str]]:
    """Table rows (memories, path, p50, p99, recall@10, note) of bench/latency.py's sizes."""
    rows: list[list[str]] = []
    for lv in levels:
        n = f"{lv['n']:,}"
        embed = lv["query_embed"]
        r10 = f"{lv['memstore_recall_at_10']:.3f}"
        best = fastest_peer(lv, peers)
        overhead = lv["http_recall_cached"]["p50"] - lv["local_recall_cached"]["p50"]
        rows += [
            [n, "query embedding alone", ms(embed["p50"]), ms(embed["p99"]), "", ""],
            [
                n,
                "memstore local, cold",
                ms(lv["local_recall"]["p50"]),
                ms(lv["local_recall"]["p99"]),
                r10,
                ratios(lv, "local", best),
            ],
            [
                n,
                "memstore local, cached q",
                ms(lv["local_recall_cached"]["p50"]),
                ms(lv["local_recall_cached"]["p99"]),
                "",
                "",
            ],
            [
                n,
                "memstore HTTP, cold",
                ms(lv["http_recall"]["p50"]),
                ms(lv["http_recall"]["p99"]),
                r10,
                ratios(lv, "http", best),
            ],
            [
                n,
                "memstore HTTP, cached q",
                ms(lv["http_recall_cached"]["p50"]),
                ms(lv["http_recall_cached"]["p99"]),
                "",
                f"HTTP overhead {overhead:+.2f} ms p50; server RSS {lv['server_rss_mb']:.0f} MB",
            ],
            [
                n,
                "memstore remember",
                "",
                "",
                "",
                f"{lv['local_remember_single_per_s']:.0f}/s one by one, "
                f"{lv['local_remember_batch_per_s']:.0f}/s batched (HTTP "
                f"{lv['http_remember_single_per_s']:.0f} / {lv['http_remember_batch_per_s']:.0f});"
                f" e5 alone {lv['passage_embed_per_s']:.0f} texts/s; one remember over "
                f"embedding its text: {lv['local_remember_single_over_embed_p50_ms']:+.1f} ms, "
                f"HTTP {lv['http_remember_single_over_embed_p50_ms']:+.1f} ms p50",
            ],
        ]
        for peer in peers:
            if peer in lv:
                p = lv[peer]
                rows.append(
                    [
                        n,
                        f"{peer} (embed + search)",
                        ms(p["recall"]["p50"]),
                        ms(p["recall"]["p99"]),
                        f"{p['recall_at_10']:.3f}",
                        f"search alone {ms(p['search']['p50'])} ms p50",
                    ]
                )
        for scope, label in (("one", "1 session"), ("1pct", "1% selectivity")):
            p = lv.get("postgres", {}).get(scope)
            if p:
                rows.append(
                    [
                        n,
                        f"memstore local on PostgreSQL, {label}, cold",
                        ms(p["recall"]["p50"]),
                        ms(p["recall"]["p99"]),
                        f"{p['recall_at_10']:.3f}",
                        f"cached q {ms(p['recall_cached']['p50'])} ms p50; "
                        f"dense alone {ms(p['search']['p50'])} ms",
                    ]
                )
        rows.append([n, "(load average)", "", "", "", f"{lv['load_before']} -> {lv['load_after']}"])
    return rows


def load_row(label: str, r: dict[str, Any]) -> list[str]:
    note = (
        f"{r['throughput_rps']:.1f} req/s, {r['errors']} errors; {r['embeddings_per_request']:.2f}"
        f" embeddings/request; server CPU {r.get('server_cpu_ms_per_request', 0):.1f} ms/request"
    )
    if r.get("cpu_bound_rps"):
        note += f" (+ {r['client_cpu_ms_per_request']:.1f} ms clients): CPU bound "
        note += f"{r['cpu_bound_rps']:.0f} req/s"
    if "embedder_texts_per_s" in r:
        note += (
            f"; e5 alone {r['embedder_cpu_ms_per_text']:.1f} ms CPU/text: embeddings alone "
            f"bound {r['embedder_bound_rps']:.0f} req/s"
        )
    if (steady := r.get("steady")) and steady["n"]:
        note += f"; after the first {r['warm_up_s']:g} s: p50 {steady['p50_ms']:.0f}"
        note += f" ms, p99 {steady['p99_ms']:.0f} ms"
        if batches := r["steady_by_kind"].get("remember batch of 5"):
            note += f" (batches of 5: p99 {batches['p99_ms']:.0f} ms)"
    note += f"; load {r['load']}"
    return ["50 clients", label, ms(r["p50_ms"]), ms(r["p99_ms"]), "", note]


def markdown(rows: list[list[str]]) -> str:
    head = ["memories", "what", "p50 ms", "p99 ms", "recall@10", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="largest size (1k, 10k ... up to it)")
    ap.add_argument("--queries", type=int, default=150, help="distinct queries per pass")
    ap.add_argument("--remember", type=int, default=100, help="texts per remember measurement")
    ap.add_argument("--singles", type=int, default=25, help="of those, remembered one by one")
    ap.add_argument("--pg-max", type=int, help="largest size on PostgreSQL (default: --n)")
    ap.add_argument("--load-duration", type=float, default=60.0, help="seconds per load run")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite and the peers only")
    args = ap.parse_args()
    command = "bench/report.py " + " ".join(sys.argv[1:])
    started, load_start = time.monotonic(), load_average()

    with tempfile.TemporaryDirectory(prefix="memstore-report-") as tmp:
        levels_path = Path(tmp) / "levels.json"
        latency = [
            "bench/latency.py",
            f"--n={args.n}",
            f"--queries={args.queries}",
            f"--remember={args.remember}",
            f"--singles={args.singles}",
            f"--levels-json={levels_path}",
            "--json",
        ]
        if not args.no_postgres:
            latency += ["--postgres", f"--pg-max={args.pg_max or args.n}"]
        summary = run_json(latency)
        measured = json.loads(levels_path.read_text())
    duration = f"--duration={args.load_duration:g}"
    load_sqlite = run_json(["bench/load.py", duration, "--embedder-rate", "--json"])
    load_pg = None
    if not args.no_postgres:
        load_pg = run_json(["bench/load.py", duration, "--servers=3", "--postgres", "--json"])

    rows = latency_rows(measured["levels"], measured["peers"])
    rows.append(load_row("load: 1 `memstore serve`, SQLite", load_sqlite))
    if load_pg is not None:
        rows.append(load_row("load: 3 `memstore serve`, one PostgreSQL", load_pg))
    minutes = (time.monotonic() - started) / 60
    print(
        f"\nmemstore performance, {summary['source']}; {summary['queries']} distinct queries per "
        f"pass; {os.cpu_count()} CPUs; load average {load_start} at the start, "
        f"{load_average()} at the end ({minutes:.0f} min)\n"
    )
    print(markdown(rows))
    print(f"\nreproduce: .venv/bin/python {command}")


if __name__ == "__main__":
    main()
