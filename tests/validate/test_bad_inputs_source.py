"""Bad input at the source, loader and settings level, through the real command line.

Each case writes the small valid base network (see `base.py`), then breaks it
in one way: a symlink, a file's bytes, provgit.yaml, a secret file, an
element's connection or options. `validate` must exit 1 naming every problem
as "file:line:col: message" (or "file: message" for a whole file), and
`reconcile` on the same config must exit 1 with nothing written to any element
(the base network's elements are embedded, so a write would land in the state
directory's element files).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from apply.helpers import read_store
from provgit.cli import main

from .base import BASE, Symlink, write


@dataclass(frozen=True)
class Fifo:
    """A named pipe where a file would be (reading it would block forever)."""


Content = str | bytes | Symlink | Fifo


@dataclass(frozen=True)
class Case:
    files: dict[str, Content]
    # "file:line:col: part of the message" (or "file: part" for a whole file).
    # For a usage error: parts of the one message printed.
    expected: list[str]
    hint: str | None = None
    usage: bool = False  # a usage error (exit 1) before anything is read
    remove: tuple[str, ...] = ()  # base files this case deletes
    path: str = "."  # the folder given to the command, relative to the config root


CASE = "site/case.yaml"
ROLE = "roles:\n  - name: Agent\n    template: Basc\n"  # one located error at 3:5
ROLE_ERROR = "3:5: template 'Basc' is not defined"


def user(*lines: str) -> str:
    """A user valid against the base network; `lines` start at line 6, column 5."""
    out = ["users:", "  - login_id: bob", "    first_name: Bob", "    last_name: Jones"]
    out += ["    host: cs1", *(f"    {x}" for x in lines), "    services:", '      - dn: "2000"']
    return "\n".join(out) + "\n"


def element(*lines: str) -> str:
    """An IVR element; `lines` start at line 5, column 5."""
    out = ["elements:", "  - name: ivr9", "    type: ivr", "    ceid: 99"]
    return "\n".join([*out, *(f"    {x}" for x in lines)]) + "\n"


def cos(options: str) -> str:
    return f"classes_of_service:\n  - number: 9\n    options: {options}\n"


OUTSIDE = "symlink points outside the config root"

CASES: dict[str, Case] = {
    # -- a name is a key, and a key is a path segment of the element API
    "dot_dot_department_name_is_refused": Case(
        {CASE: "departments:\n  - name: '..'\n"},
        [f"{CASE}:2:5: '..' cannot be a name (it reads as a path step)"],
    ),
    "dot_department_name_is_refused": Case(
        {CASE: "departments:\n  - name: .\n"},
        [f"{CASE}:2:5: '.' cannot be a name (it reads as a path step)"],
    ),
    # -- every config file is read: extensions in any case, symlinks inside the root
    "uppercase_yaml_extension_is_read": Case(
        {"site/case.YAML": ROLE}, [f"site/case.YAML:{ROLE_ERROR}"]
    ),
    "mixed_case_yml_extension_is_read": Case(
        {"site/case.Yml": ROLE}, [f"site/case.Yml:{ROLE_ERROR}"]
    ),
    "symlinked_folder_inside_the_root_is_followed": Case(
        {".shared/team/roles.yaml": ROLE, "team": Symlink(".shared/team")},
        [f"team/roles.yaml:{ROLE_ERROR}"],
    ),
    "symlinked_file_inside_the_root_is_followed": Case(
        {".shared/roles.yaml": ROLE, CASE: Symlink("../.shared/roles.yaml")},
        [f"{CASE}:{ROLE_ERROR}"],
    ),
    "symlink_chain_inside_the_root_is_followed": Case(
        {
            ".shared/roles.yaml": ROLE,
            ".shared/link.yaml": Symlink("roles.yaml"),
            CASE: Symlink("../.shared/link.yaml"),
        },
        [f"{CASE}:{ROLE_ERROR}"],
    ),
    # -- symlinks that lead out of the root, nowhere, or round in a loop
    "symlinked_folder_outside_the_root": Case(
        {"people": Symlink("../outside")}, [f"people: {OUTSIDE}"], hint=None
    ),
    "symlinked_yaml_file_outside_the_root": Case(
        {"users.yaml": Symlink("../outside/users.yaml")}, [f"users.yaml: {OUTSIDE}"]
    ),
    "symlinked_settings_outside_the_root": Case(
        {"provgit.yaml": Symlink("../outside/provgit.yaml")}, [f"provgit.yaml: {OUTSIDE}"]
    ),
    "symlinked_settings_broken": Case(
        {"provgit.yaml": Symlink("settings/provgit.yaml")},
        ["provgit.yaml: symlink to 'settings/provgit.yaml' points to nothing"],
    ),
    "symlinked_settings_loop": Case(
        {"provgit.yaml": Symlink("provgit.yaml")}, ["provgit.yaml: symlink loop"]
    ),
    "symlinked_folder_absolute_path_outside": Case({"site": Symlink("/tmp")}, [f"site: {OUTSIDE}"]),
    "symlink_loop_between_two_files": Case(
        {"a.yaml": Symlink("b.yaml"), "b.yaml": Symlink("a.yaml")},
        ["a.yaml: symlink loop", "b.yaml: symlink loop"],
    ),
    "symlink_to_itself": Case({"self.yaml": Symlink("self.yaml")}, ["self.yaml: symlink loop"]),
    "symlinked_folder_that_contains_the_link": Case(
        {"site/ok.yaml": "departments: []\n", "site/up": Symlink("..")},
        ["site/up: symlink loop: '..' is a folder that contains this link"],
    ),
    "symlink_to_the_config_root_itself": Case({"root": Symlink(".")}, ["root: symlink loop"]),
    "broken_symlinked_yaml_file": Case(
        {"gone.yaml": Symlink("missing.yaml")}, ["gone.yaml: points to nothing (broken link)"]
    ),
    "broken_symlinked_folder": Case(
        {"people": Symlink("archive/people")}, ["people: points to nothing (broken link)"]
    ),
    "same_folder_reached_twice": Case(
        {"site/ok.yaml": "departments: [{name: Support}]\n", "zz-alias": Symlink("site")},
        ["zz-alias: the same folder as site (through a symlink)"],
    ),
    "same_file_reached_twice": Case(
        {"zz-copy.yaml": Symlink("telephony.yaml")},
        ["zz-copy.yaml: the same file as telephony.yaml (through a symlink)"],
    ),
    "named_pipe_called_yaml": Case({"pipe.yaml": Fifo()}, ["pipe.yaml: not a regular file"]),
    # -- the loader: every error at a line and column
    "nul_byte": Case(
        {CASE: b"departments:\n  - name: Sa\x00les\n"},
        ["site/case.yaml:2:13: unacceptable character #x0000"],
        hint="YAML text must be UTF-8",
    ),
    "control_character": Case(
        {CASE: b"departments:\n  - name: Sales\n  - name: Bell\x07\n"},
        ["site/case.yaml:3:15: unacceptable character #x0007"],
    ),
    "nul_byte_after_accented_text_counts_characters": Case(
        {CASE: "departments:\n  - name: Café\x00\n".encode()},
        ["site/case.yaml:2:15: unacceptable character #x0000"],
    ),
    "utf16_file": Case(
        {CASE: "departments: []\n".encode("utf-16")},
        ["site/case.yaml:1:1: not valid UTF-8"],
    ),
    "tab_indentation": Case(
        {CASE: "departments:\n\t- name: Sales\n"},
        ["site/case.yaml:2:1: YAML syntax error"],
        hint="YAML forbids tabs for indentation; use spaces",
    ),
    "tab_inside_a_block": Case(
        {CASE: "departments:\n  - name: Sales\n\t  description: x\n"},
        ["site/case.yaml:3:1: YAML syntax error"],
        hint="YAML forbids tabs for indentation; use spaces",
    ),
    "deep_flow_nesting": Case(
        {CASE: "x: " + "[" * 3000 + "]" * 3000 + "\n"},
        ["site/case.yaml:1:67: nested more than 64 levels deep"],
    ),
    "deep_block_nesting": Case(
        {CASE: "".join(f"{'  ' * i}k{i}:\n" for i in range(80))},
        ["site/case.yaml:65:129: nested more than 64 levels deep"],
    ),
    # -- provgit.yaml is required
    "settings_missing": Case(
        {},
        ["no provgit.yaml in", "is this the config directory?"],
        usage=True,
        remove=("provgit.yaml",),
    ),
    "settings_named_in_capitals": Case(
        {"Provgit.YAML": "version: 1\nnetwork: test\n"},
        ["no provgit.yaml in", "rename Provgit.YAML to provgit.yaml"],
        usage=True,
        remove=("provgit.yaml",),
    ),
    "settings_with_yml_extension": Case(
        {"provgit.yml": "version: 1\nnetwork: test\n"},
        ["rename provgit.yml to provgit.yaml"],
        usage=True,
        remove=("provgit.yaml",),
    ),
    "a_subfolder_given_as_the_config": Case(
        {"people/a.yaml": user(), "people/b.yaml": user().replace("bob", "carl")},
        ["no provgit.yaml in", "people", "create it with at least 'version: 1'"],
        usage=True,
        path="people",
    ),
    "settings_empty": Case(
        {"provgit.yaml": ""},
        ["provgit.yaml:1:1: provgit.yaml is empty; the network's settings are required"],
        hint="version: 1",
    ),
    "settings_only_comments": Case(
        {"provgit.yaml": "# settings to come\n---\n"},
        ["provgit.yaml:1:1: provgit.yaml is empty"],
    ),
    "settings_null_document": Case(
        {"provgit.yaml": "~\n"}, ["provgit.yaml:1:1: provgit.yaml is empty"]
    ),
    # -- secret files lie outside the config root
    "voicemail_pin_file_inside_the_root": Case(
        {CASE: user("voicemail_pin: {file: '{root}/pins/bob'}")},
        ["site/case.yaml:6:5: secret file {root}/pins/bob is inside the config root"],
        hint="move the file outside the config repository",
    ),
    "hot_desk_pin_file_inside_the_root": Case(
        {
            CASE: user().replace(
                '      - dn: "2000"',
                "      - dn: \"2000\"\n        hot_desk_pin: {file: '{root}/.pins'}",
            )
        },
        ["site/case.yaml:8:9: secret file {root}/.pins is inside the config root"],
    ),
    "element_token_file_inside_the_root": Case(
        {CASE: element("connection: {token: {file: '{root}/site/token'}}")},
        ["site/case.yaml:5:18: secret file {root}/site/token is inside the config root"],
    ),
    "settings_secret_key_file_inside_the_root": Case(
        {"provgit.yaml": "version: 1\nnetwork: test\nsecret_key: {file: '{root}/key'}\n"},
        ["provgit.yaml:3:1: secret file {root}/key is inside the config root"],
    ),
    "secret_file_reaching_the_root_through_a_symlink": Case(
        {CASE: user("voicemail_pin: {file: '{tmp}/into-root/pins/bob'}")},
        ["site/case.yaml:6:5: secret file {tmp}/into-root/pins/bob is inside the config root"],
    ),
    # -- element connections: http(s) URLs, element files inside the state directory
    "element_url_file_scheme": Case(
        {CASE: element("driver: http", "connection: {url: 'file:///etc/passwd'}")},
        ["site/case.yaml:6:18: 'url' must be an http:// or https:// URL with a host"],
    ),
    "element_url_ftp": Case(
        {CASE: element("driver: http", "connection: {url: 'ftp://files.example.net/'}")},
        ["site/case.yaml:6:18: 'url' must be an http:// or https:// URL"],
    ),
    "element_url_without_host": Case(
        {CASE: element("driver: http", "connection: {url: 'http://'}")},
        ["site/case.yaml:6:18: 'url' must be an http:// or https:// URL with a host"],
    ),
    "element_url_without_scheme": Case(
        {CASE: element("driver: http", "connection: {url: 'localhost:8080'}")},
        ["site/case.yaml:6:18: 'url' must be an http:// or https:// URL"],
    ),
    "element_path_absolute": Case(
        {CASE: element("connection: {path: /etc/passwd}")},
        ["site/case.yaml:5:18: 'path' must be relative to the state directory"],
        hint="allow_outside_state_dir: true",
    ),
    "element_path_climbing_out": Case(
        {CASE: element("connection: {path: ../../home/x.sqlite}")},
        ["site/case.yaml:5:18: 'path' must be relative to the state directory"],
    ),
    "element_path_in_home": Case(
        {CASE: element("connection: {path: ~/x.sqlite}")},
        ["site/case.yaml:5:18: 'path' must be relative to the state directory"],
    ),
    "element_path_allowed_out_only_when_said_before": Case(
        {CASE: element("connection: {allow_outside_state_dir: false, path: /tmp/x.sqlite}")},
        ["site/case.yaml:5:50: 'path' must be relative to the state directory"],
    ),
    # -- reports.dir: the repository keeps the reports in the config root or state dir
    "reports_dir_absolute": Case(
        {"provgit.yaml": "version: 1\nnetwork: test\nreports: {dir: /etc/cron.d}\n"},
        ["provgit.yaml:3:11: 'dir' must be a directory inside the config root or the state"],
        hint="set PROVGIT_REPORTS_DIR",
    ),
    "reports_dir_climbing_out": Case(
        {"provgit.yaml": "version: 1\nnetwork: test\nreports:\n  dir: .provgit/../../..\n"},
        ["provgit.yaml:4:3: 'dir' must be a directory inside the config root or the state"],
    ),
    "reports_dir_in_home": Case(
        {"provgit.yaml": "version: 1\nnetwork: test\nreports: {dir: ~/.ssh}\n"},
        ["provgit.yaml:3:11: 'dir' must be a directory inside the config root"],
    ),
    "reports_dir_in_git_hooks": Case(
        {"provgit.yaml": "version: 1\nnetwork: test\nreports: {dir: .git/hooks}\n"},
        ["provgit.yaml:3:11: 'dir' must be a directory inside the config root"],
    ),
    # -- typed options: YAML 1.1 booleans are refused with a hint
    "cos_option_yaml11_no": Case(
        {CASE: cos("{toll_denied: no}")},
        ["site/case.yaml:3:15: 'toll_denied' must be true or false, got 'no' (text)"],
        hint="write false; YAML 1.2 reads `no` as the string 'no'",
    ),
    "cos_option_yaml11_yes_capitalised": Case(
        {CASE: cos("{twinning: Yes}")},
        ["site/case.yaml:3:15: 'twinning' must be true or false, got 'Yes' (text)"],
        hint="write true",
    ),
    "cos_option_yaml11_off_unknown_name": Case(
        {CASE: cos("{night_service: OFF}")},
        ["site/case.yaml:3:15: 'night_service' is the text 'OFF', not a boolean"],
        hint="write false",
    ),
    "cos_option_block_style_on": Case(
        {CASE: "classes_of_service:\n  - number: 9\n    options:\n      acd_agent: on\n"},
        ["site/case.yaml:4:7: 'acd_agent' must be true or false, got 'on' (text)"],
    ),
    "cos_boolean_option_as_number": Case(
        {CASE: cos("{toll_denied: 1}")},
        ["site/case.yaml:3:15: 'toll_denied' must be true or false, got 1 (a number)"],
    ),
    "cos_boolean_option_as_quoted_text": Case(
        {CASE: cos("{call_forward_external: 'false'}")},
        ["site/case.yaml:3:15: 'call_forward_external' must be true or false, got 'false' (text)"],
        hint="remove the quotes: call_forward_external: false",
    ),
    "cos_option_float_is_one_error_not_three": Case(
        {CASE: cos("{max_calls: 2.5}")},
        ["site/case.yaml:3:15: 'max_calls' must be true or false, a whole number or text, got 2.5"],
    ),
    "cos_option_list": Case(
        {CASE: cos("{features: [a, b]}")},
        ["site/case.yaml:3:15: 'features' must be true or false, a whole number or text, got list"],
    ),
    "element_option_yaml11_yes": Case(
        {CASE: element("connection: {options: {verify_tls: yes}}")},
        ["site/case.yaml:5:18: option 'verify_tls' is the text 'yes', not a boolean"],
        hint="write true",
    ),
    "element_nested_option_yaml11_off": Case(
        {CASE: element("connection: {options: {tls: {verify: off}}}")},
        ["site/case.yaml:5:18: option 'verify' is the text 'off', not a boolean"],
    ),
}


def _place(text: str, tmp: Path, root: Path) -> str:
    return text.replace("{root}", str(root)).replace("{tmp}", str(tmp))


def _build(tmp: Path, case: Case) -> Path:
    """The base network plus the case in tmp/config; things outside the root beside it."""
    root = tmp / "config"
    root.mkdir()
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "users.yaml").write_text(user())
    (outside / "provgit.yaml").write_text("version: 1\nnetwork: test\n")
    os.symlink(root, tmp / "into-root")
    plain: dict[str, str | bytes] = {}
    for rel, content in case.files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Symlink):
            os.symlink(content.target, p)
        elif isinstance(content, Fifo):
            os.mkfifo(p)
        else:
            plain[rel] = _place(content, tmp, root) if isinstance(content, str) else content
    base = {k: v for k, v in BASE.items() if k not in case.files and k not in case.remove}
    write(root, {**base, **plain})
    return root


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    # An uncaught exception (a traceback for the user) is not a SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _located(doc: dict[str, object]) -> list[tuple[str, str]]:
    out = []
    for d in doc["diagnostics"]:  # type: ignore[attr-defined]
        where = f"{d['file']}:{d['line']}:{d['column']}" if d["line"] else d["file"]
        out.append((where, f"{where}: {d['message']}"))
    return out


def _element_files(state: Path) -> dict[str, object]:
    """Every record in every embedded element file under the state directory."""
    found: dict[str, object] = {}
    for db in sorted((state / "elements").glob("*.sqlite")) if state.exists() else []:
        records = read_store(db)
        if any(records.values()):
            found[db.name] = records
    return found


@pytest.mark.parametrize("name", list(CASES))
def test_bad_source_input_exits_1_located_and_reaches_no_element(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    monkeypatch.setenv("ALICE_PIN", "4321")
    root = _build(tmp_path, case)
    target = str(root / case.path)
    code, out = _invoke("validate", target, "--no-cache", "--format", "json")
    assert code == 1, out
    expected = [_place(e, tmp_path, root) for e in case.expected]
    if case.usage:
        flat = " ".join(out.split())
        for part in expected:
            assert part in flat, out
        assert "error:" not in out.lower().replace("error: no provgit", "")
        # A reading command on the wrong folder leaves nothing behind.
        assert not (root / case.path / ".provgit").exists()
    else:
        doc = json.loads(out)
        got = _located(doc)
        for want in expected:
            where, _, text = want.partition(": ")
            assert any(w == where and text in g for w, g in got), f"{want!r} not in {got}"
        assert len(got) == len(expected), f"unexpected extra diagnostics: {got}"
        if case.hint is not None:
            hints = [str(d.get("hint") or "") for d in doc["diagnostics"]]
            assert any(case.hint in h for h in hints), hints
    state = tmp_path / "state"
    code, out = _invoke("reconcile", target, "--state-dir", str(state))
    assert code == 1, out
    assert _element_files(state) == {}


def test_the_base_network_does_reach_the_elements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the table: without the bad input, reconcile writes records."""
    monkeypatch.setenv("ALICE_PIN", "4321")
    root = _build(tmp_path, Case({}, []))
    state = tmp_path / "state"
    code, out = _invoke("reconcile", str(root), "--state-dir", str(state))
    assert code == 0, out
    assert "mc.sqlite" in _element_files(state)


def test_there_are_at_least_40_source_and_loader_cases() -> None:
    assert len(CASES) >= 40
