"""The ``memstore`` command: the SDK from the shell (local store or a server), plus the server."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from click.core import ParameterSource
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from memstore import __version__
from memstore.accounts import DEFAULT_ACCOUNT, DEFAULT_PLAN, PLANS
from memstore.errors import MemstoreError
from memstore.settings import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, Settings

if TYPE_CHECKING:
    from memstore.backend import RememberItem
    from memstore.client import Memstore


class CLIError(Exception):
    """A problem the user can fix, told in one line (no traceback)."""


class _Commands(TyperGroup):
    """Turns an expected failure into one line on stderr and exit status 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemstoreError as exc:
            _fail(f"({exc.code}) {exc.message}")
        except CLIError as exc:
            _fail(str(exc))
        except BrokenPipeError:
            raise  # output piped into `head`: click exits quietly
        except OSError as exc:
            _fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
        except (ValueError, sqlite3.Error) as exc:
            _fail(str(exc))


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"memstore {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Commands,
    help="Persistent memory for AI agents. Memory commands work on --data-dir, or on a server "
    "with --base-url/--api-key (or MEMSTORE_BASE_URL/MEMSTORE_API_KEY).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Persistent memory for AI agents."""


def _settings(ctx: click.Context) -> Settings:
    """The MEMSTORE_* settings, read once per command line; a bad value is a one-line error."""
    meta = ctx.meta
    if "memstore.settings" not in meta:
        try:
            meta["memstore.settings"] = Settings()
        except ValidationError as exc:
            raise CLIError(
                "; ".join(
                    f"MEMSTORE_{'_'.join(map(str, e['loc'])).upper()}={e['input']!r}: {e['msg']}"
                    for e in exc.errors()
                )
            ) from None
    settings: Settings = meta["memstore.settings"]
    return settings


