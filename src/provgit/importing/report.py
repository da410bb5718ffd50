"""The import analysis as a report: a JSON value first, markdown and text rendered from it.

Secrets never appear: records only ever held fingerprints, and the report
lists the placeholder references written ("set this secret"), not values.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from provgit.importing.analysis import Analysis, Item
from provgit.render.escape import md_code, md_text

FORMAT_VERSION = 1
CATEGORY_TITLE = {
    "unresolved": "Unresolved",
    "review": "For Review",
    "automatic": "Automatic",
}


def _item(i: Item) -> dict[str, Any]:
    return {
        "kind": i.kind,
        "key": i.key,
        "category": i.category,
        "action": i.action,
        "written": i.written,
        "summary": i.summary,
        "elements": i.elements,
        "conflicts": [asdict(c) for c in i.conflicts],
        "unresolved": i.unresolved,
        "apply_will_change": i.overwrites,
        "drifted": [
            {
                "element": d.element,
                "form": d.form,
                "collection": d.collection,
                "key": d.key,
                "op": d.op,
                "fields": {f: {"before": b, "after": a} for f, (b, a) in d.fields.items()},
            }
            for d in i.drifted
        ],
        "data": i.data if i.category != "unresolved" else None,
    }


def build(
    analysis: Analysis,
    *,
    network: str,
    files: list[str],
    dry_run: bool,
    mode: str = "import",
    branch: str | None = None,
    refused: list[str] | None = None,
) -> dict[str, Any]:
    items = analysis.items
    secrets = [asdict(s) for i in analysis.writes for s in i.secrets]
    return {
        "format_version": FORMAT_VERSION,
        "network": network,
        "mode": mode,
        "dry_run": dry_run,
        "branch": branch,
        "rules": analysis.rules,
        "elements": analysis.elements,
        "summary": {
            "automatic": sum(i.category == "automatic" for i in items),
            "review": sum(i.category == "review" for i in items),
            "unresolved": sum(i.category == "unresolved" for i in items),
            "written": 0 if dry_run or refused else len(analysis.writes),
            "unchanged": analysis.unchanged,
            "only_in_yaml": analysis.only_in_yaml,
        },
        "files": files,
        # Set when the config as written would not validate: nothing was written.
        "refused": list(refused or []),
        "set_these_secrets": secrets,
        "skipped_records": analysis.skipped,
        # Refused: no item reached the YAML, whatever the analysis meant to write.
        "items": [{**_item(i), "written": False} if refused else _item(i) for i in items],
    }


def dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str) + "\n"


def _fmt(v: Any) -> str:
    text = json.dumps(v, default=str, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"


def _cell(text: str) -> str:
    # Keys and values come from the elements read: escaped like all user text.
    return md_text(text)


def summary_line(value: dict[str, Any]) -> str:
    s = value["summary"]
    verb = "would write" if value["dry_run"] else "written"
    return (
        f"{s['automatic']} automatic, {s['review']} for review, {s['unresolved']} unresolved; "
        f"{s['written'] if not value['dry_run'] else s['automatic'] + s['review']} {verb}, "
        f"{s['unchanged']} already in the YAML"
    )


def markdown(value: dict[str, Any], max_bytes: int = 60_000) -> str:
    """Summary first, then Unresolved, For Review, Automatic; bounded in size."""
    title = "Drift" if value["mode"] == "drift" else "Import"
    out: list[str] = [f"# {title} analysis: {_cell(value['network'])}", ""]
    if value["dry_run"]:
        out += ["Dry run: nothing was written.", ""]
    if value.get("branch"):
        out += [f"Branch: {md_code(value['branch'])}", ""]
    s = value["summary"]
    out += [
        "| Automatic | For Review | Unresolved | Written | Already in YAML |",
        "| --- | --- | --- | --- | --- |",
        f"| {s['automatic']} | {s['review']} | {s['unresolved']} | {s['written']} "
        f"| {s['unchanged']} |",
        "",
        "Rules in force:",
        "",
        *[f"- {r}" for r in value["rules"]],
        "",
    ]
    down = {n: st for n, st in value["elements"].items() if st not in ("running", "locked")}
    if down:
        out += [
            "Elements not read: "
            + ", ".join(f"{_cell(n)} ({_cell(st)})" for n, st in down.items()),
            "",
        ]
    if value.get("refused"):
        out += ["**Nothing was written**: the config would not validate after this import:", ""]
        out += [f"- {_cell(r)}" for r in value["refused"]] + [""]
    if value["files"]:
        out += ["Files: " + ", ".join(md_code(f) for f in value["files"]), ""]
    if value["set_these_secrets"]:
        out += ["## Set these secrets", ""]
        out += [
            f"- {md_code(x['env'])}: {_cell(x['resource'])} {_cell(x['field'])} "
            "(the element holds a value; "
            "provgit never reads it back)"
            for x in value["set_these_secrets"]
        ]
        out.append("")
    tail: list[str] = []
    for category in ("unresolved", "review", "automatic"):
        items = [i for i in value["items"] if i["category"] == category]
        if not items:
            continue
        tail += [f"## {CATEGORY_TITLE[category]} ({len(items)})", ""]
        for i in items:
            tail.append(f"### {_cell(i['kind'])}/{_cell(i['key'])} ({_cell(i['action'])})")
            tail.append("")
            if i["unresolved"]:
                tail += [f"- {_cell(reason)}" for reason in i["unresolved"]] + [""]
            else:
                tail += [_cell(i["summary"]), ""]
            for c in i["conflicts"]:
                tail += [
                    f"**{_cell(c['what'])}**: chose *{_cell(c['chosen'])}*: {_cell(c['rule'])}",
                    "",
                ]
                tail += ["| source | values |", "| --- | --- |"]
                for side in c["sides"]:
                    tail.append(f"| {_cell(side['source'])} | {_cell(_fmt(side['values']))} |")
                tail.append("")
            changes = i["apply_will_change"]
            if changes:
                shown = ", ".join(
                    _cell(f"{c['op']} {c['element']}:{c['collection']}/{c['key']}")
                    for c in changes[:8]
                )
                more = f" and {len(changes) - 8} more" if len(changes) > 8 else ""
                tail += [f"Apply will then: {shown}{more}.", ""]
    text = "\n".join(out + tail) + "\n"
    if len(text.encode()) > max_bytes:
        cut = text.encode()[: max_bytes - 200].decode(errors="ignore")
        text = cut.rsplit("\n", 1)[0] + "\n\n… (truncated; the JSON report has every item)\n"
    return text


def text(value: dict[str, Any]) -> str:
    """What the terminal shows: the summary and every item that needs a person."""
    lines = [summary_line(value)]
    for i in value["items"]:
        if i["category"] == "automatic":
            continue
        tag = "UNRESOLVED" if i["category"] == "unresolved" else "REVIEW"
        lines.append(f"  {tag:<10} {i['kind']}/{i['key']}: {i['summary']}")
        for c in i["conflicts"]:
            lines.append(f"             {c['what']}:")
            lines += [
                f"               {side['source']}: {_fmt(side['values'])}" for side in c["sides"]
            ]
            lines.append(f"             chose {c['chosen']}: {c['rule']}")
    if value.get("refused"):
        lines.append("nothing was written: the config would not validate after this import:")
        lines += [f"  {r}" for r in value["refused"]]
    for x in value["set_these_secrets"]:
        lines.append(f"  set this secret: {x['env']} ({x['resource']} {x['field']})")
    return "\n".join(lines) + "\n"
