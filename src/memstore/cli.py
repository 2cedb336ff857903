"""The ``memstore`` command: the SDK's local mode from the shell, plus the server."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from memstore.errors import MemstoreError

app = typer.Typer(
    help="Persistent memory for AI agents. Local commands work on --data-dir directly.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="MEMSTORE_DATA_DIR",
        help="Directory of the embedded store.",
        show_default=True,
    ),
]
DEFAULT_DIR = Path("memstore-data")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _engine(data_dir: Path) -> Any:
    from memstore.client import open_local_engine

    return open_local_engine(data_dir)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


def _fail(exc: MemstoreError) -> None:
    err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
    raise typer.Exit(2)


def _run(fn: Any) -> Any:
    try:
        return fn()
    except MemstoreError as exc:
        _fail(exc)


@app.command()
def remember(
    content: Annotated[str, typer.Argument(help="Text to remember.")],
    session: Annotated[str | None, typer.Option(help="Session (omit for shared).")] = None,
    metadata: Annotated[
        str | None, typer.Option(help="Flat JSON object, e.g. '{\"k\": 1}'.")
    ] = None,
    ttl: Annotated[int | None, typer.Option(help="Seconds until the memory expires.")] = None,
    data_dir: DataDir = DEFAULT_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Remember TEXT."""
    from memstore.engine import LOCAL_ACCOUNT

    try:
        meta = json.loads(metadata) if metadata else None
    except json.JSONDecodeError as exc:
        err_console.print(f"[red]error[/red]: --metadata is not JSON: {exc.msg}")
        raise typer.Exit(2) from None
    engine = _engine(data_dir)
    result = _run(lambda: engine.remember(LOCAL_ACCOUNT, content, session, meta, ttl))
    if as_json:
        _print_json(result.model_dump(mode="json"))
    else:
        state = "already known" if result.deduplicated else "remembered"
        console.print(f"{state}: {result.memory.id}")