def _from_settings(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """An option left out takes its setting (memstore.settings) when its MEMSTORE_* variable
    is set, so the CLI, the server and the SDK read the environment alike."""
    if param.name is None or ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT:
        return value
    settings = _settings(ctx)
    if param.name not in settings.model_fields_set:
        return value
    setting = getattr(settings, param.name)
    return Path(setting) if isinstance(value, Path) else setting


def setting_option(*decls: str, help: str, **options: Any) -> Any:
    """A typer option whose default is the setting of the same name (``MEMSTORE_<NAME>``)."""
    name = decls[0].lstrip("-").replace("-", "_")
    if name not in Settings.model_fields:
        raise ValueError(f"{decls[0]} is not a setting of memstore.settings.Settings")
    env = f"MEMSTORE_{name.upper()}"
    return typer.Option(*decls, callback=_from_settings, help=f"{help} (${env})", **options)


DataDir = Annotated[
    Path,
    setting_option("--data-dir", help="Directory of the embedded store.", show_default=True),
]
DEFAULT_DIR = Path(DEFAULT_DATA_DIR)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
AccountName = Annotated[
    str | None,
    setting_option(
        "--account",
        metavar="NAME",
        help=f"Account of the embedded store (default {DEFAULT_ACCOUNT!r}, as the server's "
        "first key).",
    ),
]
BaseUrl = Annotated[
    str | None,
    setting_option(
        "--base-url",
        metavar="URL",
        help=f"A memstore server to use instead of --data-dir (default port {DEFAULT_PORT}).",
    ),
]
ApiKey = Annotated[
    str | None,
    setting_option(
        "--api-key",
        metavar="KEY",
        help="API key for the server; with it alone the server is "
        f"http://{DEFAULT_HOST}:{DEFAULT_PORT}.",
    ),
]
Sessions = Annotated[
    list[str] | None,
    typer.Option("--session", metavar="NAME", help="Session to search (repeatable; '*' for all)."),
]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _check_data_dir(data_dir: Path, must_exist: bool) -> None:
    """Refuse a --data-dir that is a file, and (for commands that only read) one without a
    store, rather than silently creating an empty store there."""
    from memstore.stores.sqlite import DB_FILENAME

    if data_dir.exists() and not data_dir.is_dir():
        raise CLIError(f"--data-dir {data_dir} is a file, not a directory")
    if must_exist and not (data_dir / DB_FILENAME).is_file():
        raise CLIError(
            f"no memstore store in {data_dir} (no {DB_FILENAME}); check --data-dir or "
            "MEMSTORE_DATA_DIR (memstore remember or memstore serve creates one)"
        )


@contextmanager
def _opening(data_dir: Path) -> Iterator[None]:
    """Name the file when the database in ``data_dir`` cannot be read."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        from memstore.stores.sqlite import DB_FILENAME

        raise CLIError(f"{data_dir / DB_FILENAME} is not a memstore database ({exc})") from None


def _engine(data_dir: Path, must_exist: bool = False) -> Any:
    from memstore.client import open_local_engine

    _check_data_dir(data_dir, must_exist)
    with _opening(data_dir):
        return open_local_engine(data_dir)


def _memstore(
    data_dir: Path,
    base_url: str | None,
    api_key: str | None,
    must_exist: bool = False,
    account: str | None = None,
) -> Memstore:
    """The SDK over a server (when --base-url or --api-key is given) or over --data-dir."""
    from memstore.client import Memstore

    if base_url or api_key:
        return Memstore(api_key=api_key, base_url=base_url)
    _check_data_dir(data_dir, must_exist)
    with _opening(data_dir):
        return Memstore.local(data_dir, account=account)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


def _memories(count: int) -> str:
    return "1 memory" if count == 1 else f"{count} memories"


def _memory_table(*columns: str) -> Table:
    """A table whose ``id`` column is never cut, so ids can be pasted into forget/get."""
    table = Table()
    for name in columns:
        if name == "id":
            table.add_column(name, no_wrap=True, min_width=28)
        elif name == "content":
            table.add_column(name, ratio=1)
        else:
            table.add_column(name)
    return table


IncludeSuperseded = Annotated[
    bool, typer.Option("--include-superseded", help="Also superseded memories.")
]
AsOfTime = Annotated[
    str | None,
    typer.Option(
        metavar="TIME", help="Memories current at TIME (ISO 8601, UTC if no zone, or epoch)."
    ),
]


def _with_status(memory: Any) -> str:
    """The content, marked when the memory is no longer current."""
    if memory.superseded_at is None:
        return str(memory.content)
    return f"{memory.content} (superseded {memory.superseded_at:%Y-%m-%d %H:%M})"


def _metadata(value: str | None) -> dict[str, Any] | None:
    try:
        return json.loads(value) if value else None
    except json.JSONDecodeError as exc:
        raise CLIError(f"--metadata is not JSON: {exc.msg}") from None


@app.command()
def remember(
    content: Annotated[str, typer.Argument(metavar="TEXT", help="Text to remember.")],
    session: Annotated[
        str | None, typer.Option(metavar="NAME", help="Session (omit for shared).")
    ] = None,
    metadata: Annotated[
        str | None, typer.Option(metavar="JSON", help="Flat JSON object, e.g. '{\"k\": 1}'.")
    ] = None,
    ttl: Annotated[
        int | None, typer.Option(metavar="SECONDS", help="Seconds until the memory expires.")
    ] = None,
    supersedes: Annotated[
        list[str] | None,
        typer.Option(metavar="ID", help="A memory this one replaces (repeatable)."),
    ] = None,
    on_similar: Annotated[
        str | None,
        typer.Option(
            metavar="keep|supersede|skip",
            help="What to do with a near-duplicate current memory of the session.",
        ),
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Remember TEXT."""
    meta = _metadata(metadata)
    with _memstore(data_dir, base_url, api_key, account=account) as ms:
        item: RememberItem = {"content": content, "session": session, "metadata": meta, "ttl": ttl}
        if supersedes or on_similar:
            item.update(supersedes=supersedes, on_similar=on_similar)
        result = ms.remember_many([item])[0]
    if as_json:
        _print_json(result.model_dump(mode="json"))
    else:
        state = "already known" if result.deduplicated else "remembered"
        console.print(f"{state}: {result.memory.id}")


@app.command()
def recall(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for.")],
    session: Sessions = None,
    limit: Annotated[int, typer.Option(metavar="N", help="How many memories at most.")] = 5,
    min_score: Annotated[
        float | None, typer.Option(metavar="SCORE", help="Drop results scoring below (0-1).")
    ] = None,
    include_superseded: IncludeSuperseded = False,
    as_of: AsOfTime = None,
    collapse: Annotated[
        bool, typer.Option(help="Show near-duplicates of one session once, as the newest.")
    ] = True,
    explain: Annotated[bool, typer.Option(help="Say why each memory came back.")] = False,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Recall the memories most relevant to QUERY, best first."""
    sessions = session[0] if session and len(session) == 1 else session
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        found = ms.recall(
            query,
            sessions,
            limit,
            min_score,
            include_superseded=include_superseded,
            as_of=as_of,
            collapse=collapse,
            explain=explain,
        )
    if as_json:
        _print_json({"memories": [m.model_dump(mode="json") for m in found]})
        return
    table = _memory_table("score", "content", "session", "id")
    for m in found:
        content = _with_status(m) + (f"  (+{m.similar} similar)" if m.similar else "")
        if m.why is not None:
            content += "\n" + m.why.describe()
        table.add_row(f"{m.score:.3f}", content, m.session or "", m.id)
    console.print(table)


@app.command("list")
def list_(
    session: Annotated[
        str, typer.Option(metavar="NAME", help="Session to list ('*' for all).")
    ] = "*",
    limit: Annotated[int, typer.Option(metavar="N", help="Page size.")] = 50,
    cursor: Annotated[
        str | None, typer.Option(metavar="CURSOR", help="Cursor from the previous page.")
    ] = None,
    include_superseded: IncludeSuperseded = False,
    as_of: AsOfTime = None,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """List memories, newest first."""
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        page = ms.list(
            session or None, limit, cursor, include_superseded=include_superseded, as_of=as_of
        )
    if as_json:
        _print_json(page.model_dump(mode="json"))
        return
    table = _memory_table("id", "session", "created", "content")
    for m in page.memories:
        created = m.created_at.strftime("%Y-%m-%d %H:%M")
        table.add_row(m.id, m.session or "", created, _with_status(m))
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


MemoryId = Annotated[str, typer.Argument(metavar="ID", help="A memory id (mem_...).")]


@app.command()
def get(
    memory_id: MemoryId,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Print one memory as JSON."""
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        _print_json(ms.get(memory_id).model_dump(mode="json"))


@app.command()
def update(
    memory_id: MemoryId,
    content: Annotated[str | None, typer.Option(metavar="TEXT", help="New content.")] = None,
    metadata: Annotated[
        str | None, typer.Option(metavar="JSON", help="New metadata (replaces it).")
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace a memory's content and/or metadata."""
    if content is None and metadata is None:
        raise CLIError("give --content, --metadata or both")
    meta = _metadata(metadata)
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        memory = ms.update(memory_id, content=content, metadata=meta)
    if as_json:
        _print_json(memory.model_dump(mode="json"))
    else:
        console.print(f"updated {memory.id}")


@app.command()
def forget(
    memory_id: MemoryId,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Forget one memory by id."""
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        ms.forget(memory_id)
    console.print(f"forgot {memory_id}")


@app.command("forget-session")
def forget_session(
    session: Annotated[
        str | None, typer.Argument(metavar="SESSION", help="The session to forget.")
    ] = None,
    shared: Annotated[
        bool, typer.Option("--shared", help="Forget the shared session instead.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Forget every memory of SESSION, or of the shared session with --shared."""
    if (session is None) == (not shared):
        raise typer.BadParameter("give a SESSION or --shared (one of them)")
    where = "the shared session" if shared else f"session {session!r}"
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        if not yes:
            typer.confirm(f"Forget every memory of {where}?", abort=True)
        count = ms.forget_session(session)
    console.print(f"forgot {_memories(count)} of {where}")


@app.command()
def invalidate(
    memory_id: MemoryId,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Mark a memory no longer current (it is kept, with when); idempotent."""
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        memory = ms.invalidate(memory_id)
    if as_json:
        _print_json(memory.model_dump(mode="json"))
    else:
        console.print(f"invalidated {memory.id} (since {memory.superseded_at:%Y-%m-%d %H:%M:%S})")


@app.command()
def stats(
    session: Annotated[str | None, typer.Option(metavar="NAME", help="Only this session.")] = None,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Hygiene figures per session: memories, current, superseded, expired and purged,
    near-duplicate groups, never recalled."""
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        found = ms.stats(session)
    if as_json:
        _print_json(found.model_dump(mode="json"))
        return
    names = ("memories", "current", "superseded", "expired_purged", "near_duplicate_groups")
    headers = ("memories", "current", "superseded", "purged", "near-dup groups")
    table = Table("session", *headers, "never recalled")
    for s in [*found.sessions, found]:
        label = "(all)" if s is found else (s.session or "(shared)")
        table.add_row(label, *(str(getattr(s, n)) for n in names), str(s.never_recalled))
    console.print(table)
    if not found.near_duplicates_complete:
        console.print("near-duplicate groups counted on the newest memories only (bounded)")


@app.command()
def sessions(
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """List sessions with their memory counts."""
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        found = ms.sessions()
    if as_json:
        _print_json([s.model_dump() for s in found])
        return
    table = Table("session", "memories")
    for s in found:
        table.add_row(s.session or "(shared)", str(s.count))
    console.print(table)


@app.command()
def usage(
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """This month's operations: used, limit and when the count resets."""
    with _memstore(data_dir, base_url, api_key, must_exist=True, account=account) as ms:
        used = ms.usage()
    if as_json:
        _print_json(used.model_dump(mode="json"))
        return
    limit = "no limit" if used.ops_limit is None else f"of {used.ops_limit:,}"
    console.print(
        f"{used.ops_used:,} operations {limit} in {used.period} (plan {used.plan}); "
        f"resets {used.resets_at:%Y-%m-%d %H:%M} UTC"
    )


AllFlag = Annotated[
    bool,
    typer.Option("--all", help="Every account, with its plan and API keys (a whole-store backup)."),
]


def _account_id(engine: Any, account: str | None) -> str:
    return str(engine.accounts.ensure(account or DEFAULT_ACCOUNT).id)


@app.command("export")
def export_(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="JSONL file to write ('-' for stdout).")
    ],
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    everything: AllFlag = False,
) -> None:
    """Export one account's memories (with vectors) as JSON Lines, or the whole store (--all)."""
    from memstore.transfer import export_jsonl, export_store

    engine = _engine(data_dir, must_exist=True)

    def write(out: Any) -> int:
        if everything:
            return export_store(engine, out)
        return export_jsonl(engine, _account_id(engine, account), out)

    if str(file) == "-":
        write(sys.stdout)
        return
    with open(file, "w", encoding="utf-8") as out:
        count = write(out)
    err_console.print(f"exported {_memories(count)} to {file}")


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="JSONL file written by export (or lines with a content field)."
        ),
    ],
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
    everything: AllFlag = False,
) -> None:
    """Import memories; vectors are reused when the embedder matches, else re-embedded.
    With --all, a whole-store export: each memory goes back to its account, with the keys."""
    from rich.progress import Progress

    from memstore.transfer import import_jsonl, import_store

    with open(file, encoding="utf-8") as f:
        total = max(0, sum(1 for line in f if line.strip()) - 1)
    engine = _engine(data_dir)
    with open(file, encoding="utf-8") as f, Progress(console=err_console) as progress:
        task = progress.add_task("importing", total=total or None)

        def advance(n: int) -> None:
            progress.advance(task, n)

        if everything:
            imported, skipped, reembedded = import_store(engine, f, advance)
        else:
            account_id = _account_id(engine, account)
            imported, skipped, reembedded = import_jsonl(engine, account_id, f, advance)
    how = "re-embedded" if reembedded else "vectors reused"
    err_console.print(f"imported {imported}, skipped {skipped} duplicates ({how})")


@app.command("backup")
def backup(
    dest: Annotated[Path, typer.Argument(help="New directory to write the copy into.")],
    data_dir: DataDir = DEFAULT_DIR,
) -> None:
    """Copy the store while it runs (SQLite online backup); restore with --data-dir DEST."""
    from memstore.backup import backup_sqlite

    target = backup_sqlite(data_dir, dest)
    err_console.print(
        f"backed up {data_dir} to {target} (integrity ok); "
        f"serve it with: memstore serve --data-dir {dest}"
    )


DatabaseUrl = Annotated[
    str | None,
    setting_option(
        "--database-url", help="postgresql://... to use PostgreSQL + pgvector instead of SQLite."
    ),
]


def _store(data_dir: Path, database_url: str | None) -> Any:
    from memstore.stores import open_store

    if not database_url:
        _check_data_dir(data_dir, must_exist=False)
    with _opening(data_dir):
        return open_store(data_dir=str(data_dir), database_url=database_url)


@contextmanager
def _accounts(data_dir: Path, database_url: str | None) -> Iterator[Any]:
    """The accounts module over the store (no embedder needed), closed afterwards."""
    from memstore.accounts import Accounts

    store = _store(data_dir, database_url)
    try:
        yield Accounts(store)
    finally:
        store.close()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="TCP port.")] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    data_dir: DataDir = DEFAULT_DIR,
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    # -- operations (docs/operations.md)
    metrics: Annotated[bool, setting_option("--metrics", help="Serve GET /metrics.")] = False,
    log_format: Annotated[
        str, setting_option("--log-format", help="text, or json (one object a line).")
    ] = "text",
    log_user_data: Annotated[
        bool,
        setting_option(
            "--log-user-data",
            help="Debug: log full URLs (query text, session names) and client addresses.",
        ),
    ] = False,
) -> None:
    """Run the HTTP API. On a store with no API keys, creates one and prints it once."""
    import os

    import uvicorn

    from memstore.server.observability import log_config

    try:
        logging_config = log_config(log_format, log_level)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-format") from None
    with _accounts(data_dir, database_url) as accounts:
        if not accounts.has_keys():
            issued = accounts.create_key(DEFAULT_ACCOUNT, DEFAULT_PLAN, admin=True)
            err_console.print(
                "No API keys yet; created an admin key for account 'default' (shown only once):\n"
                f"  {issued.key}\n"
                "Use it as 'Authorization: Bearer <key>'. More: memstore keys create --help"
            )
        else:
            where = "--database-url URL" if database_url else f"--data-dir {data_dir}"
            typer.echo(
                "This store has API keys already. Lost yours? "
                f"'memstore keys create {where}' makes another ('memstore keys list' shows them).",
                err=True,
            )
    os.environ["MEMSTORE_DATA_DIR"] = str(data_dir)
    if database_url:
        os.environ["MEMSTORE_DATABASE_URL"] = database_url
    os.environ.update(
        MEMSTORE_METRICS=str(metrics).lower(),
        MEMSTORE_LOG_FORMAT=log_format,
        MEMSTORE_LOG_USER_DATA=str(log_user_data).lower(),
    )
    from memstore.server.protocol import MAX_HEAD_BYTES, server_protocol
    from memstore.settings import Settings

    settings = Settings()
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
            # Slow and hostile clients (docs/limits.md): header timeout and JSON 400s in the
            # protocol class, body timeout in the app, and these.
            http=server_protocol(),  # httptools if installed, else h11
            timeout_keep_alive=max(1, int(settings.keep_alive_seconds)),
            limit_concurrency=settings.limit_concurrency or None,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
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
        str | None, setting_option("--base-url", help="A memstore server to use instead.")
    ] = None,
    api_key: Annotated[
        str | None, setting_option("--api-key", help="API key for --base-url.")
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
    account: AccountName = None,
) -> None:
    """Run an MCP server over stdio: the embedded store, or a server with --base-url/--api-key."""
    from memstore.mcp_server import run_stdio

    client = _memstore(data_dir, base_url, api_key, account=account)
    try:
        run_stdio(client, session)
    finally:
        client.close()


_PLANS_HELP = ", ".join(
    f"{name} ({cap:,} ops/month)" if cap else name for name, cap in PLANS.items()
)
keys_app = typer.Typer(help="Manage API keys (only their hashes are stored).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="Account name (created if new).")] = DEFAULT_ACCOUNT,
    plan: Annotated[str, typer.Option(help=_PLANS_HELP)] = DEFAULT_PLAN,
    admin: Annotated[
        bool, typer.Option("--admin", help="May also manage every key of the install.")
    ] = False,
    data_dir: DataDir = DEFAULT_DIR,
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key and print it once."""
    with _accounts(data_dir, database_url) as accounts:
        issued = accounts.create_key(account, plan, admin=admin)
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

    with _accounts(data_dir, database_url) as accounts:
        keys = accounts.list_keys()
    rows = [
        {
            "key_id": k.key_id,
            "prefix": k.prefix,
            "account": k.account,
            "plan": k.plan,
            "revoked": k.revoked,
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
    with _accounts(data_dir, database_url) as accounts:
        done = accounts.revoke_key(key)
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


if __name__ == "__main__":
    app()
