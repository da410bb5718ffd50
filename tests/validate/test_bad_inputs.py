"""Every bad input names the file, line, column and the problem.

Each case writes the small valid base network (see `base.py`) plus, usually, one
file `site/case.yaml` that breaks it in one way, and lists every problem expected
as "file:line:column: part of the message". Nothing else may be reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from .base import Symlink, summary, validate


@dataclass(frozen=True)
class Case:
    files: dict[str, str | bytes | Symlink]
    expected: list[str]  # "file:line:col: part of the message"
    hint: str | None = None  # part of some diagnostic's hint


# A user valid against the base network. Lines: 2 login_id, 3 first_name,
# 4 last_name, 5 host, then `lines` from 6, then services (each item at column 9).
def user(*lines: str, login: str = "bob", services: tuple[str, ...] = ('dn: "2000"',)) -> str:
    out = ["users:", f"  - login_id: {login}", "    first_name: Bob", "    last_name: Jones"]
    out += ["    host: cs1", *(f"    {x}" for x in lines), "    services:"]
    out += [f"      - {s}" for s in services]
    return "\n".join(out) + "\n"


def element(*lines: str) -> str:
    return "elements:\n  - name: cs4\n" + "".join(f"    {x}\n" for x in lines)


# After the base files: the walk yields a folder's files before its subfolders',
# so base records come first and a case's record is the duplicate.
CASE = "site/case.yaml"

CASES: dict[str, Case] = {
    # -- YAML and file level --------------------------------------------------
    "broken_yaml": Case(
        {CASE: "departments:\n  - name: [Sales\nlocations: []\n"},
        ["site/case.yaml:3:10: YAML syntax error"],
    ),
    "duplicate_key": Case(
        {CASE: "departments:\n  - name: Support\n    name: Service\n"},
        ["site/case.yaml:3:5: duplicate key 'name'"],
        hint="each key may appear once",
    ),
    "alias_bomb": Case(
        {
            CASE: 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
            + "".join(
                f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, n in zip("abcdefgh", "bcdefghi", strict=True)
            )
        },
        ["site/case.yaml:5:36: alias bomb"],
    ),
    "unsupported_tag": Case(
        {CASE: "departments:\n  - name: !!python/name:os.system x\n"},
        ["site/case.yaml:2:11: unsupported tag"],
    ),
    "non_utf8_file": Case(
        {CASE: b"departments:\n  - name: Caf\xe9\n"},
        ["site/case.yaml:2:14: not valid UTF-8 (byte 0xe9)"],
        hint="save the file as UTF-8",
    ),
    "non_mapping_document": Case(
        {CASE: "- Sales\n- Support\n"},
        ["site/case.yaml:1:1: a config document must be a mapping of kinds to lists"],
    ),
    "kind_not_a_list": Case(
        {CASE: "departments:\n  name: Support\n"},
        ["site/case.yaml:1:1: 'departments' must be a list of records"],
    ),
    "unknown_kind": Case(
        {CASE: "user:\n  - login_id: bob\n"},
        ["site/case.yaml:1:1: unknown kind 'user'"],
        hint="did you mean 'users'?",
    ),
    # -- one record on its own -------------------------------------------------
    "wrong_type": Case(
        {CASE: "classes_of_service:\n  - number: seven\n"},
        ["site/case.yaml:2:5: 'number' must be a whole number, got 'seven' (text)"],
    ),
    "dn_as_number": Case(
        {CASE: user(services=("dn: 2000",))},
        ["site/case.yaml:7:9: 'dn' must be text, got 2000 (a number)"],
        hint='quote it to keep it as text: dn: "2000"',
    ),
    "unknown_field": Case(
        {CASE: user("emial: bob@example.com")},
        ["site/case.yaml:6:5: unknown field 'emial'"],
        hint="did you mean 'email'?",
    ),
    "missing_field": Case(
        {CASE: "roles:\n  - name: Agent\n    description: no template\n"},
        ["site/case.yaml:2:5: missing required field 'template'"],
    ),
    "secret_literal": Case(
        {CASE: user('voicemail_pin: "1234"')},
        ["site/case.yaml:6:5: a secret must be a reference, not a value"],
    ),
    "secret_relative_file": Case(
        {CASE: user("voicemail_pin: {file: pins/bob}")},
        ["site/case.yaml:6:5: a secret file must be an absolute path outside the repository"],
    ),
    "cos_zero": Case(
        {CASE: "classes_of_service:\n  - number: 0\n"},
        ["site/case.yaml:2:5: 'number' is 0; it must be at least 1"],
    ),
    "cos_reserved": Case(
        {CASE: "classes_of_service:\n  - number: 105\n"},
        ["site/case.yaml:2:5: class of service 105 is reserved by the call server (100-110)"],
    ),
    "cos_over_110": Case(
        {CASE: "classes_of_service:\n  - number: 111\n"},
        ["site/case.yaml:2:5: 'number' is 111; it must be at most 110"],
    ),
    "cos_comment_too_long": Case(
        {CASE: "classes_of_service:\n  - number: 9\n    comment: international calls\n"},
        ["site/case.yaml:3:5: 'comment' is 19 characters long; the maximum is 15"],
    ),
    "ceid_out_of_range": Case(
        {CASE: element("type: ivr", "ceid: 1000")},
        ["site/case.yaml:4:5: 'ceid' is 1000; it must be at most 999"],
    ),
    "dn_bad_characters": Case(
        {CASE: user(services=('dn: "12a4"',))},
        ["site/case.yaml:7:9: directory number '12a4' must be 1-7 characters of 0-9, * and #"],
    ),
    "dn_too_long": Case(
        {CASE: user(services=('dn: "12345678"',))},
        ["site/case.yaml:7:9: directory number '12345678' must be 1-7 characters"],
    ),
    "login_too_short": Case(
        {CASE: user(login="b")},
        ["site/case.yaml:2:5: 'login_id' needs at least 2 character(s)"],
    ),
    "login_too_long": Case(
        {CASE: user(login="b" * 114)},
        ["site/case.yaml:2:5: 'login_id' is 114 characters long; the maximum is 113"],
    ),
    "role_name_too_long": Case(
        {CASE: f"roles:\n  - name: {'R' * 69}\n    template: Basic\n"},
        ["site/case.yaml:2:5: 'name' is 69 characters long; the maximum is 68"],
    ),
    "directory_name_too_long": Case(
        {CASE: user("directory_name: Jones-Whitfield, Robert")},
        ["site/case.yaml:6:5: 'directory_name' is 23 characters long; the maximum is 21"],
    ),
    "derived_directory_name_too_long": Case(
        {CASE: user().replace("Jones", "Jones-Whitfield-Smythe")},
        [
            "site/case.yaml:4:5: directory name 'Jones-Whitfield-Smythe, Bob' (from last_name, "
            "first_name) is 27 characters; call servers allow 21"
        ],
        hint='set directory_name, e.g. directory_name: "Jones-Whitfield-Smyth"',
    ),
    "template_four_phones": Case(
        {
            CASE: "templates:\n  - name: Big\n    phones:\n"
            + "".join(
                f"      - {{label: p{i}, device_type: '6920', primary: {str(i == 0).lower()}}}\n"
                for i in range(4)
            )
        },
        ["site/case.yaml:3:5: 'phones' has 4 items; at most 3 are allowed"],
    ),
    "template_no_primary": Case(
        {
            CASE: "templates:\n  - name: NoPrimary\n    phones:\n"
            "      - {label: desk, device_type: '6920'}\n"
        },
        ["site/case.yaml:2:5: a template needs exactly one primary phone (found 0)"],
    ),
    "template_two_primaries": Case(
        {
            CASE: "templates:\n  - name: TwoPrimaries\n    phones:\n"
            "      - {label: desk, device_type: '6920', primary: true}\n"
            "      - {label: soft, device_type: softphone, primary: true}\n"
        },
        ["site/case.yaml:2:5: exactly one primary phone (found 2)"],
    ),
    "user_nine_services": Case(
        {CASE: user(services=tuple(f'dn: "20{i:02}"' for i in range(9)))},
        ["site/case.yaml:6:5: 'services' has 9 items; at most 8 are allowed"],
    ),
    "user_no_services": Case(
        {CASE: user(services=()).replace("services:", "services: []")},
        ["site/case.yaml:6:5: 'services' needs at least 1 item(s)"],
    ),
    "user_duplicate_phone_label": Case(
        {CASE: user(services=('{dn: "2000", label: desk}', '{dn: "2001", label: desk}'))},
        ["site/case.yaml:2:5: phone labels must be unique per user: desk"],
    ),
    "accented_department": Case(
        {CASE: "departments:\n  - name: Café\n"},
        ["site/case.yaml:2:5: contains accented or non-ASCII characters (é)"],
    ),
    "prompt_path_traversal": Case(
        {CASE: "prompts:\n  - name: Bye\n    file: ../x.wav\n"},
        ["site/case.yaml:3:5: must stay inside the config root ('..' is not allowed)"],
    ),
    "prompt_absolute_path": Case(
        {CASE: "prompts:\n  - name: Bye\n    file: /etc/passwd\n"},
        ["site/case.yaml:3:5: must be a path relative to the config root"],
    ),
    "workflow_step_missing_prompt": Case(
        {
            CASE: "workflows:\n  - name: W\n    media_servers: [ms1]\n    steps:\n"
            "      - action: play\n"
        },
        ["site/case.yaml:5:9: a play step needs prompt"],
    ),
    "menu_choice_key_not_quoted": Case(
        {
            CASE: "workflows:\n  - name: W\n    media_servers: [ms1]\n    steps:\n"
            "      - action: menu\n        prompt: Welcome\n"
            "        choices: {1: 'transfer:1000'}\n"
        },
        # Column 22 is the value: locate() matches a non-text key only at its value.
        ["site/case.yaml:7:22: key 1 in 'choices' must be text, got 1 (a number)"],
        hint='quote the key: "1": …',
    ),
    "prompt_path_with_backslashes": Case(
        {CASE: "prompts:\n  - name: Bye\n    file: 'audio\\bye.wav'\n"},
        ["site/case.yaml:3:5: 'file': use forward slashes in paths"],
    ),
    "element_http_without_url": Case(
        {CASE: element("type: ivr", "ceid: 9", "driver: http")},
        ["site/case.yaml:2:5: the http driver needs connection.url"],
    ),
    # -- prompt audio ------------------------------------------------------------
    "prompt_audio_missing": Case(
        {CASE: "prompts:\n  - name: Bye\n    file: audio/bye.wav\n"},
        ["site/case.yaml:3:5: audio file 'audio/bye.wav' not found in the config root"],
    ),
    "prompt_audio_symlink_out_of_root": Case(
        {
            CASE: "prompts:\n  - name: Bye\n    file: audio/bye.wav\n",
            "audio/bye.wav": Symlink("../../outside.wav"),
        },
        ["site/case.yaml:3:5: audio file 'audio/bye.wav' not found in the config root"],
        hint="symlink out of the config root",
    ),
    "prompt_audio_not_wav": Case(
        {
            CASE: "prompts:\n  - name: Bye\n    file: audio/bye.wav\n",
            "audio/bye.wav": b"ID3\x03\x00 this is an mp3",
        },
        ["site/case.yaml:3:5: audio file 'audio/bye.wav' is not a WAV file"],
    ),
    # -- uniqueness -----------------------------------------------------------------
    "second_micollab": Case(
        {CASE: element("type: micollab", "ceid: 9")},
        [
            "site/case.yaml:3:5: a second MiCollab 'cs4': "
            "the network already has 'mc' at network.yaml:3:5"
        ],
    ),
    "ceid_duplicate": Case(
        {CASE: element("type: ivr", "ceid: 2")},
        ["site/case.yaml:4:5: CEID 2 is already used by element 'cs1' at network.yaml:7:5"],
        hint="6 is free",
    ),
    "dn_duplicate_across_files": Case(
        {CASE: user(services=('dn: "1000"',))},
        [
            "site/case.yaml:7:9: directory number 1000 is already used by user 'alice' "
            "at telephony.yaml:34:9"
        ],
    ),
    "dn_duplicate_same_user": Case(
        {CASE: user(services=('dn: "2000"', 'dn: "2000"'))},
        [
            "site/case.yaml:8:9: directory number 2000 is already used by this user "
            "at site/case.yaml:7:9"
        ],
    ),
    "login_equals_other_users_dn": Case(
        {CASE: user(login='"1000"')},
        [
            "site/case.yaml:2:5: login id '1000' equals the directory number of user 'alice' "
            "at telephony.yaml:34:9"
        ],
    ),
    "login_duplicate": Case(
        {CASE: user(login="alice")},
        ["site/case.yaml:2:5: duplicate user 'alice': already defined at telephony.yaml:25:5"],
    ),
    "role_duplicate_ignoring_case": Case(
        {CASE: "roles:\n  - name: STAFF\n    template: Basic\n"},
        [
            "site/case.yaml:2:5: duplicate role 'STAFF': already defined at telephony.yaml:22:5 "
            "(as 'Staff'; role names ignore case)"
        ],
    ),
    "prompt_duplicate_name_and_language": Case(
        {CASE: "prompts:\n  - name: Welcome\n    language: fr-CA\n    file: audio/welcome.wav\n"},
        ["site/case.yaml:2:5: duplicate prompt 'Welcome:fr-CA'"],
    ),
    "no_micollab_with_users": Case(
        {
            "network.yaml": "elements:\n  - name: cs1\n    type: mivb\n    ceid: 2\n"
            "    cluster: east\n    admin_group: ag1\n"
        },
        ["telephony.yaml:25:5: users live on the MiCollab, but no element has type micollab"],
        hint="add an element with type: micollab",
    ),
    # -- references ------------------------------------------------------------------
    "user_role_dangling": Case(
        {CASE: user("role: Staf")},
        ["site/case.yaml:6:5: role 'Staf' is not defined"],
        hint="did you mean 'Staff'?",
    ),
    "user_template_dangling": Case(
        {CASE: user("template: Premium")},
        ["site/case.yaml:6:5: template 'Premium' is not defined"],
        hint="define it under templates:",
    ),
    "user_department_dangling": Case(
        {CASE: user("department: Sale")},
        ["site/case.yaml:6:5: department 'Sale' is not defined"],
        hint="did you mean 'Sales'?",
    ),
    "user_location_dangling": Case(
        {CASE: user("location: Toronto")},
        ["site/case.yaml:6:5: location 'Toronto' is not defined"],
    ),
    "user_host_dangling": Case(
        {CASE: user().replace("host: cs1", "host: cs9")},
        ["site/case.yaml:5:5: host element 'cs9' is not defined"],
        hint="did you mean 'cs1', 'cs2' or 'cs3'?",
    ),
    "user_host_not_call_server": Case(
        {CASE: user().replace("host: cs1", "host: ivr1")},
        ["site/case.yaml:5:5: host 'ivr1' has type ivr; users are hosted on a call server"],
    ),
    "user_cos_day_dangling": Case(
        {CASE: user(services=('dn: "2000"\n        cos: {day: 7}',))},
        ["site/case.yaml:8:15: class of service 7 (day) is not defined"],
        hint="define classes_of_service number 7",
    ),
    "user_cos_night2_dangling": Case(
        {CASE: user(services=('dn: "2000"\n        cos: {day: 1, night2: 8}',))},
        ["site/case.yaml:8:23: class of service 8 (night2) is not defined"],
    ),
    "user_cor_dangling": Case(
        {CASE: user(services=('dn: "2000"\n        cor: {day: 1, night1: 3}',))},
        ["site/case.yaml:8:23: COR group 3 (night1) is not defined"],
        hint="define cor_groups number 3",
    ),
    "role_template_dangling": Case(
        {CASE: "roles:\n  - name: Agent\n    template: Basc\n"},
        ["site/case.yaml:3:5: template 'Basc' is not defined"],
        hint="did you mean 'Basic'?",
    ),
    "template_admin_group_dangling": Case(
        {
            CASE: "templates:\n  - name: T2\n    admin_group: ag3\n    phones:\n"
            "      - {label: desk, device_type: '6920', primary: true}\n"
        },
        ["site/case.yaml:3:5: admin group 'ag3' is not defined"],
    ),
    "template_cos_dangling": Case(
        {
            CASE: "templates:\n  - name: T2\n    cos: {day: 9}\n    phones:\n"
            "      - {label: desk, device_type: '6920', primary: true}\n"
        },
        ["site/case.yaml:3:11: class of service 9 (day) is not defined"],
    ),
    "partner_dangling": Case(
        {CASE: element("type: mivb", "ceid: 9", "cluster: west", "partner: cs5")},
        ["site/case.yaml:6:5: partner element 'cs5' is not defined"],
        # Never itself, though 'cs4' is as close as the others.
        hint="did you mean 'cs1', 'cs2' or 'cs3'?",
    ),
    "partner_not_call_server": Case(
        {CASE: element("type: mivb", "ceid: 9", "cluster: west", "partner: ivr1")},
        ["site/case.yaml:6:5: partner 'ivr1' has type ivr"],
    ),
    "partner_other_cluster": Case(
        {CASE: element("type: mivb", "ceid: 9", "cluster: west", "partner: cs1")},
        ["site/case.yaml:6:5: partner 'cs1' is in cluster 'east', not 'west'"],
    ),
    "partner_not_mutual": Case(
        {CASE: element("type: mivb", "ceid: 9", "cluster: west", "partner: cs3")},
        ["site/case.yaml:6:5: the pairing is not mutual: partner 'cs3' names no partner"],
        hint="set partner: cs4 on element 'cs3'",
    ),
    "workflow_references_dangling": Case(
        {
            CASE: """\
