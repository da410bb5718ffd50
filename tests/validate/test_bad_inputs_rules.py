"""Login ids, IVR menus and cycles, prompt audio, and one error per problem.

Same table form as `test_bad_inputs.py` (base network plus one breaking file),
run through the real `provgit validate --format json`: each case asserts the
exit code, every problem as "file:line:column: part of the message" and
nothing else, and where given a hint.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from provgit.cli import main
from provgit.render import plan_markdown
from provgit.render.escape import md_code, md_text

from .base import BASE, IVR, NETWORK, TELEPHONY, wav, write
from .test_bad_inputs import CASE, Case, _write_symlinks, element, user

SAMPLE = Path(__file__).resolve().parents[2] / "sample-config"


def users(*logins: str) -> str:
    """Several valid users, one per login, DNs 2000, 2001, …; login_id on lines 2, 8, 14…"""
    out = ["users:"]
    for i, login in enumerate(logins):
        out += [
            f"  - login_id: {login}",
            "    first_name: Bob",
            "    last_name: Jones",
            "    host: cs1",
            "    services:",
            f'      - dn: "{2000 + i}"',
        ]
    return "\n".join(out) + "\n"


def subroutines(calls: dict[str, list[str]]) -> str:
    """Subroutines calling others: name -> callees (line numbers in the cases)."""
    out = ["subroutines:"]
    for name, callees in calls.items():
        out += [f"  - name: {name}", "    steps:"]
        out += [f"      - {{action: subroutine, subroutine: {c}}}" for c in callees]
        if not callees:
            out.append("      - {action: hangup}")
    return "\n".join(out) + "\n"


def menu(choices: str, action: str = "menu") -> str:
    """A workflow whose second line of step 1 holds `choices` (line 7)."""
    return (
        "workflows:\n  - name: W\n    media_servers: [ms1]\n    steps:\n"
        f"      - action: {action}\n        prompt: Welcome\n        choices: {choices}\n"
    )


def prompt(audio: bytes) -> dict[str, str | bytes]:
    return {CASE: "prompts:\n  - name: Bye\n    file: audio/bye.wav\n", "audio/bye.wav": audio}


def riff(*chunks: tuple[bytes, bytes], size: int | None = None) -> bytes:
    body = b"WAVE" + b"".join(
        cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1) for cid, data in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def fmt(tag: int = 1, channels: int = 1, rate: int = 8000, bits: int = 16) -> tuple[bytes, bytes]:
    align = channels * bits // 8
    return b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def data(n: int = 16) -> tuple[bytes, bytes]:
    return b"data", b"\0" * n


AUDIO_AT = "site/case.yaml:3:5: audio file 'audio/bye.wav'"
SOX = "sox in.wav -r 8000 -c 1"
A_B_A = "subroutines/A -> subroutines/B -> subroutines/A"

CASES: dict[str, Case] = {
    # -- login ids ----------------------------------------------------------------
    "login_control_character": Case(
        {CASE: user(login='"bob\\x07"')},
        ["site/case.yaml:2:5: login id 'bob\\x07' contains a control character (U+0007)"],
        hint="ISO 8859-1",
    ),
    "login_tab": Case(
        {CASE: user(login='"bob\\tj"')},
        ["site/case.yaml:2:5: contains a control character (U+0009)"],
    ),
    "login_zero_width_space": Case(
        {CASE: user(login='"bo\\u200bb"')},
        ["site/case.yaml:2:5: contains an invisible character (U+200B ZERO WIDTH SPACE)"],
    ),
    "login_zero_width_joiner": Case(
        {CASE: user(login='"bo\\u200db"')},
        ["site/case.yaml:2:5: contains an invisible character (U+200D ZERO WIDTH JOINER)"],
    ),
    "login_left_to_right_mark": Case(
        {CASE: user(login='"bob\\u200e"')},
        ["site/case.yaml:2:5: contains an invisible character (U+200E LEFT-TO-RIGHT MARK)"],
    ),
    "login_word_joiner": Case(
        {CASE: user(login='"bo\\u2060b"')},
        ["site/case.yaml:2:5: contains an invisible character (U+2060 WORD JOINER)"],
    ),
    "login_byte_order_mark": Case(
        {CASE: user(login='"\\ufeffbob"')},
        ["site/case.yaml:2:5: contains an invisible character (U+FEFF ZERO WIDTH NO-BREAK SPACE)"],
    ),
    "login_right_to_left_override": Case(
        {CASE: user(login='"bob\\u202egpj"')},
        ["site/case.yaml:2:5: an invisible character (U+202E RIGHT-TO-LEFT OVERRIDE)"],
    ),
    "login_soft_hyphen_is_latin1_but_invisible": Case(
        {CASE: user(login='"bo\\u00adb"')},
        ["site/case.yaml:2:5: contains an invisible character (U+00AD SOFT HYPHEN)"],
    ),
    "login_at_sign": Case(
        {CASE: user(login="bob@example.com")},
        ["site/case.yaml:2:5: login id 'bob@example.com' contains '@'"],
        hint="without spaces, '@' or commas",
    ),
    "login_comma": Case(
        {CASE: user(login="jones,bob")},
        ["site/case.yaml:2:5: login id 'jones,bob' contains a comma"],
    ),
    "login_space": Case(
        {CASE: user(login='"bob jones"')},
        ["site/case.yaml:2:5: login id 'bob jones' contains a space"],
    ),
    "login_no_break_space": Case(
        {CASE: user(login='"bob\\u00a0jones"')},
        ["site/case.yaml:2:5: contains a space character (U+00A0 NO-BREAK SPACE)"],
    ),
    "login_several_problems_in_one_error": Case(
        {CASE: user(login='"bob @x,y"')},
        ["site/case.yaml:2:5: login id 'bob @x,y' contains a space, '@' and a comma"],
    ),
    "login_path_traversal": Case(
        {CASE: user(login="../../etc/passwd")},
        ["site/case.yaml:2:5: login id '../../etc/passwd' looks like a file path"],
        hint="remove '/', '\\' and '..'",
    ),
    "login_backslash_path": Case(
        {CASE: user(login="'..\\bob'")},
        ["site/case.yaml:2:5: login id '..\\\\bob' looks like a file path"],
    ),
    "login_dot_dot": Case(
        {CASE: user(login='".."')},
        ["site/case.yaml:2:5: login id '..' looks like a file path"],
    ),
    "login_not_latin1": Case(
        {CASE: user(login="bob😀")},
        ["site/case.yaml:2:5: (U+1F600 GRINNING FACE), which is not ISO 8859-1 (Latin-1)"],
    ),
    "login_cyrillic_look_alike_of_existing_login": Case(
        {CASE: user(login="аlice")},
        [
            "site/case.yaml:2:5: login id 'аlice' contains 'а' (U+0430 CYRILLIC SMALL LETTER A), "
            "which is not ISO 8859-1",
            "site/case.yaml:2:5: login id 'аlice' looks like the login id 'alice' of another "
            "user at telephony.yaml:25:5",
        ],
        hint="look-alike characters",
    ),
    "login_greek_look_alike_in_the_same_file": Case(
        {CASE: users("bob", "bοb")},
        [
            "site/case.yaml:8:5: login id 'bοb' contains 'ο' (U+03BF GREEK SMALL LETTER OMICRON)",
            "site/case.yaml:8:5: login id 'bοb' looks like the login id 'bob' of another user "
            "at site/case.yaml:2:5",
        ],
    ),
    "login_fullwidth_look_alike": Case(
        {CASE: user(login="ａlice")},
        [
            "site/case.yaml:2:5: login id 'ａlice' contains 'ａ' (U+FF41 FULLWIDTH LATIN SMALL "
            "LETTER A)",
            "site/case.yaml:2:5: looks like the login id 'alice' of another user "
            "at telephony.yaml:25:5",
        ],
    ),
    "login_digit_one_for_letter_l": Case(
        {CASE: user(login="a1ice")},
        [
            "site/case.yaml:2:5: login id 'a1ice' looks like the login id 'alice' of another "
            "user at telephony.yaml:25:5"
        ],
    ),
    "login_digit_zero_for_letter_o": Case(
        {CASE: users("bob", "b0b")},
        ["site/case.yaml:8:5: login id 'b0b' looks like the login id 'bob' of another user"],
    ),
    "login_capital_i_for_letter_l": Case(
        {CASE: users("lan", "Ian")},
        ["site/case.yaml:8:5: login id 'Ian' looks like the login id 'lan' of another user"],
    ),
    "login_case_clash_with_another_file": Case(
        {CASE: user(login="ALICE")},
        [
            "site/case.yaml:2:5: login id 'ALICE' differs from user 'alice' at "
            "telephony.yaml:25:5 only in case"
        ],
        hint="MiCollab compares login ids ignoring case",
    ),
    "login_case_clash_in_one_file": Case(
        {CASE: users("mchen", "MChen", "MCHEN")},
        [
            "site/case.yaml:8:5: login id 'MChen' differs from user 'mchen' at "
            "site/case.yaml:2:5 only in case",
            "site/case.yaml:14:5: login id 'MCHEN' differs from user 'mchen' at "
            "site/case.yaml:2:5 only in case",
        ],
    ),
    "login_numeric_equals_a_dn_in_the_same_file": Case(
        {CASE: users("bob", '"2000"')},
        [
            "site/case.yaml:8:5: login id '2000' equals the directory number of user 'bob' "
            "at site/case.yaml:7:9"
        ],
    ),
    # -- subroutine call cycles ---------------------------------------------------------
    "subroutine_calls_itself": Case(
        {CASE: subroutines({"Loop": ["Loop"]})},
        ["site/case.yaml:4:30: subroutine call cycle: subroutines/Loop -> subroutines/Loop"],
        hint="break the cycle",
    ),
    "two_subroutines_call_each_other": Case(
        {CASE: subroutines({"A": ["B"], "B": ["A"]})},
        [f"site/case.yaml:4:30: subroutine call cycle: {A_B_A}"],
    ),
    "three_subroutines_in_a_ring": Case(
        {CASE: subroutines({"A": ["B"], "B": ["C"], "C": ["A"]})},
        [
            "site/case.yaml:4:30: subroutine call cycle: "
            "subroutines/A -> subroutines/B -> subroutines/C -> subroutines/A"
        ],
    ),
    "cycle_after_a_first_valid_call": Case(
        {CASE: subroutines({"A": ["Greet", "B"], "B": ["Greet", "A"]})},
        [f"site/case.yaml:5:30: subroutine call cycle: {A_B_A}"],
    ),
    "cycle_through_a_menu_choice": Case(
        {
            CASE: "subroutines:\n  - name: Again\n    steps:\n"
            "      - action: menu\n        prompt: Welcome\n"
            '        choices: {"1": "subroutine:Again", "9": hangup}\n'
        },
        ["site/case.yaml:6:19: subroutine call cycle: subroutines/Again -> subroutines/Again"],
    ),
    "two_separate_cycles_are_two_errors": Case(
        {CASE: subroutines({"A": ["A"], "B": ["C"], "C": ["B"], "D": ["A"]})},
        [
            "site/case.yaml:4:30: subroutines/A -> subroutines/A",
            "site/case.yaml:7:30: subroutines/B -> subroutines/C -> subroutines/B",
        ],
    ),
    "workflow_calling_a_cycle_adds_no_error": Case(
        {
            CASE: subroutines({"A": ["B"], "B": ["A"]})
            + "workflows:\n  - name: W\n    media_servers: [ms1]\n    steps:\n"
            "      - {action: subroutine, subroutine: A}\n"
        },
        [f"site/case.yaml:4:30: subroutine call cycle: {A_B_A}"],
    ),
    # -- menu choices ---------------------------------------------------------------------
    "menu_choice_not_a_key_nor_an_action": Case(
        {CASE: menu('{"x": "banana"}')},
        [
            "site/case.yaml:7:19: menu choice key 'x' is not a phone key",
            "site/case.yaml:7:19: menu choice 'x': 'banana' is not a menu action",
        ],
    ),
    "menu_choice_two_digit_key": Case(
        {CASE: menu('{"10": "transfer:1000"}')},
        ["site/case.yaml:7:19: menu choice key '10' is not a phone key"],
        hint="0 1 2 3 4 5 6 7 8 9 * #",
    ),
    "menu_choice_unknown_action": Case(
        {CASE: menu('{"1": "transfer:1000", "2": "voicemail:1000"}')},
        ["site/case.yaml:7:41: menu choice '2': 'voicemail:1000' is not a menu action"],
        hint="repeat, hangup",
    ),
    "menu_choice_transfer_without_number": Case(
        {CASE: menu('{"#": "transfer:"}')},
        ["site/case.yaml:7:19: menu choice '#': transfer needs a number"],
        hint="transfer:2155",
    ),
    "menu_choice_transfer_to_a_name": Case(
        {CASE: menu('{"*": "transfer:reception"}')},
        ["site/case.yaml:7:19: menu choice '*': transfer target 'reception' is not a number"],
    ),
    "menu_choice_repeat_with_a_target": Case(
        {CASE: menu('{"0": "repeat:3"}')},
        ["site/case.yaml:7:19: menu choice '0': 'repeat:3' is not a menu action"],
    ),
    "menu_choice_subroutine_undefined": Case(
        {CASE: menu('{"2": "subroutine:Gret"}')},
        ["site/case.yaml:7:19: subroutine 'Gret' is not defined"],
        hint="did you mean 'Greet'?",
    ),
    "choices_on_a_play_step": Case(
        {CASE: menu('{"1": "hangup"}', action="play")},
        ["site/case.yaml:7:9: a play step has no menu choices"],
    ),
    # -- prompt audio -------------------------------------------------------------------------
    "wav_header_then_junk": Case(
        prompt(riff((b"junk", b""), size=4 + 8)[:12] + b"\x13\x37" * 50),
        [f"{AUDIO_AT} is damaged: its RIFF header says 20 bytes, the file has 112"],
    ),
    "wav_junk_body_with_a_matching_size": Case(
        prompt(b"RIFF" + struct.pack("<I", 4 + 40) + b"WAVE" + b"\xff" * 40),
        [f"{AUDIO_AT} is truncated: chunk"],
    ),
    "wav_truncated_data": Case(
        prompt(
            (lambda w: w[:4] + struct.pack("<I", len(w) - 8 - 100) + w[8:-100])(
                riff(fmt(), data(200))
            )
        ),
        [f"{AUDIO_AT} is truncated: chunk 'data' at byte 36 claims 200 bytes, 100 are there"],
        hint="re-export or re-record",
    ),
    "wav_trailing_bytes": Case(
        prompt(riff(fmt(), data()) + b"xyz"),
        [f"{AUDIO_AT} is damaged: its RIFF header says 60 bytes, the file has 63"],
    ),
    "wav_no_fmt_chunk": Case(
        prompt(riff(data())),
        [f"{AUDIO_AT} has no 'fmt ' chunk"],
    ),
    "wav_no_data_chunk": Case(
        prompt(riff(fmt())),
        [f"{AUDIO_AT} has no 'data' chunk (no audio)"],
    ),
    "wav_data_before_fmt": Case(
        prompt(riff(data(), fmt())),
        [f"{AUDIO_AT} has its 'data' chunk before its 'fmt ' chunk"],
    ),
    "wav_empty_data": Case(
        prompt(riff(fmt(), data(0))),
        [f"{AUDIO_AT} has no audio (its 'data' chunk is empty)"],
    ),
    "wav_inconsistent_byte_rate": Case(
        prompt(riff((b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 9999, 2, 16)), data())),
        [f"{AUDIO_AT} has an inconsistent format"],
    ),
    "wav_cd_quality_stereo": Case(
        prompt(riff(fmt(channels=2, rate=44100), data(16))),
        [
            f"{AUDIO_AT} is 44100 Hz, 2 channel(s), 16-bit PCM; the IVR servers play 8000 Hz mono",
        ],
        hint=SOX,
    ),
    "wav_8khz_stereo": Case(
        prompt(riff(fmt(channels=2), data(16))),
        [f"{AUDIO_AT} is 8000 Hz, 2 channel(s), 16-bit PCM"],
        hint=SOX,
    ),
    "wav_16khz_mono": Case(
        prompt(riff(fmt(rate=16000), data(16))),
        [f"{AUDIO_AT} is 16000 Hz, 1 channel(s), 16-bit PCM"],
    ),
    "wav_8bit_pcm": Case(
        prompt(riff(fmt(bits=8), data(16))),
        [f"{AUDIO_AT} is 8000 Hz, 1 channel(s), 8-bit PCM"],
    ),
    "wav_float_samples": Case(
        prompt(riff(fmt(tag=3, bits=32), data(16))),
        [f"{AUDIO_AT} is encoded as WAVE format 0x0003"],
        hint=SOX,
    ),
    "wav_partial_frames": Case(
        prompt(riff(fmt(), data(15))),
        [f"{AUDIO_AT} has a 'data' chunk of 15 bytes, not whole 2-byte frames"],
    ),
    # -- one error is one error ------------------------------------------------------------------
    "template_two_primaries_used_by_role_and_user": Case(
        {
            "telephony.yaml": TELEPHONY.replace(
                "        primary: true\n",
                "        primary: true\n      - {label: soft, device_type: sp, primary: true}\n",
            )
        },
        ["telephony.yaml:14:5: a template needs exactly one primary phone (found 2)"],
    ),
    "ceid_as_decimal_hides_nothing_else": Case(
        {"network.yaml": NETWORK.replace("ceid: 3", "ceid: 3.0")},
        ["network.yaml:13:5: 'ceid' must be a whole number, got 3.0 (a number)"],
        hint="ceid: 3",
    ),
    "bad_dn_keeps_the_records_other_checks": Case(
        {
            CASE: user(
                "template: Premium",
                services=('dn: "12a4"', 'dn: "1000"\n        cos: {day: 7}'),
            )
        },
        [
            "site/case.yaml:6:5: template 'Premium' is not defined",
            "site/case.yaml:8:9: directory number '12a4' must be 1-7 characters",
            "site/case.yaml:9:9: directory number 1000 is already used by user 'alice' "
            "at telephony.yaml:34:9",
            "site/case.yaml:10:15: class of service 7 (day) is not defined",
        ],
    ),
    "bad_login_keeps_its_dn_check": Case(
        {CASE: user(login='"bob jones"', services=('dn: "1000"',))},
        [
            "site/case.yaml:2:5: login id 'bob jones' contains a space",
            "site/case.yaml:7:9: directory number 1000 is already used by user 'alice'",
        ],
    ),
    "call_server_with_a_bad_driver_still_hosts_users": Case(
        {"network.yaml": NETWORK.replace("ceid: 2\n", "ceid: 2\n    driver: 7\n")},
        ["network.yaml:8:5: 'driver' must be text, got 7 (a number)"],
    ),
    "call_server_with_a_typo_in_its_type_hosts_users_quietly": Case(
        {"network.yaml": NETWORK.replace("type: mivb\n    ceid: 2", "type: mivbx\n    ceid: 2")},
        [
            "network.yaml:6:5: 'type' must be one of 'mivb', 'micollab', 'ivr' or "
            "'directory', got 'mivbx'"
        ],
    ),
    "micollab_with_a_bad_field_is_still_the_micollab": Case(
        {"network.yaml": NETWORK.replace("ceid: 1\n", "ceid: 1\n    description: [x]\n")},
        ["network.yaml:5:5: 'description' must be text, got a list"],
    ),
    "element_with_unknown_type_is_not_a_missing_micollab": Case(
        {"network.yaml": NETWORK.replace("type: micollab", "type: micolab")},
        [
            "network.yaml:3:5: 'type' must be one of 'mivb', 'micollab', 'ivr' or "
            "'directory', got 'micolab'"
        ],
    ),
    "role_without_template_still_defines_the_role": Case(
        {"telephony.yaml": TELEPHONY.replace("    template: Basic\n", "")},
        ["telephony.yaml:22:5: missing required field 'template'"],
    ),
    "broken_duplicate_is_still_a_duplicate": Case(
        {CASE: "templates:\n  - name: Basic\n    phones: []\n"},
        [
            "site/case.yaml:2:5: duplicate template 'Basic': already defined at "
            "telephony.yaml:14:5",
            "site/case.yaml:3:5: 'phones' needs at least 1 item(s)",
        ],
    ),
    "reserved_cos_used_by_a_template_is_one_error": Case(
        {
            CASE: "classes_of_service:\n  - number: 105\n"
            "templates:\n  - name: T2\n    cos: {day: 105}\n    phones:\n"
            "      - {label: desk, device_type: '6920', primary: true}\n"
        },
        ["site/case.yaml:2:5: class of service 105 is reserved by the call server"],
    ),
    "bad_cluster_gets_no_partner_knock_on": Case(
        {CASE: element("type: mivb", "ceid: 9", "cluster: [a]", "partner: cs1")},
        ["site/case.yaml:5:5: 'cluster' must be text, got a list"],
    ),
    "services_as_a_mapping_is_one_error": Case(
        {CASE: user(services=()).replace("services:", "services: {dn: '2000'}")},
        ["site/case.yaml:6:5: 'services' must be a list, got a mapping"],
    ),
    "undefined_template_of_a_role_is_reported_once": Case(
        {"telephony.yaml": TELEPHONY.replace("template: Basic", "template: Basc")},
        ["telephony.yaml:23:5: template 'Basc' is not defined"],
    ),
    "subroutine_with_a_bad_step_still_defined_for_workflows": Case(
        {
            "ivr.yaml": IVR.replace(
                "      - action: play\n        prompt: Welcome\n", "      - action: play\n", 1
            )
        },
        ["ivr.yaml:16:9: a play step needs prompt"],
    ),
    "prompt_with_a_bad_language_still_defined_for_steps": Case(
        {
            CASE: "prompts:\n  - name: Bye\n    language: english\n    file: audio/welcome.wav\n"
            "workflows:\n  - name: W\n    media_servers: [ms1]\n    steps:\n"
            "      - {action: play, prompt: Bye}\n"
        },
        ["site/case.yaml:3:5: 'language' value 'english' is not in the expected form"],
    ),
    "media_server_with_a_bad_port_still_defined_for_workflows": Case(
        {"ivr.yaml": IVR.replace("host: 10.0.0.10\n", "host: 10.0.0.10\n    port: 0\n")},
        ["ivr.yaml:4:5: 'port' is 0; it must be at least 1"],
    ),
}


def _validate_json(root: Path) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(
        main, ["validate", str(root), "--no-cache", "--format", "json"], catch_exceptions=False
    )
    return result.exit_code, json.loads(result.output)["diagnostics"]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_exits_1_with_each_problem_once_at_its_line_and_column(
    tmp_path: Path, case: Case
) -> None:
    root = tmp_path / "config"
    root.mkdir()
    write(root, {**BASE, **_write_symlinks(root, case.files)})
    code, diags = _validate_json(root)
    got = [f"{d['file']}:{d['line']}:{d['column']}: {d['message']}" for d in diags]
    assert code == 1, got
    for want in case.expected:
        where, _, text = want.partition(": ")
        hits = [g for g in got if g.startswith(where + ": ") and text in g]
        assert hits, f"expected {want!r}; got {got}"
    assert len(got) == len(case.expected), f"unexpected extra diagnostics: {got}"
    if case.hint is not None:
        hints = [str(d["hint"] or "") for d in diags]
        assert any(case.hint in h for h in hints), hints


def test_there_are_at_least_50_rule_cases() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize(
    "login",
    ['"2001"', "b" * 113, "'josé.müller'", "o'brien", "j-smith_2", "first.last"],
    ids=["numeric", "113_chars", "latin1_accents", "apostrophe", "dash_underscore", "dotted"],
)
def test_login_ids_micollab_takes_are_valid(tmp_path: Path, login: str) -> None:
    write(tmp_path, {**BASE, CASE: user(login=login)})
    code, diags = _validate_json(tmp_path)
    assert (code, diags) == (0, [])


@pytest.mark.parametrize(
    "audio",
    [
        wav(),
        riff(fmt(tag=7, bits=8), data(9)),  # mu-law, odd size padded
        riff(fmt(tag=6, bits=8), (b"LIST", b"INFOxxxx"), data(8)),  # A-law with metadata
    ],
    ids=["pcm16", "mu_law", "a_law_with_list_chunk"],
)
def test_telephone_quality_wav_files_are_valid(tmp_path: Path, audio: bytes) -> None:
    write(tmp_path, {**BASE, **prompt(audio)})
    code, diags = _validate_json(tmp_path)
    assert (code, diags) == (0, [])


def test_menu_choices_the_ivr_servers_know_are_valid(tmp_path: Path) -> None:
    choices = (
        '{"1": "subroutine:Greet", "2": "transfer:2155", "3": "queue:support-agents", '
        '"*": repeat, "#": hangup, "0": "transfer:+0*9#"}'
    ).replace("+", "")
    write(tmp_path, {**BASE, CASE: menu(choices)})
    code, diags = _validate_json(tmp_path)
    assert (code, diags) == (0, [])


def _sample_copy(tmp_path: Path) -> Path:
    root = tmp_path / "sample"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".provgit"))
    return root


def test_two_primary_phones_in_a_used_sample_template_is_one_error(tmp_path: Path) -> None:
    root = _sample_copy(tmp_path)
    f = root / "roles-and-templates.yaml"
    text = f.read_text()
    soft = "- {label: Soft, device_type: MiCollab}"
    assert text.count(soft) >= 1
    f.write_text(text.replace(soft, "- {label: Soft, device_type: MiCollab, primary: true}", 1))
    code, diags = _validate_json(root)
    assert code == 1
    assert [(d["file"], d["line"], d["column"], d["message"]) for d in diags] == [
        (
            "roles-and-templates.yaml",
            10,
            5,
            "a template needs exactly one primary phone (found 2); mark one with primary: true",
        )
    ]


def test_a_decimal_ceid_in_the_sample_is_one_error_about_the_ceid(tmp_path: Path) -> None:
    root = _sample_copy(tmp_path)
    f = root / "network" / "elements.yaml"
    f.write_text(f.read_text().replace("ceid: 12\n", "ceid: 12.0\n"))
    code, diags = _validate_json(root)
    assert code == 1
    assert [(d["file"], d["line"], d["column"], d["message"], d["hint"]) for d in diags] == [
        (
            "network/elements.yaml",
            23,
            5,
            "'ceid' must be a whole number, got 12.0 (a number)",
            "write a whole number, without the decimal point: ceid: 12",
        )
    ]


# -- markdown escaping ---------------------------------------------------------------------


def test_a_backtick_and_html_in_a_login_stay_inside_plan_markdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALICE_PIN", "1234")
    login = "x`<script>alert(1)`y"
    write(tmp_path, {**BASE, CASE: user(login=f"'{login}'")})
    code, diags = _validate_json(tmp_path)
    assert (code, diags) == (0, [])  # MiCollab takes it: printable ISO 8859-1
    result = CliRunner().invoke(
        main,
        ["plan", str(tmp_path), "--format", "markdown", "--state-dir", str(tmp_path / "state")],
        catch_exceptions=False,
    )
    out = result.output
    assert result.exit_code in (0, 2), out
    # The record cell is one code span whose fence is longer than any run inside.
    assert f"| ``users/{login}`` |" in out
    page = _as_github_would_render(out)
    assert "<script" not in page
    assert "<code>users/x`&lt;script&gt;alert(1)`y</code>" in page


def test_html_in_a_changed_value_does_not_reach_a_pr_comment() -> None:
    from provgit.plan import ElementPlan, Operation, Plan

    evil = "<img src=x onerror=alert(1)>"
    op = Operation(
        "modify",
        "users",
        "a|b`c",
        "users",
        "a|b`c",
        changes={"first_name": {"before": "Bob", "after": evil}},
        fields={"first_name": evil},
    )
    md = plan_markdown.render(
        Plan("net<b>", (ElementPlan("mc", "micollab", "running", 1, (op,)),), commit="abc")
    )
    page = _as_github_would_render(md)
    assert "<img" not in page and "<b>net" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # One row of three cells: the `|` in the key did not split it.
    assert "<td><code>users/a|b`c</code></td>" in page


def _as_github_would_render(markdown: str) -> str:
    # CommonMark with raw HTML allowed, plus GFM tables: what a PR comment gets.
    return str(MarkdownIt("commonmark").enable("table").render(markdown))


def test_escaping_helpers() -> None:
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x") == "`` `x ``"
    assert md_code("a|b") == "`a\\|b`"
    assert md_text("<script>*x*</script>") == "&lt;script&gt;\\*x\\*&lt;/script&gt;"
    assert md_text("a\nb\u202e") == "a b&lt;U+202E&gt;"


def test_status_md_escapes_keys_reasons_and_events_from_elements(tmp_path: Path) -> None:
    from provgit.journal import Journal
    from provgit.render import status_markdown
    from provgit.report.document import build_document

    with Journal.open(tmp_path / "state") as j:
        with j.transaction():
            j.upsert_distribution_error(
                element="cs1",
                collection="users",
                key="x`<script>y",
                form="User and Device Configuration",
                kind="users",
                resource="x`<script>y",
                action="add",
                error_type="refused",
                reason="<img src=x onerror=alert(1)> | [click](javascript:alert(1))",
                detail={},
                fields_hash=None,
            )
            j.add_event("drift", "**<b>bold</b>** `x", element="cs1")
        text = status_markdown.render(build_document(j, network="n<i>"))
    page = _as_github_would_render(text)
    for tag in ("<script", "<img", "<b>", "<i>", 'href="javascript'):
        assert tag not in page, page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
