"""The status document as one self-contained HTML page (`index.html`).

No external resource at all: styles and the small filter script are inline, and
a Content-Security-Policy forbids loading anything else, so the page can be
opened from a CI artifact, a file share or an air-gapped admin host. The only
links out are reach-through links into the elements' own admin forms.

Filtering (resources by kind and status) runs in the page; the URL fragment
(`#kind=users&status=Sync%20Incomplete`) carries it, so a filtered view can be
linked to and a headless browser can render one. Without JavaScript the page
shows everything, unfiltered.

Served live by the watcher (`live_seconds`), the page fetches itself every few
seconds and swaps in the parts that changed, without a navigation: filters,
scroll position and the URL fragment stay. It fetches the page rather than
`/status.json` so there is one renderer (this module), not a second one in
JavaScript to drift from it. Only then may it connect anywhere (its own origin).
"""

from __future__ import annotations

import hashlib
import marshal
import re
from html import escape
from typing import Any

import orjson

from provgit.render.status_text import verified
from provgit.report.document import SERVER_PAGE, Document, worst_line

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
# The live page fetches itself, and nothing else.
_CSP_LIVE = _CSP + "; connect-src 'self'"

_CSS = """
:root { --ok:#1b7f3b; --syncing:#8a6d00; --failed:#b3261e; --down:#555; --line:#d8dbe0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1d1f23; background: #f6f7f9; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
main { padding: 16px 24px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 0 0 16px;
  padding: 12px 16px; }
h2 { font-size: 16px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; background: #fafbfc; }
tr[hidden] { display: none; }
.status { font-weight: 600; white-space: nowrap; }
.status.ok { color: var(--ok); } .status.syncing { color: var(--syncing); }
.status.failed { color: var(--failed); } .status.down { color: var(--down); }
.status.held { color: var(--down); font-style: italic; }
.status.info { color: #0b57d0; font-weight: 400; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600;
  color: #fff; background: var(--down); }
.badge.ok { background: var(--ok); } .badge.failed { background: var(--failed); }
.alarm-warning { background: #7a5c00; } .alarm-minor { background: #a63c0e; }
.alarm-major { background: var(--failed); }
.shared { color: #0b57d0; font-weight: 700; cursor: help; }
.muted { color: #667; }
.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 8px; }
code { font-size: 12px; }
/* A wide table scrolls inside its card instead of widening the page; long
   words (keys, reasons) wrap. */
section { overflow-x: auto; }
td { overflow-wrap: anywhere; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
@media (max-width: 600px) {
  body { font-size: 13px; }
  header, main { padding: 12px 8px; }
  section { padding: 8px 6px; }
  th, td { padding: 3px; }
  .status { white-space: normal; }
}
"""

# Reads the fragment, sets the selects, hides rows; the selects write the
# fragment back. Rows carry data-kind/data-status; counts are recomputed.
# `setup` runs again after a live refresh swaps the resources in.
_JS = """
(function () {
  function params() {
    var out = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (p) {
      var i = p.indexOf('=');
      if (i > 0) { out[decodeURIComponent(p.slice(0, i))] = decodeURIComponent(p.slice(i + 1)); }
    });
    return out;
  }
  function setup() {
    var kind = document.getElementById('f-kind');
    var status = document.getElementById('f-status');
    var rows = document.querySelectorAll('#resources tbody tr');
    var shown = document.getElementById('shown');
    function apply() {
      var n = 0;
      rows.forEach(function (r) {
        var ok = (!kind.value || r.dataset.kind === kind.value) &&
                 (!status.value || r.dataset.status === status.value);
        r.hidden = !ok;
        if (ok) { n += 1; }
      });
      shown.textContent = n + ' of ' + rows.length + ' shown';
      document.body.dataset.filterKind = kind.value;
      document.body.dataset.filterStatus = status.value;
    }
    function fromHash() {
      var p = params();
      kind.value = p.kind || '';
      status.value = p.status || '';
      if (kind.value !== (p.kind || '')) { kind.value = ''; }
      if (status.value !== (p.status || '')) { status.value = ''; }
      apply();
    }
    function toHash() {
      var parts = [];
      if (kind.value) { parts.push('kind=' + encodeURIComponent(kind.value)); }
      if (status.value) { parts.push('status=' + encodeURIComponent(status.value)); }
      history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname);
      apply();
    }
    kind.addEventListener('change', toHash);
    status.addEventListener('change', toHash);
    fromHash();
    return fromHash;
  }
  var refilter = setup();
  window.addEventListener('hashchange', function () { refilter(); });
  var every = Number(document.body.dataset.live || 0) * 1000;
  if (!every || !window.fetch || !window.DOMParser) { return; }
  var live = document.getElementById('live');
  // Swap in the parts of a fresh copy of this page whose HTML changed.
  function swap(text) {
    var next = new DOMParser().parseFromString(text, 'text/html');
    var changed = false;
    document.querySelectorAll('[data-part]').forEach(function (old) {
      var fresh = next.querySelector('[data-part="' + old.dataset.part + '"]');
      if (fresh && fresh.outerHTML !== old.outerHTML) {
        old.replaceWith(document.importNode(fresh, true));
        changed = true;
      }
    });
    if (changed) {
      document.title = next.title;
      refilter = setup();
    }
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }
  function tick() {
    var busy = document.activeElement && document.activeElement.tagName === 'SELECT';
    if (document.hidden || busy) { setTimeout(tick, every); return; }
    fetch(location.pathname + location.search, {cache: 'no-store', credentials: 'same-origin'})
      .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.text(); })
      .then(function (text) {
        swap(text);
        live.textContent = 'Live: updated ' + new Date().toLocaleTimeString();
      })
      .catch(function () {
        live.textContent = 'Live updates paused: the watcher did not answer; retrying.';
      })
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
"""