workflows:
  - name: Support
    media_servers: [ms1, ms2]
    steps:
      - action: play
        prompt: Welcom
      - action: subroutine
        subroutine: Gret
      - action: menu
        prompt: Welcome
        choices:
          "1": "subroutine:Missing"
"""
        },
        [
            "site/case.yaml:3:26: IVR media server 'ms2' is not defined",
            "site/case.yaml:6:9: prompt 'Welcom' is not defined",
            "site/case.yaml:8:9: subroutine 'Gret' is not defined",
            "site/case.yaml:12:11: subroutine 'Missing' is not defined",
        ],
        hint="did you mean 'Welcome'?",
    ),
    "workflow_calls_subroutine_of_other_media_type": Case(
        {
            CASE: "workflows:\n  - name: Voice\n    media_servers: [ms1]\n    steps:\n"
            "      - action: subroutine\n        subroutine: ChatGreet\n"
        },
        [
            "site/case.yaml:6:9: subroutine 'ChatGreet' handles chat, "
            "but this workflow handles voice"
        ],
    ),
    "subroutine_references_dangling": Case(
        {
            CASE: "subroutines:\n  - name: Outer\n    steps:\n"
            "      - {action: play, prompt: Goodbye}\n"
            "      - {action: subroutine, subroutine: Inner}\n"
        },
        [
            "site/case.yaml:4:24: prompt 'Goodbye' is not defined",
            "site/case.yaml:5:30: subroutine 'Inner' is not defined",
        ],
    ),
    # -- settings ----------------------------------------------------------------------
    "settings_unknown_names": Case(
        {
            "provgit.yaml": """\
