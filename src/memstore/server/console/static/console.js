// memstore console: one static page over the /v1 API (no framework, no build, no network
// beyond this server). Every value from the server is put into the page as text (textContent,
// attributes), never parsed as HTML: memories are agent output and may be hostile.
"use strict";

const KEY = "memstore.key"; // sessionStorage: gone when the tab closes; never in a URL
const PAGE = 20;
const main = document.getElementById("main");
const statusBox = document.getElementById("status");
let me = null; // GET /v1/me of the signed-in key
let flash = null; // a message to show on the next page, after navigating

function go(hash, message) {
  flash = message;
  if (location.hash === hash) route();
  else location.hash = hash;
}

// -- DOM helpers: h("tag", {attr: value}, ...children); strings become text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function show(title, ...children) {
  const heading = h("h1", { tabindex: "-1" }, title);
  main.replaceChildren(heading, ...children);
  document.title = `${title} · memstore console`;
  heading.focus();
}

function say(message, kind) {
  statusBox.replaceChildren(message ? h("p", { class: kind || "info" }, message) : "");
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
const time = (iso) => (iso ? h("time", { datetime: iso, title: iso }, when(iso)) : "—");
const sessionName = (s) => (s === null || s === undefined ? "(shared)" : s);
const sessionHref = (s) => (s === null || s === undefined ? "#/s" : `#/s/${encodeURIComponent(s)}`);

// -- the API
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, { params, body, raw } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of params || []) url.searchParams.append(name, value);
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (raw && response.ok) return response;
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const data = isJson ? await response.json() : await response.text();
  if (!response.ok) {
    const err = (data && data.error) || {};
    const failure = new ApiError(response.status, err.code, err.message || `HTTP ${response.status}`);
    if (response.status === 401 && me) signOut(`Signed out: ${failure.message}`);
    throw failure;
  }
  return data;
}

// -- sign in and out
function signInView(message) {
  document.getElementById("nav").hidden = true;
  const input = h("input", {
    type: "password", id: "key", name: "key", autocomplete: "off", required: true,
    placeholder: "am_live_…", spellcheck: "false",
  });
  const form = h("form", { class: "card", id: "sign-in" },
    h("label", { for: "key" }, "API key"), input,
    h("p", { class: "hint" },
      "Kept in this tab only (sessionStorage) and sent as a Bearer header; ",
      "`memstore serve` prints the first key, `memstore keys create` makes more."),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    try {
      await start();
    } catch (err) {
      sessionStorage.removeItem(KEY);
      say(err.message, "error");
      input.focus();
    }
  });
  show("Sign in", form);
  say(message || "", message ? "error" : "info");
  input.focus();
}

async function start() {
  me = await api("GET", "/v1/me");
  document.getElementById("nav").hidden = false;
  document.getElementById("nav-keys").hidden = !me.admin;
  document.getElementById("who").textContent = `${me.account} · ${me.plan}${me.admin ? " · admin" : ""}`;
  say("");
  if (!location.hash || location.hash === "#/") location.hash = "#/sessions";
  else route();
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  me = null;
  history.replaceState(null, "", location.pathname);
  signInView(message);
}

// -- confirmation dialog (native <dialog>: modal, Esc cancels, focus stays inside)
function confirmDialog(text, okLabel) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel || "Forget";
  dialog.returnValue = "cancel";
  dialog.showModal();
  document.getElementById("confirm-cancel").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// -- pages
async function sessionsPage() {
  const { sessions } = await api("GET", "/v1/sessions");
  if (!sessions.some((s) => s.session === null)) sessions.unshift({ session: null, count: 0, last_write: null });
  const rows = sessions.map((s) =>
    h("tr", {},
      h("td", {}, h("a", { href: sessionHref(s.session) }, sessionName(s.session))),
      h("td", { class: "num" }, s.count),
      h("td", {}, time(s.last_write))));
  show("Sessions",
    table(["Session", "Memories", "Last write"], rows),
    sessions.length > 1 || sessions[0].count
      ? ""
      : h("p", {}, "No memories yet. ", h("a", { href: "#/add" }, "Add one"), " or remember from an agent."));
}

function table(headings, rows) {
  return h("div", { class: "scroll" },
    h("table", {}, h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)));
}

