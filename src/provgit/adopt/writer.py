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
import io
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from provgit.adopt.analysis import Item
from provgit.fsutil import atomic_write
from provgit.model.kinds import KINDS
from provgit.model.state import DesiredState

LAYOUT = {
    "departments": "organization.yaml",
    "locations": "organization.yaml",
    "templates": "roles-and-templates.yaml",
    "roles": "roles-and-templates.yaml",
    "classes_of_service": "network/classes-of-service.yaml",
    "cor_groups": "network/classes-of-service.yaml",
    "ivr_media_servers": "ivr/media-servers.yaml",
    "prompts": "ivr/prompts.yaml",
    "subroutines": "ivr/subroutines.yaml",
    "workflows": "ivr/workflows.yaml",
}
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
        if self.created:
            self.style = Style()
            self.docs: list[Any] = [CommentedMap()]
        else:
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise WriteError(f"cannot read {rel}: {e}") from None
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
        return found

    def list_for(self, kind: str) -> CommentedSeq:
        for doc in self.docs:
            if isinstance(doc, CommentedMap) and kind in doc:
                seq = doc[kind]
                if seq is None:
                    seq = doc[kind] = CommentedSeq()
                if not isinstance(seq, CommentedSeq):
                    raise WriteError(f"{self.rel}: '{kind}' is not a list")
                return seq
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
        return out.getvalue().encode()


def _modify(
    target: CommentedMap,
    kind: str,
    old: dict[str, Any],
    new: dict[str, Any],
    data: dict[str, Any],
) -> None:
    """Replace only the fields whose meaning changed (`old`/`new`: normal forms);
    leave the rest untouched. Values are written as `data` has them."""
    order = _fields_in_order(kind)
    for name in order:
        if old.get(name) == new.get(name):
            continue
        if name not in data:
            target.pop(name, None)
            continue
        value = _node(data[name], name)
        if name in target:
            target[name] = value
            continue
        # A new field goes where the model puts it, not at the end.
        pos = 0
        for i, k in enumerate(target.keys()):
            if k in order and order.index(k) < order.index(name):
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


def write(root: Path, state: DesiredState, items: Sequence[Item], header: str = "") -> list[str]:
    """Write every written item; returns the files changed or created (relative paths)."""
    from provgit.adopt.analysis import _dump  # the same normal form the analysis compared

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
        rendered[rel] = f.dump()
    # Everything is rendered before anything is written: a file that cannot
    # be edited leaves the config as it was.
    for rel, data in rendered.items():
        atomic_write(root / rel, data)
    return sorted(rendered)