version: 1
network: test
sharing:
  user: {scope: cluster}
safety:
  prune: [users, template]
  protected: [users/alice, user/bob, nokey]
  elements:
    cs9: {max_deletes: {count: 1}}
  kinds:
    role: {max_updates: {count: 1}}
"""
        },
        [
            "provgit.yaml:4:3: sharing: unknown kind 'user'",
            "provgit.yaml:6:18: safety.prune: unknown kind 'template'",
            "provgit.yaml:7:28: safety.protected: unknown kind 'user'",
            "provgit.yaml:7:38: safety.protected: 'nokey' is not of the form kind/key",
            "provgit.yaml:9:5: safety.elements: unknown element 'cs9'",
            "provgit.yaml:11:5: safety.kinds: unknown kind 'role'",
        ],
        hint="did you mean 'templates'?",
    ),
    "settings_wrong_type": Case(
        {"provgit.yaml": "version: 1\nnetwork: test\nalarms:\n  minor: lots\n"},
        ["provgit.yaml:4:3: 'minor' must be a whole number"],
    ),
    "settings_observe_out_of_range": Case(
        {
            "provgit.yaml": "version: 1\nnetwork: test\nobserve:\n  full_read_hours: 0\n"
            "  watch_full_read_minutes: often\n  full_reads: 3\n"
        },
        [
            "provgit.yaml:4:3: 'full_read_hours' is 0; it must be more than 0.0",
            "provgit.yaml:5:3: 'watch_full_read_minutes' must be a number, got 'often' (text)",
            "provgit.yaml:6:3: unknown field 'full_reads'",
        ],
    ),
    "settings_unknown_field": Case(
        {"provgit.yaml": "version: 1\nnetwork: test\nsaftey: {}\n"},
        ["provgit.yaml:3:1: unknown field 'saftey'"],
        hint="did you mean 'safety'?",
    ),
}


def _write_symlinks(root: Path, files: dict[str, str | bytes | Symlink]) -> dict[str, str | bytes]:
    plain: dict[str, str | bytes] = {}
    for rel, content in files.items():
        if isinstance(content, Symlink):
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(content.target, p)
        else:
            plain[rel] = content
    return plain


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_reported_at_its_file_line_and_column(tmp_path: Path, case: Case) -> None:
    root = tmp_path / "config"
    root.mkdir()
    # Something real outside the root, so a symlink out of it resolves.
    (tmp_path / "outside.wav").write_bytes(b"RIFF\0\0\0\0WAVE")
    result = validate(root, _write_symlinks(root, case.files))
    got = summary(result.diagnostics)
    assert not result.ok
    for want in case.expected:
        where, _, text = want.partition(": ")
        hits = [g for g in got if g.startswith(where + ": ") and text in g]
        assert hits, f"expected {want!r}; got {got}"
    assert len(got) == len(case.expected), f"unexpected extra diagnostics: {got}"
    if case.hint is not None:
        hints = [d.hint or "" for d in result.diagnostics]
        assert any(case.hint in h for h in hints), hints


def test_there_are_at_least_35_distinct_bad_inputs() -> None:
    assert len(CASES) >= 35