function memoryItem(m, extra) {
  return h("li", { class: "memory" },
    h("a", { href: `#/m/${encodeURIComponent(m.id)}`, class: "content" }, m.content),
    h("div", { class: "meta" },
      extra || "",
      h("a", { href: sessionHref(m.session) }, sessionName(m.session)), " · ",
      time(m.created_at),
      Object.keys(m.metadata || {}).length ? ` · ${JSON.stringify(m.metadata)}` : ""));
}

async function sessionPage(session) {
  const params = session === null ? [] : [["session", session]];
  const list = h("ol", { class: "memories" });
  const more = h("button", { type: "button" }, "Older memories");
  let cursor = null;
  let total = 0;
  async function load() {
    const page = await api("GET", "/v1/memory", {
      params: [...params, ["limit", PAGE], ...(cursor ? [["cursor", cursor]] : [])],
    });
    page.memories.forEach((m) => list.append(memoryItem(m)));
    total += page.memories.length;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (!total) list.replaceWith(h("p", {}, "This session has no memories."));
  }
  more.addEventListener("click", () => load().catch(fail));
  const forget = h("button", { type: "button", class: "danger", id: "forget-session" }, "Forget this session…");
  forget.addEventListener("click", async () => {
    const { sessions } = await api("GET", "/v1/sessions");
    const found = sessions.find((s) => (s.session ?? null) === session);
    const count = found ? found.count : 0;
    const ok = await confirmDialog(
      `Forget all ${count} memories of the session ${sessionName(session)}? This cannot be undone.`,
      `Forget ${count} memories`);
    if (!ok) return;
    const query = session === null ? [["shared", "true"]] : [["session", session]];
    const done = await api("DELETE", "/v1/memory", { params: query });
    go("#/sessions", `Forgot ${done.deleted} memories of ${sessionName(session)}.`);
  });
  show(`Session ${sessionName(session)}`,
    h("div", { class: "actions" },
      h("a", { href: "#/search", class: "button" }, "Search"),
      h("a", { href: `#/add${session === null ? "" : `/${encodeURIComponent(session)}`}`, class: "button" }, "Add a memory here"),
      forget),
    list, more);
  await load();
}

