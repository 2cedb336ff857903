"""Run-log scenario: does recall show distinct things, and the newest version of each?

A project session as the seed pattern fills it: after every crew run a summary of it
("Crew run for topic=... What was done: ... Result: ..."), for several goals over many
weeks, the wording, dates and figures changing from run to run, plus distinct facts. Each
goal is asked for (a paraphrase of it) and each fact too; recall runs with collapse on and
off, through the real default engine (SQLite store, e5 embedder). Reports:

- distinct@5: distinct items (a goal's runs count as one item, each fact as one) in the top 5,
  over all queries and over the goal queries alone;
- newest@1: share of goal queries whose best-ranked version of the goal is its newest run;
- goal hit@5 / fact hit@5: share of queries whose goal (any run) / fact is in the top 5;
- the cosines of runs of one goal with each other, and of different items, to show where
  collapse's threshold (memstore.collapse.SIMILAR_COSINE) sits.

Deterministic (seeded generator, a settable clock):

    python bench/runlog.py [--goals 6] [--runs 15] [--facts 30] [--seed 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from memstore.collapse import SIMILAR_COSINE
from memstore.embedding import load_embedder
from memstore.engine import MemoryEngine
from memstore.stores.sqlite import SQLiteStore

ACCOUNT = "bench"
SESSION = "project_alpha"
DAY = 86400.0
START = 1_767_225_600.0  # 2026-01-01 UTC

# (inputs of the run, what the research found, how the goal is asked for later)
GOALS = [
    (
        "topic=competitor analysis of Acme Corp",
        "Acme Corp {x} API documentation",
        "what did we learn about Acme Corp as a competitor",
    ),
    (
        "topic=pricing of our team plan",
        "the team plan is priced {n} below the median",
        "how should we price the team plan",
    ),
    (
        "topic=churn among enterprise customers",
        "enterprise churn is {p}% this quarter",
        "why are enterprise customers churning",
    ),
    (
        "topic=hiring a senior backend engineer",
        "{n} candidates passed the system design round",
        "status of the backend engineer hiring",
    ),
    (
        "topic=SOC 2 audit readiness",
        "{n} controls still lack evidence for the auditor",
        "are we ready for the SOC 2 audit",
    ),
    (
        "topic=onboarding funnel drop-off",
        "{p}% of new sign-ups leave at the invite step",
        "where do new users drop off during onboarding",
    ),
    (
        "topic=database migration to PostgreSQL",
        "{n} tables are migrated, replication lag {p} s",
        "progress of the move to PostgreSQL",
    ),
    (
        "topic=conference talk proposal",
        "the abstract is {n} words and needs a demo",
        "how is the conference talk proposal going",
    ),
]
STATES = ["still lacks", "has partial", "now publishes", "updated its", "deprecated its"]
# The crew and its tasks are the same every run (memstore's summarize_run writes the head
# and the task lines); what its agents wrote changes wording, figures and dates each time.
OPENERS = [
    "Crew run for {inputs}.",
    "Crew run for {inputs}, {date}.",
    "Crew run for {inputs} (run {run}).",
]
STEPS = [
    "What was done:\n- Researcher: gather sources on {topic} → {sources} sources read, "
    "{finding}\n- Analyst: summarise the findings for the strategist",
    "What was done:\n- Researcher: look up recent material on {topic} → found {sources} "
    "relevant pages; {finding}\n- Writer: draft the brief",
    "What was done:\n- Researcher: collect evidence about {topic} → {finding} "
    "(from {sources} sources)\n- Strategist: recommend next steps",
]
RESULTS = [
    "Result: {finding}. Recommended next step: {step}.",
    "Result: as of {date}, {finding}; next: {step}.",
    "Result: {finding}. The team should {step}.",
]
NEXT_STEPS = [
    "review again next week",
    "share the brief with sales",
    "ask the owner for figures",
    "open a ticket for follow-up",
    "compare with last month's numbers",
]
FACTS = [
    "The staging database is backed up every night at 02:00 UTC.",
    "Maria owns the billing service and is on call on Tuesdays.",
    "Our brand colour is teal #0f766e; never use red in charts.",
    "The API rate limit for free accounts is 60 requests per minute.",
    "Customer Globex asked for an on-premise install in Q3.",
    "Deploys are frozen during the last week of each quarter.",
    "The mobile app supports iOS 16 and newer only.",
    "Legal approved the new terms of service on March 3.",
    "The support inbox is support@example.com, answered within 4 hours.",
    "We use Stripe for payments and Postmark for transactional email.",
    "The design system lives in the ui-kit repository.",
    "Office Wi-Fi password changes every first Monday of the month.",
    "The CEO prefers one-page memos over slide decks.",
    "Kubernetes clusters run in eu-west-1 and us-east-2.",
    "Invoices are issued on the 1st and due in 30 days.",
    "The data warehouse refreshes every six hours.",
    "Feature flags are managed in LaunchDarkly.",
    "The marketing site is built with Astro and deployed on Netlify.",
    "Support tickets tagged P1 page the on-call engineer.",
    "Our SLA promises 99.9% monthly uptime for paid plans.",
    "The German translation is maintained by an agency in Berlin.",
    "Quarterly planning happens in the second week of each quarter.",
    "Error budgets are reviewed every Friday.",
    "Sales uses HubSpot; engineering uses Linear for tickets.",
    "The mascot is an owl named Mnemo.",
    "New hires get a laptop budget of 2,000 euros.",
    "The public roadmap is updated monthly on the website.",
    "Passwords must be at least 12 characters long.",
    "The analytics events schema is versioned in the events repo.",
    "Our largest customer by revenue is Initech.",
]
FACT_QUERIES = [
    "when is the staging database backed up",
    "who owns billing",
    "what is our brand colour",
    "free plan rate limit",
    "what did Globex ask for",
    "when are deploys frozen",
    "which iOS versions does the app support",
    "when were the terms of service approved",
    "support email address",
    "payment provider",
    "where is the design system",
    "when does the Wi-Fi password change",
    "how does the CEO like documents",
    "where do our clusters run",
    "when are invoices issued",
    "how often does the warehouse refresh",
    "feature flag tool",
    "how is the marketing site built",
    "what pages on-call",
    "uptime SLA",
    "who translates into German",
    "when is quarterly planning",
    "when are error budgets reviewed",
    "which CRM does sales use",
    "what is the mascot",
    "laptop budget for new hires",
    "how often is the roadmap updated",
    "password length policy",
    "where is the events schema",
    "largest customer",
]


def run_summary(rng: random.Random, goal: int, run: int, when: float) -> str:
    inputs, finding, _ = GOALS[goal]
    topic = inputs.split("=", 1)[1]
    date = time.strftime("%Y-%m-%d", time.gmtime(when))
    found = finding.format(x=rng.choice(STATES), n=rng.randint(2, 40), p=rng.randint(3, 45))
    fill = {
        "inputs": inputs,
        "run": run + 1,
        "date": date,
        "topic": topic,
        "sources": rng.randint(4, 30),
        "finding": found,
        "step": rng.choice(NEXT_STEPS),
    }
    parts = [rng.choice(OPENERS), rng.choice(STEPS), rng.choice(RESULTS)]
    return "\n".join(p.format(**fill) for p in parts)


def build(rng: random.Random, goals: int, runs: int, facts: int) -> list[tuple[str, str, float]]:
    """(item, text, created_at) in time order: item is 'goal:N' or 'fact:N'."""
    events: list[tuple[str, str, float]] = []
    for g in range(goals):
        for r in range(runs):
            when = START + (r * 3 + rng.random() * 2) * DAY + g * 3600
            events.append((f"goal:{g}", run_summary(rng, g, r, when), when))
    for f in range(facts):
        events.append((f"fact:{f}", FACTS[f], START + rng.random() * runs * 3 * DAY))
    return sorted(events, key=lambda e: e[2])


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def cosine_bands(vectors: np.ndarray, items: list[str]) -> dict[str, float]:
    """Cosines between runs of one goal, and between different items."""
    sims = vectors @ vectors.T
    same, other = [], []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (same if items[i] == items[j] and items[i].startswith("goal") else other).append(
                sims[i, j]
            )
    return {
        "same_goal_min": float(np.min(same)),
        "same_goal_p10": float(np.percentile(same, 10)),
        "same_goal_median": float(np.median(same)),
        "different_max": float(np.max(other)),
        "different_p99": float(np.percentile(other, 99)),
        "threshold": SIMILAR_COSINE,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    events = build(rng, args.goals, args.runs, args.facts)
    clock = Clock()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore.open_dir(Path(tmp))
        engine = MemoryEngine(store, load_embedder(), clock=clock)
        engine.ensure_account(ACCOUNT)
        item_of: dict[str, str] = {}
        newest: dict[str, str] = {}
        for item, text, when in events:
            clock.now = when
            memory = engine.remember(ACCOUNT, text, session=SESSION).memory
            item_of[memory.id] = item
            newest[item] = memory.id
        clock.now = events[-1][2] + DAY
        ids = list(item_of)
        vectors = store.vectors(ACCOUNT, ids)
        out["cosines"] = cosine_bands(
            np.stack([vectors[i] for i in ids]), [item_of[i] for i in ids]
        )
        queries = [(f"goal:{g}", GOALS[g][2]) for g in range(args.goals)]
        queries += [(f"fact:{f}", FACT_QUERIES[f]) for f in range(args.facts)]
        for collapse in (True, False):
            distinct, goal_distinct, newest_first, goal_hit, fact_hit = [], [], [], [], []
            for item, query in queries:
                found = engine.recall(
                    ACCOUNT, query, session=SESSION, limit=5, collapse=collapse, charge=False
                )
                shown = [item_of[m.id] for m in found]
                distinct.append(len(set(shown)))
                hit = item in shown
                (goal_hit if item.startswith("goal") else fact_hit).append(hit)
                if item.startswith("goal"):
                    goal_distinct.append(len(set(shown)))
                    first = next((m.id for m in found if item_of[m.id] == item), None)
                    newest_first.append(first == newest[item])
            out["on" if collapse else "off"] = {
                "distinct@5": float(np.mean(distinct)),
                "goal_distinct@5": float(np.mean(goal_distinct)),
                "newest@1": float(np.mean(newest_first)),
                "goal_hit@5": float(np.mean(goal_hit)),
                "fact_hit@5": float(np.mean(fact_hit)) if fact_hit else None,
            }
        store.close()
    out["memories"] = len(events)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--goals", type=int, default=6, choices=range(1, len(GOALS) + 1))
    parser.add_argument("--runs", type=int, default=15, help="runs (summaries) per goal")
    parser.add_argument("--facts", type=int, default=30, choices=range(0, len(FACTS) + 1))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in ["bench/runlog.py", *sys.argv[1:]])
    result = measure(args)
    print(
        f"{result['memories']} memories in one session: {args.goals} goals x {args.runs} runs "
        f"+ {args.facts} facts (seed {args.seed})"
    )
    print(
        f"{'collapse':<10}{'distinct@5':>12}{'(goal q)':>10}{'newest@1':>10}"
        f"{'goal hit@5':>12}{'fact hit@5':>12}"
    )
    for mode in ("on", "off"):
        r = result[mode]
        fact = "-" if r["fact_hit@5"] is None else f"{r['fact_hit@5']:.3f}"
        print(
            f"{mode:<10}{r['distinct@5']:>12.2f}{r['goal_distinct@5']:>10.2f}{r['newest@1']:>10.3f}"
            f"{r['goal_hit@5']:>12.3f}{fact:>12}"
        )
    c = result["cosines"]
    print(
        f"cosines: runs of one goal min {c['same_goal_min']:.3f} p10 {c['same_goal_p10']:.3f} "
        f"median {c['same_goal_median']:.3f}; different items max {c['different_max']:.3f} "
        f"p99 {c['different_p99']:.3f}; threshold {c['threshold']}"
    )
    print(f"reproduce: {command}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
