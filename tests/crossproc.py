"""Writes to a SQLite file from another process, for tests that an in-memory index of this
process catches up with them (``write_elsewhere``)."""

from __future__ import annotations

import json
import subprocess
import sys

WRITER = """
import json, sys
import numpy as np
from memstore.stores.sqlite import SQLiteStore
from memstore.models import content_hash
from memstore.stores.base import MemoryRow
store = SQLiteStore(sys.argv[1])
for op, *args in json.loads(sys.argv[2]):
    if op == "remember":
        account, session, content, expires, vector, metadata = (args + [None, None])[:6]
        r = MemoryRow("mem_" + content_hash(account + session + content)[:16], account, session,
                      content, content_hash(content), metadata or {}, 1.0, 1.0, expires)
        store.insert([r], np.array([vector or [1.0] * 4], dtype=np.float32))
    elif op == "update":
        account, memory_id, changes = args
        vector = changes.pop("vector", None)
        if "content" in changes:
            changes["content_hash"] = content_hash(changes["content"])
        old = store.get(account, memory_id, 0.0)
        new = MemoryRow(**{**old.__dict__, **changes})
        store.update(new, None if vector is None else np.array(vector, dtype=np.float32))
    elif op == "forget":
        store.delete(*args)
    elif op == "forget_session":
        store.delete_session(*args)
store.close()
"""


def write_elsewhere(path: str, ops: list[list[object]]) -> None:
    """Run ``ops`` through a store of another process over the SQLite file at ``path``:

    - ``["remember", account, session, content, expires_at, vector?, metadata?]`` (the id
      follows from account, session and content; the vector defaults to four ones);
    - ``["update", account, memory_id, {"content"?, "expires_at"?, "vector"?}]``;
    - ``["forget", account, memory_id]``, ``["forget_session", account, session]``.
    """
    subprocess.run([sys.executable, "-c", WRITER, path, json.dumps(ops)], check=True)