# What `escape(quote=True)` replaces: most strings of a page hold none of it
# (a W100k page escapes ~30,000), and one search is cheaper than five replaces.
_ESCAPED = re.compile("[&<>\"']").search


def _e(value: Any) -> str:
    text = "" if value is None else str(value)
    return escape(text, quote=True) if _ESCAPED(text) else text


def _a(text: Any, url: str | None) -> str:
    if not url:
        return _e(text)
    return (
        f'<a class="reach" href="{_e(url)}" target="_blank" rel="noopener noreferrer">'
        f"{_e(text)}</a>"
    )


def _status(text: str, cls: str) -> str:
    return f'<span class="status {_e(cls)}">{_e(text)}</span>'


def _element_detail(e: Document, generated: str | None) -> str:
    """The element's detail, and what its records rest on (its last full read)."""
    return "; ".join(x for x in (e["detail"], verified(e, generated)) if x)


def _elements(doc: Document) -> str:
    # Replicas on a shared journal: which one holds each element's lease.
    replica = (doc.get("watch") or {}).get("replica")
    holders: dict[str, Any] = replica["holders"] if replica else {}
    rows = []
    for name, e in doc["elements"].items():
        holder = f'<td class="holder">{_e(holders.get(name) or "nobody")}</td>' if replica else ""
        rows.append(
            f'<tr data-element="{_e(name)}"><td>{_e(name)}</td><td>{_e(e["type"] or "")}</td>'
            f"<td>{_status(e['status'], e['class'])}</td>"
            f"<td>{_e('' if e['revision'] is None else e['revision'])}</td>"
            f"<td>{_e(e['state'])}</td><td>{_e(_element_detail(e, doc.get('generated')))}</td>"
            f"<td class=muted>{_e(e['time'])}</td>{holder}</tr>"
        )
    body = (
        "".join(rows)
        or '<tr><td colspan="7" class="muted">No element has been applied to yet.</td></tr>'
    )
    return (
        '<section id="elements"><h2>Elements</h2><table><thead><tr><th>Element</th><th>Type</th>'
        "<th>Sync Status</th><th>Revision</th><th>State</th><th>Detail</th><th>Since</th>"
        + ("<th>Held by replica</th>" if replica else "")
        + f"</tr></thead><tbody>{body}</tbody></table></section>"
        + _replica(replica)
    )


def _replica(r: dict[str, Any] | None) -> str:
    if not r:
        return ""
    state = (
        '<span class="status ok">reaches the journal</span>'
        if r["healthy"]
        else f'<span class="status failed">cut off from the journal, writes stopped: '
        f"{_e(r['error'] or '')}</span>"
    )
    return (
        f'<p id="replica" class="muted">This page is served by replica {_e(r["id"])}'
        f"{' (leader)' if r['leader'] else ''}: {state}; it holds "
        f"{_e(', '.join(r['holds']) or 'no element')}; live replicas: "
        f"{_e(', '.join(r['replicas']))}.</p>"
    )