@app.command()
def recall(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    session: Annotated[
        list[str] | None, typer.Option(help="Session to search (repeatable; '*' for all).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many memories at most.")] = 5,
    min_score: Annotated[float | None, typer.Option(help="Drop results scoring below.")] = None,
    data_dir: DataDir = DEFAULT_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Recall the memories most relevant to QUERY, best first."""
    from memstore.engine import LOCAL_ACCOUNT

    engine = _engine(data_dir)
    sessions = session[0] if session and len(session) == 1 else session
    found = _run(lambda: engine.recall(LOCAL_ACCOUNT, query, sessions, limit, min_score))
    if as_json:
        _print_json({"memories": [m.model_dump(mode="json") for m in found]})
        return
    table = Table("score", "content", "session", "id")
    for m in found:
        table.add_row(f"{m.score:.3f}", m.content, m.session or "", m.id)
    console.print(table)


@app.command("list")
def list_(
    session: Annotated[str, typer.Option(help="Session to list ('*' for all).")] = "*",
    limit: Annotated[int, typer.Option(help="Page size.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Cursor from the previous page.")] = None,
    data_dir: DataDir = DEFAULT_DIR,
    as_json: JsonFlag = False,
) -> None:
    """List memories, newest first."""
    from memstore.engine import LOCAL_ACCOUNT

    engine = _engine(data_dir)
    page = _run(lambda: engine.list(LOCAL_ACCOUNT, session or None, limit, cursor))
    if as_json:
        _print_json(page.model_dump(mode="json"))
        return
    table = Table("id", "session", "created", "content")
    for m in page.memories:
        table.add_row(m.id, m.session or "", m.created_at.isoformat(timespec="seconds"), m.content)
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


@app.command()
def get(memory_id: str, data_dir: DataDir = DEFAULT_DIR) -> None:
    """Print one memory as JSON."""
    from memstore.engine import LOCAL_ACCOUNT

    engine = _engine(data_dir)
    _print_json(_run(lambda: engine.get(LOCAL_ACCOUNT, memory_id)).model_dump(mode="json"))


@app.command()
def forget(memory_id: str, data_dir: DataDir = DEFAULT_DIR) -> None:
    """Forget one memory by id."""
    from memstore.engine import LOCAL_ACCOUNT

    engine = _engine(data_dir)
    _run(lambda: engine.forget(LOCAL_ACCOUNT, memory_id))
    console.print(f"forgot {memory_id}")


@app.command("forget-session")
def forget_session(
    session: Annotated[str | None, typer.Argument(help="The session to forget.")] = None,
    shared: Annotated[
        bool, typer.Option("--shared", help="Forget the shared session instead.")
    ] = False,
    data_dir: DataDir = DEFAULT_DIR,
) -> None:
    """Forget every memory of SESSION, or of the shared session with --shared."""
    from memstore.engine import LOCAL_ACCOUNT

    if (session is None) == (not shared):
        raise typer.BadParameter("give a SESSION or --shared (one of them)")
    engine = _engine(data_dir)
    count = _run(lambda: engine.forget_session(LOCAL_ACCOUNT, session))
    where = "the shared session" if shared else f"session {session!r}"
    console.print(f"forgot {count} memories of {where}")


@app.command()
def sessions(data_dir: DataDir = DEFAULT_DIR, as_json: JsonFlag = False) -> None:
    """List sessions with their memory counts."""
    from memstore.engine import LOCAL_ACCOUNT

    found = _engine(data_dir).sessions(LOCAL_ACCOUNT)
    if as_json:
        _print_json([s.model_dump() for s in found])
        return
    table = Table("session", "memories")
    for s in found:
        table.add_row(s.session or "(shared)", str(s.count))
    console.print(table)


@app.command("export")
def export_(
    file: Annotated[Path, typer.Argument(help="JSONL file to write ('-' for stdout).")],
    data_dir: DataDir = DEFAULT_DIR,
) -> None:
    """Export every memory (with its vector) as JSON Lines."""
    from memstore.engine import LOCAL_ACCOUNT
    from memstore.transfer import export_jsonl

    engine = _engine(data_dir)
    if str(file) == "-":
        export_jsonl(engine, LOCAL_ACCOUNT, sys.stdout)
        return
    with open(file, "w", encoding="utf-8") as out:
        count = export_jsonl(engine, LOCAL_ACCOUNT, out)
    err_console.print(f"exported {count} memories to {file}")


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="JSONL file written by export (or {content} lines).")
    ],
    data_dir: DataDir = DEFAULT_DIR,
) -> None:
    """Import memories; vectors are reused when the embedder matches, else re-embedded."""
    from rich.progress import Progress

    from memstore.engine import LOCAL_ACCOUNT
    from memstore.transfer import import_jsonl

    engine = _engine(data_dir)
    with open(file, encoding="utf-8") as f:
        total = max(0, sum(1 for line in f if line.strip()) - 1)
    with open(file, encoding="utf-8") as f, Progress(console=err_console) as progress:
        task = progress.add_task("importing", total=total or None)
        imported, skipped, reembedded = _run(
            lambda: import_jsonl(engine, LOCAL_ACCOUNT, f, lambda n: progress.advance(task, n))
        )
    how = "re-embedded" if reembedded else "vectors reused"
    err_console.print(f"imported {imported}, skipped {skipped} duplicates ({how})")


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="MEMSTORE_DATABASE_URL",
        help="postgresql://... to use PostgreSQL + pgvector instead of SQLite.",
    ),
]


def _store(data_dir: Path, database_url: str | None) -> Any:
    from memstore.stores import open_store

    return open_store(data_dir=str(data_dir), database_url=database_url)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8420,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    data_dir: DataDir = DEFAULT_DIR,
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    # -- operations (docs/operations.md)
    metrics: Annotated[
        bool, typer.Option("--metrics", envvar="MEMSTORE_METRICS", help="Serve GET /metrics.")
    ] = False,
    log_format: Annotated[
        str, typer.Option(envvar="MEMSTORE_LOG_FORMAT", help="text, or json (one object a line).")
    ] = "text",
    log_user_data: Annotated[
        bool,
        typer.Option(
            "--log-user-data",
            envvar="MEMSTORE_LOG_USER_DATA",
            help="Debug: log full URLs (query text, session names) and client addresses.",
        ),
    ] = False,
) -> None:
    """Run the HTTP API. On a store with no API keys, creates one and prints it once."""
    import os

    import uvicorn

    from memstore.server.auth import issue_key
    from memstore.server.observability import log_config

    try:
        logging_config = log_config(log_format, log_level)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-format") from None
    store = _store(data_dir, database_url)
    try:
        if not store.list_keys():
            issued = issue_key(store, "default", "unlimited", admin=True)
            err_console.print(
                "No API keys yet; created an admin key for account 'default' (shown only once):\n"
                f"  {issued.key}\n"
                "Use it as 'Authorization: Bearer <key>'. More: memstore keys create --help"
            )
    finally:
        store.close()
    os.environ["MEMSTORE_DATA_DIR"] = str(data_dir)
    if database_url:
        os.environ["MEMSTORE_DATABASE_URL"] = database_url
    os.environ.update(
        MEMSTORE_METRICS=str(metrics).lower(),
        MEMSTORE_LOG_FORMAT=log_format,
        MEMSTORE_LOG_USER_DATA=str(log_user_data).lower(),
    )
    with _metrics_dir(metrics and workers > 1):
        uvicorn.run(
            "memstore.server.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            log_config=logging_config,
            access_log=False,  # ours (memstore.access) names routes, not URLs with user data
            timeout_graceful_shutdown=10,
        )


@contextmanager
def _metrics_dir(multiprocess: bool) -> Iterator[None]:
    """With several workers, a fresh PROMETHEUS_MULTIPROC_DIR for their metric files,
    removed on exit."""
    if not multiprocess:
        yield
        return
    import os
    import shutil
    import tempfile

    from memstore.metrics import MULTIPROC_ENV

    path = tempfile.mkdtemp(prefix="memstore-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


@app.command("mcp")
def mcp_(
    session: Annotated[
        str | None, typer.Option(help="Default session for the tools (the model may pass one).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", envvar="MEMSTORE_BASE_URL", help="A memstore server to use instead."
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="MEMSTORE_API_KEY", help="API key for --base-url."),
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
) -> None:
    """Run an MCP server over stdio: the embedded store, or a server with --base-url/--api-key."""
    from memstore import Memstore
    from memstore.mcp_server import run_stdio

    if base_url or api_key:
        client = Memstore(api_key=api_key, base_url=base_url)
    else:
        client = _run(lambda: Memstore.local(data_dir))
    try:
        run_stdio(client, session)
    finally:
        client.close()


keys_app = typer.Typer(help="Manage API keys (only their hashes are stored).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="Account name (created if new).")] = "default",
    plan: Annotated[str, typer.Option(help="free (1,000 ops/month), pro or unlimited.")] = (
        "unlimited"
    ),
    admin: Annotated[
        bool, typer.Option("--admin", help="May also manage every key of the install.")
    ] = False,
    data_dir: DataDir = DEFAULT_DIR,
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key and print it once."""
    from memstore.server.auth import issue_key

    store = _store(data_dir, database_url)
    try:
        issued = _run(lambda: issue_key(store, account, plan, admin=admin))
    finally:
        store.close()
    if as_json:
        _print_json(
            {
                "key": issued.key,
                "key_id": issued.key_id,
                "account_id": issued.account_id,
                "account": issued.account_name,
                "plan": issued.plan,
                "admin": issued.admin,
            }
        )
    else:
        role = "admin key" if issued.admin else "key"
        console.print(
            f"{issued.key}\n({role} {issued.key_id}, account {issued.account_name}, "
            f"plan {issued.plan}; this is the only time the key is shown)"
        )


@keys_app.command("list")
def keys_list(
    data_dir: DataDir = DEFAULT_DIR, database_url: DatabaseUrl = None, as_json: JsonFlag = False
) -> None:
    """List keys (id, prefix, account, admin, last use, state); never the keys themselves."""
    from datetime import UTC, datetime

    store = _store(data_dir, database_url)
    try:
        accounts = {a.id: a for a in store.list_accounts()}
        keys = store.list_keys()
    finally:
        store.close()
    rows = [
        {
            "key_id": k.id,
            "prefix": k.prefix,
            "account": accounts[k.account_id].name,
            "plan": accounts[k.account_id].plan,
            "revoked": k.revoked_at is not None,
            "admin": k.admin,
            "last_used_at": None
            if k.last_used_at is None
            else datetime.fromtimestamp(k.last_used_at, UTC).isoformat(timespec="seconds"),
        }
        for k in keys
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("key id", "prefix", "account", "plan", "admin", "last used", "state")
    for r in rows:
        table.add_row(
            r["key_id"],
            r["prefix"] + "…",
            r["account"],
            r["plan"],
            "admin" if r["admin"] else "",
            r["last_used_at"] or "never",
            "revoked" if r["revoked"] else "active",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id (key_...) or the prefix shown by list.")],
    data_dir: DataDir = DEFAULT_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key; requests with it fail at once."""
    import time

    store = _store(data_dir, database_url)
    try:
        done = store.revoke_key(key, time.time())
    finally:
        store.close()
    if not done:
        err_console.print(f"[red]error[/red]: no active key {key!r}")
        raise typer.Exit(2)
    console.print(f"revoked {key}")


admin_app = typer.Typer(help="Operate an install: figures across accounts.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")


@admin_app.command("stats")
def admin_stats(
    data_dir: DataDir = DEFAULT_DIR, database_url: DatabaseUrl = None, as_json: JsonFlag = False
) -> None:
    """Per account: plan, ops this month, memories, sessions, last activity; install totals."""
    import time

    from memstore.install_stats import install_stats

    store = _store(data_dir, database_url)
    try:
        stats = install_stats(store, time.time())
    finally:
        store.close()
    if as_json:
        _print_json(stats.model_dump(mode="json"))
        return
    table = Table(
        "account", "id", "plan", f"ops {stats.period}", "memories", "sessions", "last active"
    )
    for a in stats.accounts:
        limit = "" if a.ops_limit is None else f" / {a.ops_limit:,}"
        last = a.last_activity_at.isoformat(timespec="seconds") if a.last_activity_at else "-"
        table.add_row(
            a.name,
            a.id,
            a.plan,
            f"{a.ops_used:,}{limit}",
            f"{a.memories:,}",
            f"{a.sessions:,}",
            last,
        )
    console.print(table)
    t = stats.totals
    console.print(
        f"{t.accounts} accounts, {t.memories:,} memories in {t.sessions:,} sessions, "
        f"{t.ops_used:,} ops in {stats.period}; database {t.database_bytes / 2**20:,.1f} MiB"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
