"""Memories written without an LLM: a crew run's summary and one task's note."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["clip", "summarize_run", "summarize_task"]

MAX_QUERY_CHARS = 4000  # the embedder reads ~512 tokens; the rest would only cost time
TASK_CHARS = 200
RESULT_CHARS = 1500

# What crewai hands ``Memory.extract_memories`` after a task, and after ``Agent.kickoff``.
_TASK_DUMP = re.compile(
    r"\ATask: (?P<task>.*?)\nAgent: (?P<agent>[^\n]*)\n"
    r"Expected result: .*?\nResult: (?P<result>.*)\Z",
    re.S,
)
_KICKOFF_DUMP = re.compile(
    r"\AInput: (?P<task>.*?)\nAgent: (?P<agent>[^\n]*)\nResult: (?P<result>.*)\Z", re.S
)


def clip(text: str, limit: int) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters with '…'."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def summarize_task(raw: str) -> str:
    """One self-contained memory of a task from crewai's dump of it: who did what, and the
    result, clipped. Text crewai did not format that way is clipped as it is."""
    match = _TASK_DUMP.match(raw) or _KICKOFF_DUMP.match(raw)
    if match is None:
        return clip(raw, TASK_CHARS + RESULT_CHARS)
    task, agent = clip(match["task"], TASK_CHARS), clip(match["agent"], 80)
    result = match["result"].rsplit("Final Answer:", 1)[-1]  # a ReAct answer's final part
    return f'Task "{task}" (by {agent}) → result: {clip(result, RESULT_CHARS)}'


def _tools_called(task_output: Any) -> list[str]:
    """Tool names an agent asked for in this task (ReAct text or native tool calls)."""
    names: list[str] = []
    for msg in getattr(task_output, "messages", None) or []:
        if msg.get("role") != "assistant":
            continue
        for call in msg.get("tool_calls") or []:
            fn = call.get("function", {}) if isinstance(call, dict) else {}
            if fn.get("name"):
                names.append(fn["name"])
        names += re.findall(r"^Action\s*:\s*(.+?)\s*$", msg.get("content") or "", re.M)
    return names


def summarize_run(task_outputs: list[Any], inputs: dict[str, Any] | None = None) -> str:
    """A short memory of a run, without an LLM: what was done, the result, what worked
    (tools that ran without failing) and what to avoid (tool failures)."""
    shown = {k: v for k, v in (inputs or {}).items() if not k.startswith("memstore_")}
    head = "Crew run" + (
        " for " + ", ".join(f"{k}={clip(str(v), 80)}" for k, v in shown.items()) if shown else ""
    )
    lines = [head + ".", "What was done:"]
    used: dict[str, int] = {}
    failures: list[str] = []
    for i, out in enumerate(task_outputs):
        task = clip(out.description.splitlines()[0] if out.description else out.name or "", 160)
        found = "" if i == len(task_outputs) - 1 else " → " + clip(out.raw or "(empty)", 300)
        lines.append(f"- {out.agent}: {task}{found}")
        for name in _tools_called(out):
            used[name] = used.get(name, 0) + 1
        for failure in getattr(out, "tool_failures", None) or []:
            failures.append(f"{failure.tool_name} failed: {clip(failure.message, 160)}")
    if task_outputs:
        lines.append("Result: " + clip(task_outputs[-1].raw or "(empty)", 800))
    failed = {f.split(" failed:")[0] for f in failures}
    worked = [f"{n} ({c}x)" for n, c in used.items() if n not in failed]
    if worked:
        lines.append("What worked: used " + ", ".join(worked) + ".")
    if failures:
        lines.append("What to avoid: " + "; ".join(failures) + ".")
    return "\n".join(lines)