def _resources(doc: Document) -> str:
    resources = doc["resources"]
    kinds = sorted({r["kind"] for r in resources})
    statuses = sorted({r["status"] for r in resources})
    kind_opts = "".join(f'<option value="{_e(k)}">{_e(k)}</option>' for k in kinds)
    status_opts = "".join(f'<option value="{_e(s)}">{_e(s)}</option>' for s in statuses)
    rows = []
    for r in resources:
        marker = ""
        if r["shared"]:
            # The arrow is decoration; the words are for screen readers.
            marker = (
                f' <span class="shared" title="Shared data: lands on {r["total"]} elements">'
                f'<span aria-hidden="true">⇄</span><span class="sr"> shared data, lands on '
                f"{r['total']} elements</span></span>"
            )
        links = ", ".join(_a(f"{x['element']}: {x['form']}", x.get("url")) for x in r["links"])
        rows.append(
            f'<tr data-kind="{_e(r["kind"])}" data-status="{_e(r["status"])}">'
            f"<td>{_e(r['kind'])}</td><td>{_e(r['resource'])}{marker}</td>"
            f"<td>{_status(r['status'], r['class'])}</td>"
            f"<td>{r['completed']}/{r['total']}</td><td>{links}</td></tr>"
        )
    omitted = doc["counts"].get("resources_omitted", 0)
    note = (
        f'<p class="muted">{omitted} completed resource(s) not listed (the page is bounded).</p>'
        if omitted
        else ""
    )
    return (
        '<section id="resources-section"><h2>Resources</h2>'
        '<div class="filters"><label>Kind <select id="f-kind"><option value="">all</option>'
        f"{kind_opts}</select></label>"
        '<label>Status <select id="f-status"><option value="">all</option>'
        f'{status_opts}</select></label><span id="shown" class="muted"></span></div>'
        '<table id="resources"><thead><tr><th>Kind</th><th>Resource</th><th>Sync Status</th>'
        "<th>Elements</th><th>Reach through</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{note}</section>"
    )


def resources_section(doc: Document) -> str:
    """The page's resource list (2,000 rows and 8,731 reach-through links at
    100,000 users: the largest part of the page to render)."""
    return _parts(_resources(doc))


def resources_key(doc: Document) -> bytes | None:
    """What `resources_section` renders from, as a digest (the rendering code
    included): equal keys, equal sections. None: a value it cannot digest."""
    entries = [
        [
            r["kind"],
            r["resource"],
            r["status"],
            r["class"],
            r["completed"],
            r["total"],
            r["shared"],
            r["links"],
        ]
        for r in doc["resources"]
    ]
    try:
        # JSON: one value, one text (marshal's bytes depend on reference counts).
        body = orjson.dumps([entries, doc["counts"].get("resources_omitted", 0)])
    except orjson.JSONEncodeError:  # not plain values
        return None
    return hashlib.sha256(_SECTION_CODE + body).digest()


def _errors(doc: Document) -> str:
    errors = doc["distribution_errors"]
    if not errors:
        return (
            '<section id="distribution-errors"><h2>Distribution Errors</h2>'
            '<p class="muted">No distribution errors.</p></section>'
        )
    rows = []
    for e in errors:
        rows.append(
            f'<tr data-action-id="{e["action_id"]}"><td>{e["action_id"]}</td>'
            f"<td>{_e(e['element'])}</td><td>{_e(e['time'])}</td><td>{_e(e['last_retried'])}</td>"
            f"<td>{_e(e['action'])}</td><td>{_a(e['form'], e.get('url'))}</td>"
            f"<td>{_e(e['key'])}</td><td>{_e(e['error_type'])}</td><td>{_e(e['reason'])}</td>"
            f"<td>{_e(e['status'])}</td>"
            f"<td><code>{_e(_detail(e['detail']))}</code></td></tr>"
        )
    return (
        f'<section id="distribution-errors"><h2>Distribution Errors ({len(errors)})</h2><table>'
        "<thead><tr><th>Action ID</th><th>Destination</th><th>Time</th><th>Last Retried</th>"
        "<th>Action</th><th>Form</th><th>Key</th><th>Error Type</th><th>Reason</th>"
        f"<th>Status</th><th>Detail</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</section>"
    )


def _detail(detail: Any) -> str:
    if isinstance(detail, dict):
        text = ", ".join(f"{k}={v}" for k, v in detail.items() if not isinstance(v, (dict, list)))
        return text[:200]
    return str(detail)[:200]


def _pending(doc: Document) -> str:
    pending = doc["pending_updates"]
    if not pending:
        return (
            '<section id="pending-updates"><h2>Pending Updates</h2>'
            '<p class="muted">No pending updates.</p></section>'
        )
    rows = []
    for p in pending:
        rows.append(
            f"<tr><td>{_e(p['element'])}</td><td>{_e(p['action'])}</td>"
            f"<td>{_a(p['form'], p.get('url'))}</td><td>{_e(p['key'])}</td>"
            f"<td>{p['attempts']}</td><td>{_e(p['next_retry'])}</td>"
            f"<td>{_e(p['last_error'])}</td></tr>"
        )
    return (
        f'<section id="pending-updates"><h2>Pending Updates ({len(pending)})</h2><table><thead>'
        "<tr><th>Element</th><th>Action</th><th>Form</th><th>Key</th><th>Attempts</th>"
        f"<th>Next Retry</th><th>Last Error</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></section>"
    )