function parseMetadata(text) {
  if (!text.trim()) return {};
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(0, "invalid_request", `metadata is not JSON: ${err.message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(0, "invalid_request", "metadata must be a JSON object, e.g. {\"kind\": \"docs\"}");
  }
  return value;
}

async function memoryPage(id) {
  const m = await api("GET", `/v1/memory/${encodeURIComponent(id)}`);
  const content = h("textarea", { id: "edit-content", name: "content", rows: 6, required: true });
  content.value = m.content;
  const metadata = h("textarea", { id: "edit-metadata", name: "metadata", rows: 3, spellcheck: "false" });
  metadata.value = JSON.stringify(m.metadata || {}, null, 1);
  const form = h("form", { class: "card", id: "edit" },
    h("h2", {}, "Edit"),
    h("label", { for: "edit-content" }, "Content"), content,
    h("label", { for: "edit-metadata" }, "Metadata (flat JSON object; replaces the old one)"), metadata,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { content: content.value, metadata: parseMetadata(metadata.value) };
    await api("PATCH", `/v1/memory/${encodeURIComponent(id)}`, { body });
    await memoryPage(id);
    say("Saved.");
  });
  const forget = h("button", { type: "button", class: "danger", id: "forget" }, "Forget this memory…");
  forget.addEventListener("click", async () => {
    if (!(await confirmDialog(`Forget this memory of ${sessionName(m.session)}? This cannot be undone.`))) return;
    await api("DELETE", `/v1/memory/${encodeURIComponent(id)}`);
    go(sessionHref(m.session), "Forgotten.");
  });
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Session"), h("dd", {}, h("a", { href: sessionHref(m.session) }, sessionName(m.session))),
    h("dt", {}, "Id"), h("dd", {}, h("code", {}, m.id)),
    h("dt", {}, "Created"), h("dd", {}, time(m.created_at)),
    h("dt", {}, "Updated"), h("dd", {}, time(m.updated_at)),
    h("dt", {}, "Expires"), h("dd", {}, m.expires_at ? time(m.expires_at) : "never"));
  const metaRows = Object.entries(m.metadata || {}).map(([k, v]) =>
    h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, JSON.stringify(v))));
  show("Memory",
    h("pre", { class: "content", id: "memory-content" }, m.content),
    facts,
    metaRows.length ? table(["Metadata key", "Value"], metaRows) : h("p", { class: "hint" }, "No metadata."),
    form,
    h("div", { class: "actions" }, forget));
}

function filterRow() {
  const row = h("div", { class: "filter" },
    h("input", { name: "filter-key", "aria-label": "Metadata key", placeholder: "key" }),
    h("input", { name: "filter-value", "aria-label": "Metadata value", placeholder: "value (JSON numbers, true/false/null are typed)" }));
  const remove = h("button", { type: "button", "aria-label": "Remove this filter" }, "×");
  remove.addEventListener("click", () => row.remove());
  row.append(remove);
  return row;
}

function filterValue(text) {
  try {
    const value = JSON.parse(text);
    if (value === null || ["number", "boolean", "string"].includes(typeof value)) return value;
  } catch (_) { /* a plain string */ }
  return text;
}

async function searchPage() {
  const { sessions } = await api("GET", "/v1/sessions");
  const query = h("input", { id: "q", name: "q", type: "search", required: true, placeholder: "What to look for" });
  const boxes = sessions.map((s, i) =>
    h("label", { class: "check" },
      h("input", { type: "checkbox", name: "session", value: i }), sessionName(s.session)));
  const filters = h("div", { id: "filters" });
  const addFilter = h("button", { type: "button" }, "Add a metadata filter");
  addFilter.addEventListener("click", () => {
    const row = filterRow();
    filters.append(row);
    row.querySelector("input").focus();
  });
  const results = h("div", { id: "results" });
  const form = h("form", { class: "card", id: "search" },
    h("label", { for: "q" }, "Query"), query,
    h("fieldset", {}, h("legend", {}, "Sessions (none ticked: all)"), boxes),
    h("fieldset", {}, h("legend", {}, "Metadata filters (exact match)"), filters, addFilter),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll("input[name=session]:checked")].map((b) => sessions[b.value].session);
    const where = {};
    for (const row of filters.querySelectorAll(".filter")) {
      const [key, value] = row.querySelectorAll("input");
      if (key.value.trim()) where[key.value.trim()] = filterValue(value.value);
    }
    const body = { query: query.value, session: chosen.length ? chosen : "*", limit: 20, explain: true };
    if (Object.keys(where).length) body.filters = where;
    const found = await api("POST", "/v1/memory/recall", { body });
    results.replaceChildren(
      h("h2", {}, `${found.memories.length} result${found.memories.length === 1 ? "" : "s"}`),
      h("ol", { class: "memories" }, found.memories.map((m) =>
        memoryItem(m, [h("span", { class: "score", title: "score in [0, 1]: see docs/ranking.md" }, m.score.toFixed(3)), " · "]))),
    );
    found.memories.forEach((m, i) => {
      const item = results.querySelectorAll("li.memory")[i];
      if (m.why) item.append(whyLine(m.why));
      if (m.similar) item.append(similarList(m));
    });
  });
  show("Search", form, results);
  query.focus();
}

// Why recall returned a memory (explain=true): the parts of its rank, see docs/memory-over-time.md.
function whyLine(why) {
  const parts = [];
  if (why.cosine !== null) parts.push(`cosine ${why.cosine.toFixed(2)}`);
  if (why.keyword_rank !== null) {
    parts.push(`keywords ${why.keywords.length ? why.keywords.join(", ") : "—"} (#${why.keyword_rank})`);
  }
  if (why.neighbor_of) parts.push(h("a", { href: `#/m/${encodeURIComponent(why.neighbor_of)}` }, "next to a better match"));
  if (why.period) parts.push(`created in ${why.period.start.slice(0, 10)} – ${why.period.end.slice(0, 10)}`);
  if (why.similar) parts.push(`${why.similar} similar collapsed`);
  const joined = parts.flatMap((part, i) => (i ? [" · ", part] : [part]));
  return h("div", { class: "why" }, "why: ", ...joined);
}

// The older near-duplicates collapsed into this memory, as links.
function similarList(m) {
  return h("details", { class: "similar" },
    h("summary", {}, `${m.similar} similar older version${m.similar === 1 ? "" : "s"}`),
    h("ul", {}, m.similar_ids.map((id) => h("li", {}, h("a", { href: `#/m/${encodeURIComponent(id)}` }, id)))));
}

async function addPage(session) {
  const { sessions } = await api("GET", "/v1/sessions");
  const content = h("textarea", { id: "add-content", name: "content", rows: 5, required: true });
  const sessionInput = h("input", { id: "add-session", name: "session", list: "known-sessions", placeholder: "empty: the shared session" });
  sessionInput.value = session || "";
  const metadata = h("textarea", { id: "add-metadata", name: "metadata", rows: 2, spellcheck: "false", placeholder: "{\"kind\": \"docs\"}" });
  const ttl = h("input", { id: "add-ttl", name: "ttl", type: "number", min: "1", step: "1", placeholder: "never expires" });
  const form = h("form", { class: "card", id: "add" },
    h("label", { for: "add-content" }, "Content"), content,
    h("label", { for: "add-session" }, "Session"), sessionInput,
    h("datalist", { id: "known-sessions" }, sessions.filter((s) => s.session).map((s) => h("option", { value: s.session }))),
    h("label", { for: "add-metadata" }, "Metadata (flat JSON object)"), metadata,
    h("label", { for: "add-ttl" }, "Expires after (seconds)"), ttl,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Remember")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { content: content.value, session: sessionInput.value.trim() || null, metadata: parseMetadata(metadata.value) };
    if (ttl.value) body.ttl = Number(ttl.value);
    const stored = await api("POST", "/v1/memory/remember", { body });
    go(`#/m/${encodeURIComponent(stored.id)}`,
      stored.deduplicated ? "Already remembered: this session has that content." : "Remembered.");
  });
  show("Add a memory", form);
  content.focus();
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

function dayChart(usage) {
  const [year, month] = usage.period.split("-").map(Number);
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const ops = new Map(usage.days.map((d) => [Number(d.day.slice(8, 10)), d.ops]));
  const top = Math.max(1, ...ops.values());
  const width = 20 * days;
  const chart = svg("svg", { viewBox: `0 0 ${width} 130`, class: "chart", role: "img", "aria-labelledby": "chart-title" });
  chart.append(svg("title", { id: "chart-title" }, `Operations per day in ${usage.period} (UTC); most in one day: ${top}`));
  for (let day = 1; day <= days; day++) {
    const n = ops.get(day) || 0;
    const height = Math.round((n / top) * 100);
    const bar = svg("rect", { x: (day - 1) * 20 + 3, y: 105 - height, width: 14, height: Math.max(height, n ? 1 : 0), class: "bar" });
    bar.append(svg("title", {}, `${usage.period}-${String(day).padStart(2, "0")}: ${n} operations`));
    chart.append(bar);
    if (day === 1 || day % 5 === 0) chart.append(svg("text", { x: (day - 1) * 20 + 10, y: 122, class: "axis" }, day));
  }
  chart.append(svg("line", { x1: 0, y1: 105.5, x2: width, y2: 105.5, class: "baseline" }));
  return chart;
}

async function usagePage() {
  const [usage, daily] = await Promise.all([api("GET", "/v1/usage"), api("GET", "/v1/usage/daily")]);
  const cap = usage.ops_limit;
  const summary = h("p", { id: "usage-summary", class: "big" },
    cap === null
      ? `${usage.ops_used.toLocaleString()} operations this month (${usage.plan} plan: no cap)`
      : `${usage.ops_used.toLocaleString()} of ${cap.toLocaleString()} operations used this month (${usage.plan} plan)`);
  const rows = daily.days.map((d) => h("tr", {}, h("td", {}, d.day), h("td", { class: "num" }, d.ops)));
  show("Usage",
    summary,
    cap === null ? "" : h("progress", { max: cap, value: usage.ops_used, "aria-label": "operations used" }),
    h("p", {}, "Resets ", time(usage.resets_at), ` (${usage.period} is counted in UTC).`),
    h("h2", {}, "Operations per day"),
    dayChart(daily),
    h("details", {}, h("summary", {}, "As a table"), table(["Day (UTC)", "Operations"], rows)));
}

async function keysPage() {
  if (!me.admin) {
    show("Keys", h("p", { class: "error", id: "keys-refused" }, "Key management needs an admin key (memstore keys create --admin)."));
    return;
  }
  let keys;
  try {
    ({ keys } = await api("GET", "/v1/admin/keys"));
  } catch (err) {
    if (err.status !== 403) throw err;
    show("Keys", h("p", { class: "error", id: "keys-refused" }, err.message));
    return;
  }
  const rows = keys.map((k) => {
    const revoke = k.revoked_at ? "" : h("button", { type: "button", class: "danger", "data-key": k.key_id }, "Revoke…");
    if (revoke) {
      revoke.addEventListener("click", async () => {
        const mine = k.key_id === me.key_id ? " This is the key you are signed in with." : "";
        if (!(await confirmDialog(`Revoke the key ${k.prefix}… of ${k.account}? Requests with it fail at once.${mine}`, "Revoke"))) return;
        await api("DELETE", `/v1/admin/keys/${encodeURIComponent(k.key_id)}`);
        say(`Revoked ${k.prefix}…`);
        await keysPage();
      });
    }
    return h("tr", { "data-key-row": k.key_id },
      h("td", {}, h("code", {}, `${k.prefix}…`)), h("td", {}, k.account), h("td", {}, k.plan),
      h("td", {}, k.admin ? "admin" : ""), h("td", {}, time(k.created_at)),
      h("td", {}, k.last_used_at ? time(k.last_used_at) : "never"),
      h("td", {}, k.revoked_at ? "revoked" : "active"), h("td", {}, revoke));
  });
  const account = h("input", { id: "key-account", name: "account", required: true, maxlength: 200 });
  const plan = h("select", { id: "key-plan", name: "plan" }, ["free", "pro", "unlimited"].map((p) => h("option", { value: p }, p)));
  const admin = h("input", { id: "key-admin", name: "admin", type: "checkbox" });
  const shown = h("div", { id: "new-key" });
  const form = h("form", { class: "card", id: "create-key" },
    h("h2", {}, "Create a key"),
    h("label", { for: "key-account" }, "Account (created if new)"), account,
    h("label", { for: "key-plan" }, "Plan (of a new account)"), plan,
    h("label", { class: "check" }, admin, "Admin key (may manage every key)"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create")), shown);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const made = await api("POST", "/v1/admin/keys", { body: { account: account.value, plan: plan.value, admin: admin.checked } });
    await keysPage();
    const value = h("input", { id: "created-key", readonly: true, value: made.key, "aria-label": "The new key" });
    const copy = h("button", { type: "button", id: "copy-key" }, "Copy");
    copy.addEventListener("click", async () => {
      value.select();
      try {
        await navigator.clipboard.writeText(made.key);
        say("Copied.");
      } catch (_) {
        say("Press Ctrl+C (or ⌘C) to copy the selected key.");
      }
    });
    document.getElementById("new-key").replaceChildren(
      h("p", { class: "warn" }, `Key for ${made.account}: shown this once, only its hash is stored.`),
      h("div", { class: "copy" }, value, copy));
    value.focus();
    value.select();
  });
  show("Keys", table(["Prefix", "Account", "Plan", "Admin", "Created", "Last used", "State", ""], rows), form);
}

async function exportAll() {
  const response = await api("GET", "/v1/export", { raw: true });
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: `memstore-${me.account}.jsonl` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  say("Exported (JSON Lines, the format of memstore export).");
}

// -- routing: #/sessions, #/s (shared), #/s/NAME, #/m/ID, #/search, #/add[/NAME], #/usage, #/keys
function fail(err) {
  if (me) say(err.message, "error");
}

// One page at a time: a slow page (its API call still out) must not paint over the page
// navigated to after it, so each route waits for the one before it to finish.
let routing = Promise.resolve();
function route() {
  routing = routing.then(renderRoute, renderRoute);
  return routing;
}

async function renderRoute() {
  if (!me) return;
  const [, page, arg] = location.hash.match(/^#\/([^/]*)\/?(.*)$/) || [];
  const value = arg ? decodeURIComponent(arg) : null;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#/${page}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  say(flash || "");
  flash = null;
  const pages = {
    sessions: sessionsPage,
    s: () => sessionPage(value),
    m: () => memoryPage(value),
    search: searchPage,
    add: () => addPage(value),
    usage: usagePage,
    keys: keysPage,
  };
  try {
    await (pages[page] || sessionsPage)();
  } catch (err) {
    fail(err);
  }
}

window.addEventListener("hashchange", () => route());
window.addEventListener("unhandledrejection", (event) => fail(event.reason));
document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));
document.getElementById("export").addEventListener("click", () => exportAll().catch(fail));
if (sessionStorage.getItem(KEY)) start().catch((err) => signOut(err.message));
else signInView();
