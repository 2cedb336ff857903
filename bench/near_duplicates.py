"""Where should ``remember(on_similar=...)`` draw the line? Cosines of e5 vectors for pairs
that should supersede (two runs of the same crew on the same inputs: the summaries the
CrewAI kickoff helper writes, with results that differ from run to run as an LLM's do) and
pairs that should not (distinct facts of one project, including a fact and its correction,
and runs of the same crew on other inputs). Prints each group's cosines and, for
thresholds around the chosen one, how many pairs of each kind would be superseded.

    python bench/near_duplicates.py [--json]

No timing here: the figures do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shlex
import sys

import numpy as np

from memstore.embedding import load_embedder
from memstore.similar import NEAR_DUPLICATE_COSINE

TOPICS = {
    "Acme Corp": ("API documentation", "pricing", "enterprise support"),
    "Globex": ("mobile app", "onboarding", "integrations"),
    "Initech": ("reporting", "data export", "SSO"),
    "Umbrella Health": ("patient portal", "compliance", "scheduling"),
    "Stark Logistics": ("fleet tracking", "route planning", "billing"),
    "Wayne Retail": ("checkout", "loyalty program", "inventory sync"),
}
OPENINGS = [
    "{company} leads on {a} but lags on {b}",
    "{company} is strongest in {a}; {b} is its weak spot",
    "Main finding: {company}'s {a} is ahead of peers, while {b} trails",
    "{company} wins deals on {a}; customers complain about {b}",
]
CLOSINGS = [
    "Recommended focus for next quarter: {c}.",
    "Suggested next step: investigate {c} further.",
    "The strategist proposes a campaign around {c}.",
    "Open question for the next run: how {c} affects churn.",
]


def run_summary(company: str, rng: random.Random) -> str:
    """A summary as summarize_run writes it, for one run of the research crew on
    ``company``; wording and findings vary between runs as an LLM's answers do."""
    a, b, c = rng.sample(TOPICS[company], 3)
    finding = rng.choice(OPENINGS).format(company=company, a=a, b=b)
    reviewed = rng.randint(3, 9)
    return "\n".join(
        [
            f"Crew run for topic={company}.",
            "What was done:",
            f"- Senior Researcher: Research the competitors of {company} → reviewed "
            f"{reviewed} competitors; {finding}.",
            f"- Strategist: Write a go-to-market plan against {company}",
            f"Result: {finding}. {rng.choice(CLOSINGS).format(c=c)}",
            f"What worked: used search ({rng.randint(1, 4)}x).",
        ]
    )


FACTS = [
    "Acme Corp lacks API docs",
    "Acme Corp shipped API docs in March",
    "Acme Corp raised its prices by 10% in April",
    "Acme Corp's CEO is Jane Park",
    "Acme Corp opened an office in Berlin",
    "Acme Corp's API has a rate limit of 100 requests per minute",
    "The client prefers weekly reports in French",
    "The client prefers monthly reports in English",
    "Our budget for the Acme campaign is 40,000 EUR",
    "Our budget for the Acme campaign was cut to 25,000 EUR",
    "Globex's mobile app crashes on Android 14",
    "Globex fixed the Android 14 crash in version 5.2",
    "The launch date moved from May 3 to June 14",
    "The launch date is May 3",
    "Initech uses Okta for SSO",
    "Initech switched from Okta to Azure AD",
]


def pairs(rng: random.Random) -> dict[str, list[tuple[str, str]]]:
    same_run = []
    for company in TOPICS:
        runs = [run_summary(company, rng) for _ in range(4)]
        same_run += list(itertools.combinations(runs, 2))
    other_inputs = [
        (run_summary(x, rng), run_summary(y, rng)) for x, y in itertools.combinations(TOPICS, 2)
    ]
    facts = list(itertools.combinations(FACTS, 2))
    return {
        "same crew, same inputs (should supersede)": same_run,
        "same crew, other inputs (should not)": other_inputs,
        "distinct facts of one project (should not)": facts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    embedder = load_embedder()
    groups = pairs(random.Random(args.seed))
    cosines: dict[str, np.ndarray] = {}
    for name, found in groups.items():
        left = embedder.embed_documents([a for a, _ in found])
        right = embedder.embed_documents([b for _, b in found])
        cosines[name] = np.einsum("ij,ij->i", left, right)
    thresholds = [0.90, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97]
    report = {
        "command": "python bench/near_duplicates.py " + shlex.join(sys.argv[1:]),
        "embedder": embedder.name,
        "chosen": NEAR_DUPLICATE_COSINE,
        "groups": {
            name: {
                "pairs": len(c),
                "min": round(float(c.min()), 4),
                "median": round(float(np.median(c)), 4),
                "max": round(float(c.max()), 4),
                "at_or_above": {str(t): int((c >= t).sum()) for t in thresholds},
            }
            for name, c in cosines.items()
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"embedder {report['embedder']}; chosen threshold {NEAR_DUPLICATE_COSINE}")
    head = f"{'pairs':<46} {'n':>4} {'min':>6} {'median':>6} {'max':>6}  "
    print(head + " ".join(f">={t:.2f}" for t in thresholds))
    for name, g in report["groups"].items():
        counts = " ".join(f"{g['at_or_above'][str(t)]:>6}" for t in thresholds)
        print(
            f"{name:<46} {g['pairs']:>4} {g['min']:>6.3f} {g['median']:>6.3f} "
            f"{g['max']:>6.3f}  {counts}"
        )
    facts = groups["distinct facts of one project (should not)"]
    closest = np.argsort(-cosines["distinct facts of one project (should not)"])[:3]
    for i in closest:
        c = cosines["distinct facts of one project (should not)"][i]
        print(f"closest facts: {c:.3f}  {facts[i][0]!r} / {facts[i][1]!r}")
    print(f"reproduce: {report['command']}")


if __name__ == "__main__":
    main()
