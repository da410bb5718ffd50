"""Write import's decisions into the config: round-trip YAML, by the layout convention.

Existing files are edited in place with ruamel.yaml's round-trip mode: a
changed record has only its changed fields replaced, so comments, key order,
quoting and formatting of everything else stay as they were. New records are
appended to the file already holding their kind (for users: their department),
or go to a new file by the layout convention of `sample-config/`:

    people/<department>.yaml (people/unassigned.yaml)   users
    organization.yaml                                    departments, locations
    roles-and-templates.yaml                             templates, roles
    network/classes-of-service.yaml                      classes of service, COR groups
    ivr/media-servers.yaml, ivr/prompts.yaml,
    ivr/subroutines.yaml, ivr/workflows.yaml             IVR content
"""

from __future__ import annotations

import copy
import dataclasses
import io
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from provgit.fsutil import atomic_write
from provgit.importing.analysis import Item
from provgit.model.kinds import KINDS
from provgit.model.state import DesiredState
from provgit.projection.canonical import normal
from provgit.registry import LAYOUT as REGISTRY_LAYOUT
from provgit.source import ConfigSource, SourceFile, blob_id

# Where a new record of a kind goes when no file holds the kind yet (the
# registry's import layout; users follow their department, below).
LAYOUT = REGISTRY_LAYOUT
# Small mappings people write on one line: `cos: {day: 10, night1: 60}`.
FLOW_KEYS = {"cos", "cor", "voicemail_pin", "hot_desk_pin", "options", "token"}
FLOW_LIST_ITEMS = {"phones"}


class WriteError(Exception):
    """A config file cannot be edited (unreadable, not the shape provgit wrote)."""


@dataclass(frozen=True)
class Style:
    mapping: int = 2
    sequence: int = 4
    offset: int = 2


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unassigned"