def _events(doc: Document) -> str:
    rows = []
    for ev in reversed(doc["events"]):
        rows.append(
            f'<tr id="event-{ev["id"]}" data-type="{_e(ev["type"])}"><td>{_e(ev["time"])}</td>'
            f"<td>{_e(ev['type'])}</td><td>{_e(ev['element'] or '')}</td>"
            f"<td>{_e(ev['message'])}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="4" class="muted">No events.</td></tr>'
    return (
        '<section id="events"><h2>Event Viewer</h2><table><thead><tr><th>Time</th><th>Type</th>'
        f"<th>Element</th><th>Message</th></tr></thead><tbody>{body}</tbody></table></section>"
    )


def _header(doc: Document) -> str:
    c = doc["counts"]
    level = doc["alarm"]["level"]
    alarm = (
        f'<span id="alarm" class="badge alarm-{_e(level)}">{_e(level)} alarm</span>'
        if level
        else '<span id="alarm" class="badge ok">no alarm</span>'
    )
    ivr = doc["alarm"].get("ivr_service")
    if ivr:
        alarm += (
            ' <span id="ivr-alarm" class="badge alarm-major" title="IVR services are stopped '
            f'or the server is offline">IVR service alarm: {_e(", ".join(ivr))}</span>'
        )
    cls = "ok" if doc["in_sync"] else "failed"
    run = doc.get("run")
    facts = []
    if run:
        facts.append(
            f"run {run['id']}" + (f" ({_e(run['command'])})" if run.get("command") else "")
        )
        if run.get("finished"):
            facts.append(f"finished {_e(run['finished'])}")
    source = doc.get("source")
    if source:
        facts.append(
            f"commit <code>{_e(source['commit'][:12])}</code>"
            + (" (uncommitted changes)" if source["dirty"] else "")
        )
    facts.append(f"generated {_e(doc['generated'])}")
    # The worst state first, in the seeds' words; a refused config turns the header red.
    worst = worst_line(doc)
    refused = bool((doc.get("watch") or {}).get("refused"))
    if refused:
        cls = "failed"
    worst_html = ""
    if worst:
        worst_html = f'<div id="worst" class="status failed">{_e(worst)}</div>'
    pointer = ""
    if not doc["in_sync"]:
        pointer = f'<div id="pointer"><a href="#elements">{_e(SERVER_PAGE)}</a></div>'
    secrets = doc.get("secrets_unavailable")
    if secrets:
        pointer += f'<div id="secrets-note" class="muted">Note: {_e(secrets["note"])}</div>'
    return (
        f"<header><h1>{_e(doc['network'] or 'network')}: "
        f'<span id="overall" class="badge {cls}">{_e(doc["status"])}</span> {alarm}</h1>'
        f"{worst_html}{pointer}"
        f'<div id="summary">{c["distribution_errors"]} distribution error(s) · '
        f"{c['pending_updates']} pending update(s) · {c['elements_not_completed']} of "
        f"{c['elements']} element(s) not completed · {c['resources_not_completed']} resource(s) "
        f'not completed</div><div class="muted">{" · ".join(facts)}</div></header>'
    )


def _parts(html: str) -> str:
    """Name each part a live refresh may swap: the header and every section."""
    html = html.replace("<header>", '<header data-part="header">', 1)
    return re.sub(r'<section id="([^"]+)">', r'<section id="\1" data-part="\1">', html)


# Bumped when the resource list's markup changes other than through the code
# of the functions `_SECTION_CODE` names (a constant or a module they use).
_SECTION_FORMAT = 1
_SECTION_CODE = hashlib.sha256(
    marshal.dumps(
        (_SECTION_FORMAT, *(f.__code__ for f in (_resources, _a, _e, _status, _parts))), 2
    )
).digest()


def render(doc: Document, *, live_seconds: int | None = None, resources: str | None = None) -> str:
    """The page; `live_seconds` (the watcher's page) makes it refresh itself in
    place that often, without reloading. `resources`: `resources_section(doc)`,
    when the caller has it (kept from a report of the same entries)."""
    title = f"{doc['network'] or 'network'}: {doc['status']} — provgit"
    live = bool(live_seconds)
    body = f' data-live="{int(live_seconds or 0)}"' if live else ""
    note = (
        f'<p id="live" class="muted">Live: updates every {int(live_seconds or 0)} s.</p>'
        if live
        else ""
    )
    # The resource list apart (`resources_section`): a caller may have it
    # already, rendered from the same entries.
    parts = (
        _parts(f"{_header(doc)}<main>{note}{_elements(doc)}{_errors(doc)}{_pending(doc)}")
        + (resources if resources is not None else resources_section(doc))
        + _parts(f"{_events(doc)}</main>")
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP_LIVE if live else _CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="provgit {_e(doc["format"])}">'
        '<link rel="alternate" type="application/atom+xml" title="Events" href="feed.atom">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body{body}>"
        f"{parts}<script>{_JS}</script></body></html>\n"
    )
