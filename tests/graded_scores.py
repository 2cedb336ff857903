"""A graded set for the shown score: memories of three kinds and queries of four grades.

Each case names one memory (by its index in MEMORIES) and a query:
- "own": the memory's own words (all its content terms the query uses are in it);
- "paraphrase": the same fact in other words;
- "topical": the memory's subject, but asking something it does not say;
- "unrelated": nothing to do with any memory here (its target is None).
The identical text of every memory is a fifth grade ("identical"), built by the tests.
"""

from __future__ import annotations

MEMORIES = [
    # agent run summaries
    "Competitor analysis complete: Acme Corp lacks API docs",
    "Research completed for project alpha: three vendors offer on-premise deployment",
    "Run 14 failed: the scraper hit a rate limit on the pricing page after 200 requests",
    "Draft blog post on vector databases written and sent to Dana for review",
    "Market sizing done: the European logistics software market is worth 4 billion euros",
    "Code review finished: the payment service needs retries around the bank API calls",
    "Weekly report generated from 312 support tickets; login problems were the top complaint",
    "Summarised the onboarding interviews: new users get lost in the settings page",
    "Translation of the user guide into German is finished and uploaded to the wiki",
    "Security scan found two outdated OpenSSL versions in the build images",
    # user facts
    "The user's name is Priya and she works as a data engineer in Toronto",
    "Priya is allergic to peanuts",
    "The user prefers short answers with code examples in Python",
    "Tom's daughter starts kindergarten in September",
    "The user's favourite football team is Arsenal",
    "Invoices must be sent to accounting@northwind.example before the 5th of each month",
    "The user runs Ubuntu 22.04 on a ThinkPad with 16 GB of memory",
    "Maria prefers tea over coffee in the morning",
    "The customer's contract renews on March 1 and includes 20 seats",
    "Our production database is PostgreSQL 15 hosted in Frankfurt",
    # conversation turns
    "Caroline: I went to a LGBTQ support group yesterday and it was so powerful",
    "Melanie: I painted a sunset over the lake last weekend, it came out better than I hoped",
    "John: I'm thinking about going back to school to study mechanical engineering",
    "Caroline: My grandmother gave me a necklace from Sweden when I was a kid",
    "Melanie: We took the kids camping in the mountains and saw a bear",
    "Jon: I lost my job at the bank, so I'm opening my own dance studio",
    "Gina: I launched an online clothing store last month and sales are picking up",
    "John: Running a marathon in under four hours has been my goal for years",
    "Melanie: I made coconut milk ice cream yesterday for the family",
    "Caroline: I'm planning to adopt a child once I finish my counseling certification",
]

# (grade, memory index or None, query)
CASES: list[tuple[str, int | None, str]] = [
    ("own", 0, "competitor analysis"),
    ("own", 0, "Acme Corp API docs"),
    ("own", 1, "vendors offer on-premise deployment"),
    ("own", 2, "scraper rate limit"),
    ("own", 3, "blog post on vector databases"),
    ("own", 4, "European logistics software market"),
    ("own", 5, "payment service retries"),
    ("own", 6, "support tickets login problems"),
    ("own", 8, "translation of the user guide into German"),
    ("own", 9, "outdated OpenSSL versions"),
    ("own", 10, "Priya data engineer Toronto"),
    ("own", 11, "Priya allergic to peanuts"),
    ("own", 13, "Tom's daughter kindergarten"),
    ("own", 14, "favourite football team"),
    ("own", 16, "Ubuntu ThinkPad memory"),
    ("own", 17, "Maria prefers tea"),
    ("own", 19, "production database PostgreSQL"),
    ("own", 20, "LGBTQ support group"),
    ("own", 22, "study mechanical engineering"),
    ("own", 24, "camping in the mountains"),
    ("own", 25, "Jon dance studio"),
    ("own", 28, "coconut milk ice cream"),
    ("paraphrase", 0, "which rival company is missing developer documentation?"),
    ("paraphrase", 2, "why did the crawler job stop working?"),
    ("paraphrase", 3, "article about embedding stores waiting for feedback"),
    ("paraphrase", 5, "what should change in the checkout code?"),
    ("paraphrase", 8, "is there a Deutsch version of the manual?"),
    ("paraphrase", 10, "where does the user live and what is her job?"),
    ("paraphrase", 11, "foods the user cannot eat"),
    ("paraphrase", 12, "how does the user like responses formatted?"),
    ("paraphrase", 14, "which soccer club does the user support?"),
    ("paraphrase", 17, "what does Maria like to drink at breakfast?"),
    ("paraphrase", 21, "what did Melanie create recently?"),
    ("paraphrase", 22, "what might John's degree be in?"),
    ("paraphrase", 24, "what wild animal did Melanie's family see on their trip?"),
    ("paraphrase", 25, "why did Jon start his own business?"),
    ("paraphrase", 29, "does Caroline want to become a parent?"),
    ("topical", 0, "how many employees does Acme Corp have?"),
    ("topical", 4, "who are the biggest logistics companies in Asia?"),
    ("topical", 11, "what is Priya's favourite restaurant?"),
    ("topical", 19, "how do we back up the production database?"),
    ("topical", 27, "what shoes does John run in?"),
    ("unrelated", None, "how do I repot an orchid?"),
    ("unrelated", None, "best recipe for sourdough bread"),
    ("unrelated", None, "what is the capital of Australia?"),
    ("unrelated", None, "explain the rules of cricket"),
    ("unrelated", None, "how far is the moon from the earth?"),
    ("unrelated", None, "symptoms of a broken wrist"),
]