def _guess_style(text: str) -> Style:
    """The block sequence indentation a file already uses (`- ` under its key)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^( *)- \S", line)
        if not m:
            continue
        for prev in reversed(lines[:i]):
            if not prev.strip() or prev.lstrip().startswith("#"):
                continue
            pm = re.match(r"^( *)[^\s#-][^#]*:\s*(#.*)?$", prev)
            if pm:
                offset = len(m.group(1)) - len(pm.group(1))
                if offset >= 0:
                    return Style(max(2, offset) if offset else 2, offset + 2, offset)
            break
    return Style()


def _yaml(style: Style) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never fold a long description onto two lines
    y.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    return y


# Strings YAML would read as something else: written "quoted", as people do (dn: "2113").
_TYPED = re.compile(
    r"[-+]?(\d[\d_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|(\d[\d_]*)?\.\d+([eE][-+]?\d+)?|\.inf)"
    r"|\.nan|true|false|null|~|yes|no|on|off|y|n",
    re.IGNORECASE,
)


def _scalar(value: Any) -> Any:
    if isinstance(value, str) and (value == "" or _TYPED.fullmatch(value)):
        return DoubleQuotedScalarString(value)
    return value


def _node(value: Any, key: str | None = None, in_list: str | None = None) -> Any:
    """Plain data -> ruamel nodes, with the flow style people use for small maps."""
    if isinstance(value, dict):
        m = CommentedMap()
        for k, v in value.items():
            m[_scalar(k)] = _node(v, k)
        if key in FLOW_KEYS or in_list in FLOW_LIST_ITEMS:
            m.fa.set_flow_style()
        return m
    if isinstance(value, list):
        s = CommentedSeq(_node(v, None, key) for v in value)
        if all(not isinstance(v, dict | list) for v in value):
            s.fa.set_flow_style()
        return s
    return _scalar(value)


def _same_quotes(have: Any, value: Any) -> Any:
    """A changed string keeps the quotes its author wrote ('100' -> '101')."""
    if isinstance(value, str) and isinstance(
        have, SingleQuotedScalarString | DoubleQuotedScalarString
    ):
        return type(have)(str(value))
    return value


def _is_block(v: Any) -> bool:
    return isinstance(v, CommentedMap | CommentedSeq) and len(v) > 0 and not v.fa.flow_style()


def _last_slot(node: Any) -> tuple[CommentedMap, Any] | None:
    """The map and key whose value is written last inside `node`: ruamel keeps
    the comment lines that follow a block there."""
    while True:
        if isinstance(node, CommentedSeq) and _is_block(node):
            node = node[-1]
            continue
        if isinstance(node, CommentedMap) and len(node):
            k = list(node.keys())[-1]
            if _is_block(node[k]):
                node = node[k]
                continue
            return node, k
        return None


def _detach_tail(node: Any) -> Any | None:
    """Take the comment lines after the last record (e.g. the next section's
    heading) off it, keeping an end-of-line comment where it is."""
    slot = _last_slot(node)
    if slot is None:
        return None
    m, k = slot
    entry = m.ca.items.get(k)
    if not entry or len(entry) < 3 or entry[2] is None:
        return None
    tok = entry[2]
    value = str(tok.value)
    moved = copy.copy(tok)
    try:
        line = m.lc.key(k)[0]
    except (KeyError, IndexError, TypeError, AttributeError):
        line = -1
    if tok.start_mark.line == line and value.startswith("#"):
        first, sep, rest = value.partition("\n")
        if not rest.strip():
            return None  # only the end-of-line comment: it stays with its line
        tok.value = first + sep
        moved.value = "\n" + rest
    else:
        entry[2] = None
        moved.value = value
    return moved


def _attach_tail(node: Any, token: Any) -> None:
    slot = _last_slot(node)
    if slot is None:
        return
    m, k = slot
    m.ca.items[k] = [None, None, token, None]


def _fields_in_order(kind: str) -> list[str]:
    return list(KINDS[kind].model.model_fields)


class _File:
    def __init__(self, root: Path, rel: str) -> None:
        self.rel = rel
        self.path = root / rel
        self.created = not self.path.exists()
        self.text = ""
        # Records edited in place, and lists grown: (doc, kind, index) / (doc, kind) -> length.
        self.touched: set[tuple[int, str, int]] = set()
        self.grown: dict[tuple[int, str], int] = {}
        self.whole = self.created  # the file is written as ruamel renders it
        if self.created:
            self.style = Style()
            self.docs: list[Any] = [CommentedMap()]
        else:
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise WriteError(f"cannot read {rel}: {e}") from None
            self.text = text
            self.style = _guess_style(text)
            try:
                self.docs = list(_yaml(self.style).load_all(text))
            except Exception as e:  # ruamel raises many error types; all mean the same here
                raise WriteError(f"cannot parse {rel} for editing: {e}") from None
            if not self.docs:
                self.docs = [CommentedMap()]

    def item(self, path: tuple[Any, ...]) -> CommentedMap:
        di, kind, index = path[0], path[1], path[2]
        try:
            found = self.docs[di][kind][index]
        except (IndexError, KeyError, TypeError):
            raise WriteError(f"{self.rel} changed since it was read; run import again") from None
        if not isinstance(found, CommentedMap):
            raise WriteError(f"{self.rel}: {kind}[{index}] is not a mapping")
        self.touched.add((di, kind, index))
        return found

    def list_for(self, kind: str) -> CommentedSeq:
        for di, doc in enumerate(self.docs):
            if isinstance(doc, CommentedMap) and kind in doc:
                seq = doc[kind]
                if seq is None:
                    seq = doc[kind] = CommentedSeq()
                    self.whole = True
                if not isinstance(seq, CommentedSeq):
                    raise WriteError(f"{self.rel}: '{kind}' is not a list")
                if not len(seq) or seq.fa.flow_style():
                    self.whole = True
                self.grown.setdefault((di, kind), len(seq))
                return seq
        self.whole = True
        doc = next((d for d in reversed(self.docs) if isinstance(d, CommentedMap)), None)
        if doc is None:
            doc = CommentedMap()
            self.docs.append(doc)
        seq = CommentedSeq()
        doc[kind] = seq
        return seq

    def dump(self) -> bytes:
        out = io.StringIO()
        _yaml(self.style).dump_all(self.docs, out)
        rendered = out.getvalue()
        if not self.whole:
            spliced = _splice(self.text, rendered, self.touched, self.grown)
            if spliced is not None:
                return spliced.encode()
        return rendered.encode()


def _record_spans(text: str) -> dict[tuple[int, str], list[tuple[int, int]]]:
    """(doc, kind) -> the lines [start, end) of each record in that list: from its
    `- ` line to its last line of content (comment lines after it belong to
    what follows: a heading, the next record's comment)."""
    lines = text.splitlines()
    docs = list(YAML(typ="rt").load_all(text))
    starts: dict[tuple[int, str], list[int]] = {}
    stops: set[int] = set()
    for di, doc in enumerate(docs):
        if not isinstance(doc, CommentedMap):
            continue
        for k, v in doc.items():
            stops.add(doc.lc.key(k)[0])
            if isinstance(v, CommentedSeq) and not v.fa.flow_style():
                rows = [v.lc.item(i)[0] for i in range(len(v))]
                starts[(di, str(k))] = rows
                stops.update(rows)
    ordered = sorted(stops)
    spans: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for ref, rows in starts.items():
        out = []
        for start in rows:
            end = next((s for s in ordered if s > start), len(lines))
            while end > start + 1 and _filler(lines[end - 1]):
                end -= 1
            out.append((start, end))
        spans[ref] = out
    return spans


def _filler(line: str) -> bool:
    """A line that is no record's content: blank, a whole-line comment, a document marker."""
    bare = line.strip()
    return not bare or bare.startswith("#") or bare.startswith("---") or bare == "..."


def _splice(
    original: str,
    rendered: str,
    touched: set[tuple[int, str, int]],
    grown: dict[tuple[int, str], int],
) -> str | None:
    """The original text with only the changed and new records taken from `rendered`:
    every other byte (comments, blank lines, quoting, indentation) stays. None when
    the two cannot be lined up; the caller then writes `rendered` as it is."""
    try:
        old, new = _record_spans(original), _record_spans(rendered)
        o_lines = original.splitlines(keepends=True)
        n_lines = rendered.splitlines(keepends=True)
        edits: list[tuple[int, int, list[str]]] = []
        for di, kind, i in touched:
            if i >= grown.get((di, kind), len(old[(di, kind)])):
                continue  # a record appended in this write: taken below
            os_, oe = old[(di, kind)][i]
            ns, ne = new[(di, kind)][i]
            edits.append((os_, oe, n_lines[ns:ne]))
        for (di, kind), length in grown.items():
            added = new[(di, kind)][length:]
            if not added:
                continue
            at = old[(di, kind)][length - 1][1]
            edits.append((at, at, n_lines[added[0][0] : added[-1][1]]))
        for start, end, lines in sorted(edits, key=lambda e: (-e[0], -e[1])):
            if end == len(o_lines) and lines and not lines[-1].endswith("\n"):
                lines = [*lines[:-1], lines[-1] + "\n"]
            if start == len(o_lines) and o_lines and not o_lines[-1].endswith("\n"):
                o_lines[-1] += "\n"
            o_lines[start:end] = lines
        text = "".join(o_lines)
        # The spliced file must mean exactly what the rendered one does.
        safe = YAML(typ="safe", pure=True)
        if list(safe.load_all(text)) != list(safe.load_all(rendered)):
            return None
        return text
    except Exception:
        return None


def _modify(
    target: CommentedMap,
    kind: str,
    old: dict[str, Any],
    new: dict[str, Any],
    data: dict[str, Any],
) -> None:
    """Replace only the fields whose meaning changed (`old`/`new`: normal forms);
    leave the rest untouched. Values are written as `data` has them."""
    _merge(target, old, new, data, _fields_in_order(kind))


def _merge(
    target: CommentedMap,
    old: Any,
    new: Any,
    data: dict[str, Any],
    order: list[str] | None = None,
) -> None:
    """Field by field, down into block maps and same-length lists of block maps
    (a user's services): an unchanged field, and the comments around it, stay."""
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    names = order or list(dict.fromkeys([*target.keys(), *data.keys()]))
    for name in names:
        if normal(old.get(name), name) == normal(new.get(name), name):
            continue
        if name not in data:
            target.pop(name, None)
            continue
        have, want = target.get(name), data[name]
        if _is_block(have) and isinstance(have, CommentedMap) and isinstance(want, dict):
            _merge(have, old.get(name), new.get(name), want)
            continue
        if (
            _is_block(have)
            and isinstance(have, CommentedSeq)
            and isinstance(want, list)
            and len(have) == len(want)
            and all(isinstance(h, CommentedMap) and not h.fa.flow_style() for h in have)
            and all(isinstance(w, dict) for w in want)
        ):
            olds, news = old.get(name) or [], new.get(name) or []
            for i, (h, w) in enumerate(zip(have, want, strict=True)):
                o = olds[i] if i < len(olds) else {}
                n = news[i] if i < len(news) else w
                _merge(h, o, n, w)
            continue
        value = _node(want, name)
        if name in target:
            target[name] = _same_quotes(have, value)
            continue
        # A new field goes where the model puts it (else after the fields before it).
        rank = order or list(data)
        pos = 0
        for i, k in enumerate(target.keys()):
            if k in rank and rank.index(k) < rank.index(name):
                pos = i + 1
        target.insert(pos, name, value)


def _new_file_for(kind: str, item: Item, state: DesiredState) -> str:
    """Where a new record goes: beside its kind (for users, its department), or by convention."""
    same_kind = [p.file for (k, _), p in state.origins.items() if k == kind]
    if kind == "users":
        dept = (item.data or {}).get("department")
        users = state.of("users")
        same_dept = [
            p.file
            for (k, key), p in state.origins.items()
            if k == "users" and key in users and users[key].department == dept
        ]
        if same_dept:
            return Counter(same_dept).most_common(1)[0][0]
        return f"people/{slug(str(dept)) if dept else 'unassigned'}.yaml"
    if same_kind:
        return Counter(same_kind).most_common(1)[0][0]
    return LAYOUT.get(kind, f"{kind}.yaml")


def plan_files(items: Sequence[Item], state: DesiredState) -> dict[str, list[Item]]:
    """File (relative to the config root) -> the items written to it."""
    out: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        origin = state.origins.get((item.kind, item.key))
        if item.action == "modify" and origin is not None:
            out[origin.file].append(item)
        elif item.action == "add":
            out[_new_file_for(item.kind, item, state)].append(item)
    return dict(out)


def render(
    root: Path, state: DesiredState, items: Sequence[Item], header: str = ""
) -> dict[str, bytes]:
    """Every written item rendered into its file: relative path -> the file's new bytes."""
    from provgit.importing.items import dump as _dump  # the normal form the analysis compared

    files = plan_files([i for i in items if i.written], state)
    rendered: dict[str, bytes] = {}
    for rel, file_items in sorted(files.items()):
        f = _File(root, rel)
        if f.created and header:
            f.docs[0].yaml_set_start_comment(header)
        for item in file_items:
            assert item.data is not None
            new = _dump(KINDS[item.kind].model.model_validate(item.data))
            if item.action == "modify":
                origin = state.origins[(item.kind, item.key)]
                old = _dump(state.of(item.kind)[item.key])
                _modify(f.item(origin.path), item.kind, old, new, item.data)
            else:
                seq = f.list_for(item.kind)
                node = _node(item.data)
                tail = _detach_tail(seq) if len(seq) else None
                seq.append(node)
                if tail is not None:
                    _attach_tail(node, tail)
        data = f.dump()
        if f.created or data != f.text.encode():  # a file that means and reads the same stays
            rendered[rel] = data
    return rendered


def check(source: ConfigSource, rendered: Mapping[str, bytes]) -> list[str]:
    """Validate the config as it would be after the write, in memory; the errors, located."""
    from provgit.validate import validate_source  # validate imports much; only here

    files = {f.path: f for f in source.files}
    for rel, data in rendered.items():
        origin = str(Path(source.disk_root or source.root) / rel)
        files[rel] = SourceFile(rel, data, blob_id(data), origin)
    copy_ = dataclasses.replace(source, files=sorted(files.values(), key=lambda f: f.path))
    result = validate_source(copy_, None)
    return [
        f"{d.location}: {d.subject() + ': ' if d.subject() else ''}{d.message}"
        + (f" ({d.hint})" if d.hint else "")
        for d in result.diagnostics
        if d.severity == "error"
    ]


def commit(root: Path, rendered: Mapping[str, bytes]) -> list[str]:
    """Write rendered files (each atomically); returns their relative paths."""
    for rel, data in rendered.items():
        atomic_write(root / rel, data)
    return sorted(rendered)


def write(root: Path, state: DesiredState, items: Sequence[Item], header: str = "") -> list[str]:
    """Write every written item; returns the files changed or created (relative paths).

    Everything is rendered before anything is written: a file that cannot be
    edited leaves the config as it was."""
    return commit(root, render(root, state, items, header))
