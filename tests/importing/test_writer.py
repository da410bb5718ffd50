"""Round-trip writing: hand-written YAML keeps every comment, new records follow the layout."""

from __future__ import annotations

from pathlib import Path

from provgit.importing.analysis import Options
from provgit.importing.writer import _guess_style, check, render, slug, write
from provgit.source import read_directory
from provgit.validate import validate_source

from .helpers import Records, run

HAND_WRITTEN = {
    # Templates and roles someone wrote by hand, with comments everywhere,
    # including a section heading between two lists and a trailing comment.
    "roles-and-templates.yaml": """\
# Our templates. Keep this file tidy!
templates:
  # The one everybody gets.
  - name: Standard Desk   # do not rename: HR scripts use it
    description: One desk set
    phones:
      - {label: Desk, device_type: "6920", primary: true}
    cos: {day: 10, night1: 60}
    cor: {day: 2}

# Roles: what a person does.
roles:
  - name: Receptionist    # front desk
    template: Standard Desk
# end of file
""",
    "network/classes-of-service.yaml": """\
classes_of_service:
- number: 10   # indented the other way on purpose
  comment: Standard
  options: {call_forward_external: true}
- number: 60
  comment: Night restrict
  options: {toll_denied: true}
- number: 1
  comment: Internal only
  options: {toll_denied: true}
cor_groups:
- number: 2
  comment: No intl
  members: [3]
- number: 3
  comment: No premium
""",
}


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line]


def test_hand_written_file_keeps_every_comment(tmp_path: Path) -> None:
    analysis = run(tmp_path, files=HAND_WRITTEN)
    root = tmp_path / "config"
    before = {rel: (root / rel).read_text() for rel in HAND_WRITTEN}
    files = write(root, validate_source(read_directory(root), None).state, analysis.items)
    assert "roles-and-templates.yaml" in files
    for rel, old in before.items():
        new = (root / rel).read_text()
        assert _comments(new) == _comments(old), new
    text = (root / "roles-and-templates.yaml").read_text()
    # The untouched records are byte for byte what they were.
    assert before["roles-and-templates.yaml"].split("\n# Roles")[0] in text
    # New templates went to the templates list, before the roles heading.
    head, tail = text.split("# Roles: what a person does.")
    assert "- name: Lab Phone" in head and "- name: Lab Phone" not in tail
    assert "- name: Software Engineer" in tail
    # The other indentation style is kept for appended records.
    cos = (root / "network/classes-of-service.yaml").read_text()
    assert "\n- number: 12\n" in cos
    assert validate_source(read_directory(root), None).ok


def test_modify_in_place_changes_only_that_field(tmp_path: Path) -> None:
    def describe(r: Records) -> None:
        for element in ("micollab1", "mivb1", "mivb2", "mivb3"):
            r[element]["templates"]["Standard Desk"]["description"] = "Desk set, 2nd floor"

    analysis = run(tmp_path, describe, HAND_WRITTEN, Options(prefer_element=True))
    root = tmp_path / "config"
    old = (root / "roles-and-templates.yaml").read_text()
    write(root, validate_source(read_directory(root), None).state, analysis.items)
    new = (root / "roles-and-templates.yaml").read_text()
    assert "description: Desk set, 2nd floor\n" in new
    block = old.split("    cor: {day: 2}\n")[0]  # the Standard Desk record, comments and all
    assert block.replace("One desk set", "Desk set, 2nd floor") in new
    assert _comments(new) == _comments(old)


def test_new_users_go_to_their_department_file(tmp_path: Path) -> None:
    analysis = run(tmp_path)
    root = tmp_path / "config"
    files = write(root, validate_source(read_directory(root), None).state, analysis.items)
    assert {"people/engineering.yaml", "people/front-office.yaml", "people/sales.yaml"} <= set(
        files
    )
    assert "login_id: wzhang" in (root / "people/engineering.yaml").read_text()
    assert 'dn: "2113"' in (root / "people/engineering.yaml").read_text()


def test_layout_helpers() -> None:
    assert slug("Executive Office") == "executive-office"
    assert slug("") == "unassigned"
    style = _guess_style("users:\n- login_id: a\n  first_name: b\n")
    assert (style.sequence, style.offset) == (2, 0)
    style = _guess_style("users:\n  - login_id: a\n")
    assert (style.sequence, style.offset) == (4, 2)


# Layout ruamel would render differently if it wrote the file itself: spaces inside
# flow maps, single quotes, extra spaces after a colon, odd comment columns.
ODD = """\
# Our templates.
templates:
  - name: Standard Desk   # do not rename
    description:   One desk set
    phones:
      - { label: Desk, device_type: '6920', primary: true }
    cos: { day: 10, night1: 60 }
    cor: {day: 2}
       # a comment indented oddly

# Roles.
roles:
  - name: 'Receptionist'    # front desk
    template:    Standard Desk
# end of file
"""


def test_bytes_outside_changed_and_new_records_are_kept(tmp_path: Path) -> None:
    import difflib

    def describe(r: Records) -> None:
        for element in ("micollab1", "mivb1", "mivb2", "mivb3"):
            r[element]["templates"]["Standard Desk"]["description"] = "Desk set, 2nd floor"

    files = {**HAND_WRITTEN, "roles-and-templates.yaml": ODD}
    analysis = run(tmp_path, describe, files, Options(prefer_element=True))
    root = tmp_path / "config"
    old = (root / "roles-and-templates.yaml").read_text().splitlines(keepends=True)
    write(root, validate_source(read_directory(root), None).state, analysis.items)
    new = (root / "roles-and-templates.yaml").read_text().splitlines(keepends=True)
    ops = [op for op in difflib.SequenceMatcher(a=old, b=new).get_opcodes() if op[0] != "equal"]
    assert ops, "nothing changed"
    # The Standard Desk record: its `- name` line to its last field.
    first, last = (
        old.index("  - name: Standard Desk   # do not rename\n"),
        old.index("    cor: {day: 2}\n"),
    )
    for tag, i1, i2, j1, j2 in ops:
        if tag == "replace":
            assert first <= i1 and i2 <= last + 1, (old[i1:i2], new[j1:j2])
        else:
            assert tag == "insert", (tag, old[i1:i2])
            assert new[j1].startswith("  - name: "), new[j1:j2]
    text = "".join(new)
    assert "    description: Desk set, 2nd floor\n" in text
    assert "# do not rename" in text and "       # a comment indented oddly\n" in text
    assert validate_source(read_directory(root), None).ok


def test_check_finds_what_a_write_would_break_without_writing(tmp_path: Path) -> None:
    root = tmp_path / "config"
    analysis = run(tmp_path, files=HAND_WRITTEN)
    source = read_directory(root)
    state = validate_source(source, None).state
    rendered = render(root, state, analysis.items)
    assert check(source, rendered) == []
    broken = dict(rendered)
    broken["roles-and-templates.yaml"] = rendered["roles-and-templates.yaml"].replace(
        b"template: Standard Desk", b"template: Nowhere"
    )
    problems = check(source, broken)
    assert problems and "roles-and-templates.yaml:" in problems[0]
    assert "Nowhere" in " ".join(problems)
    # Nothing was written by either check.
    assert (root / "roles-and-templates.yaml").read_text() == HAND_WRITTEN[
        "roles-and-templates.yaml"
    ]
