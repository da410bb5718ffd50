"""Generate a realistic provgit network of N users, for benchmarks.

    .venv/bin/python benchmarks/generate.py --users 100000 --out benchmarks/data/net100k

The output looks like what an admin writes: block-style YAML, one people file
per department (~2,000 users each, so parsing spreads over cores), users that
take their classes of service from their template and only sometimes override
them, most users with one phone service and some with two or three. Elements,
classes of service, roles, templates and IVR content grow in proportion.
Deterministic for a given --seed. The output validates cleanly.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import struct
import sys
import wave
from dataclasses import dataclass
from pathlib import Path


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = _words(
    """
James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Chris Lisa Daniel Nancy Matthew
Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Paul Emily Andrew Donna
Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy Rachel
Ronald Laura Jason Sharon Edward Cynthia Jeffrey Kathleen Ryan Amy Jacob Angela Gary Anna
Nicholas Brenda Eric Pamela Jonathan Emma Stephen Nicole Larry Helen Justin Samantha Scott
Katherine Brandon Christine Benjamin Debra Samuel Janet Gregory Carolyn Alexander Maria
Frank Heather Patrick Diane Raymond Julie Jack Joyce Dennis Victoria Jerry Kelly Tyler
Christina Aaron Lauren Jose Joan Adam Evelyn Nathan Olivia Henry Judith Zachary Megan
Douglas Cheryl Peter Martha Kyle Andrea Noah Frances Ethan Hannah Jeremy Jacqueline Walter
Ann Christian Gloria Keith Jean Roger Kathryn Terry Alice Austin Teresa Sean Sara Gerald
Janice Carl Doris Harold Madison Dylan Julia Arthur Grace Lawrence Judy Jordan Abigail Jesse
Marie Bryan Denise Billy Beverly Bruce Amber Gabriel Theresa Joe Marilyn Logan Danielle Alan
Diana Juan Brittany Albert Natalie Willie Sophia Elijah Rose Wayne Isabella Randy Alexis
Vincent Kayla Mason Charlotte Roy Faith Ralph Tiffany Bobby Lori Russell Ruby Bradley Anita
Priya Wei Mohammed Fatima Hiroshi Yuki Carlos Lucia Ahmed Aisha Raj Mei Omar Leila Ivan
"""
)

LAST_NAMES = _words(
    """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook
Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez
Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan
Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson
Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera
Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison
Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker
Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason
Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox
Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan
Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Hansen Peters Santos Hart
Bradley Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Ray
Berry Perkins Hoffman Johnston Matthews Pena Richards Willis Carpenter Lawrence Sandoval
OBrien Tremblay Gagnon Roy Cote Bouchard Gauthier Morin Lavoie Fortin Gagne Ouellet
Pelletier Belanger Levesque Singh Sharma Wang Zhang Liu Yamamoto Tanaka Suzuki Kowalski
Novak Schneider Fischer Weber
"""
)

DEPARTMENT_BASES = _words(
    """
Finance Sales Marketing Engineering Support Operations Legal Facilities Purchasing Research
Logistics Training Security Quality Billing Dispatch Claims Payroll Audit Networks
"""
)

REGIONS = _words(
    """
East West North South Central Atlantic Pacific Prairie Metro Coastal
"""
)

CITIES = _words(
    """
Ottawa Toronto Montreal Vancouver Calgary Edmonton Winnipeg Halifax Quebec-City Regina
Saskatoon Victoria Kitchener London Hamilton Boston Chicago Denver Austin Seattle Atlanta
Dallas Phoenix Portland Raleigh Columbus Detroit Miami Omaha Tampa
"""
)

# Template -> phones (label, device type, primary); COS/COR default per template.
TEMPLATES: list[tuple[str, str, list[tuple[str, str]], int, int]] = [
    ("Desk Phone", "Standard desk set", [("Desk", "6920")], 10, 1),
    (
        "Desk and Softphone",
        "Desk set plus softphone",
        [("Desk", "6930"), ("Soft", "MiCollab")],
        10,
        1,
    ),
    (
        "Executive",
        "Desk, softphone and conference unit",
        [("Desk", "6940"), ("Soft", "MiCollab"), ("Conference", "6970")],
        20,
        2,
    ),
    ("Softphone Only", "Remote workers", [("Soft", "MiCollab")], 12, 1),
    ("Contact Centre Agent", "Agent desk set with headset", [("Desk", "6930w")], 30, 3),
    ("Common Area", "Lobby and meeting room phones", [("Desk", "6910")], 40, 4),
    (
        "Mobile Worker",
        "DECT handset plus softphone",
        [("DECT", "612d"), ("Soft", "MiCollab")],
        12,
        1,
    ),
    ("Lab Phone", "Engineering lab extensions", [("Desk", "6920"), ("Lab", "SIP-generic")], 50, 5),
]

COS_BASE = [
    (1, "Internal only"),
    (2, "Local calls"),
    (10, "Standard"),
    (12, "Remote worker"),
    (20, "Executive"),
    (30, "Agent"),
    (40, "Common area"),
    (50, "Lab"),
    (60, "Night restrict"),
    (70, "Intl allowed"),
    (80, "Emergency only"),
    (90, "Admin"),
]

COR_BASE = [
    (1, "Open", []),
    (2, "No intl", [3, 4]),
    (3, "No premium", [4]),
    (4, "Lobby", []),
    (5, "Lab", [1]),
    (6, "Night", [2, 3]),
]

PHONE_WORDS = _words(
    """
welcome main-menu after-hours holiday hold-music please-wait goodbye invalid-entry
"""
)


@dataclass(frozen=True)
class Plan:
    users: int
    call_servers: int
    departments: int
    locations: int
    roles: int
    prompts: int
    subroutines: int
    workflows: int
    media_servers: int


def plan_for(users: int) -> Plan:
    # 12 call servers at 100,000 users (~8,300 users each), never fewer than 3.
    return Plan(
        users=users,
        call_servers=max(3, round(users / 8_333)),
        departments=max(4, math.ceil(users / 2_000)),
        locations=max(3, min(len(CITIES), users // 3_500)),
        roles=max(5, users // 500),
        prompts=max(6, users // 500),
        subroutines=max(2, users // 5_000),
        workflows=max(3, users // 2_000),
        media_servers=max(2, users // 25_000),
    )


def q(s: str) -> str:
    """A YAML scalar, quoted only when plain style would change its meaning."""
    if (
        not s
        or s[0] in "0123456789-+.!&*[]{}#|>'\"%@`?:,"
        or any(c in s for c in ":#")
        or s.lower() in ("true", "false", "null", "yes", "no", "on", "off", "~")
    ):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def write_wav(path: Path, rng: random.Random, seconds: float = 0.25) -> None:
    """A short 8 kHz mono 16-bit tone (or silence): a real, tiny WAV file."""
    rate = 8000
    freq = rng.choice([0, 350, 440, 480, 620])
    n = int(rate * seconds)
    frames = bytearray()
    for i in range(n):
        v = 0 if freq == 0 else int(6000 * math.sin(2 * math.pi * freq * i / rate))
        frames += struct.pack("<h", v)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def generate(users: int, out: Path, seed: int = 1) -> Plan:
    rng = random.Random(seed)
    p = plan_for(users)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    # -- settings ------------------------------------------------------------
    (out / "provgit.yaml").write_text(
        f"""# Network settings for a generated benchmark network ({users:,} users).
version: 1
network: bench-{users}
description: Generated by benchmarks/generate.py (seed {seed})
safety:
  max_deletes: {{count: 500, percent: 5}}
  max_updates: {{count: 20000, percent: 50}}
alarms:
  warning: 0
  minor: 100
  major: 1000
reports:
  dir: .provgit/status
  markdown_max_bytes: 60000
""",
        encoding="utf-8",
    )

    # -- elements: one MiCollab, call servers in resilient pairs, two IVR servers
    lines = [
        "# Network elements. Call servers come in resilient pairs, one pair per cluster.",
        "elements:",
    ]
    lines += [
        "  - name: micollab1",
        "    type: micollab",
        "    ceid: 1",
        "    admin_group: collab",
        "    reach_through: https://micollab1.example.net/admin/{form}?key={key}",
        "",
    ]
    servers: list[str] = []
    ceid = 10
    for i in range(p.call_servers):
        name = f"mivb{i + 1:02d}"
        servers.append(name)
        cluster = i // 2 + 1
        partner = None
        if i % 2 == 0 and i + 1 < p.call_servers:
            partner = f"mivb{i + 2:02d}"
        elif i % 2 == 1:
            partner = f"mivb{i:02d}"
        lines += [
            f"  - name: {name}",
            "    type: mivb",
            f"    ceid: {ceid + i}",
            f"    cluster: cluster{cluster}",
            f"    admin_group: region{cluster}",
        ]
        if partner:
            lines.append(f"    partner: {partner}")
        lines += [f"    reach_through: https://{name}.example.net/admin/{{form}}?key={{key}}", ""]
    for i in range(2):
        lines += [
            f"  - name: ivr{i + 1}",
            "    type: ivr",
            f"    ceid: {900 + i}",
            "    admin_group: ivr",
            f"    reach_through: https://ivr{i + 1}.example.net/admin/{{form}}?key={{key}}",
            "",
        ]
    _write(out / "network/elements.yaml", lines)

    # -- classes of service and COR groups ------------------------------------
    lines = [
        "# Classes of service (1-99; 100-110 belong to the call server).",
        "classes_of_service:",
    ]
    for number, comment in COS_BASE:
        lines += [
            f"  - number: {number}",
            f"    comment: {q(comment)}",
            "    options:",
            f"      toll_denied: {'true' if number in (1, 40, 80) else 'false'}",
            f"      call_forward_external: {'true' if number in (10, 20, 90) else 'false'}",
        ]
    _write(out / "network/classes-of-service.yaml", lines)
    lines = ["cor_groups:"]
    for number, comment, members in COR_BASE:
        lines += [f"  - number: {number}", f"    comment: {q(comment)}"]
        if members:
            lines.append(f"    members: [{', '.join(map(str, members))}]")
    _write(out / "network/cor-groups.yaml", lines)

    # -- departments and locations -------------------------------------------
    departments: list[str] = []
    for i in range(p.departments):
        base = DEPARTMENT_BASES[i % len(DEPARTMENT_BASES)]
        region = REGIONS[(i // len(DEPARTMENT_BASES)) % len(REGIONS)]
        departments.append(base if i < len(DEPARTMENT_BASES) else f"{base} {region}")
    locations = CITIES[: p.locations]
    lines = ["departments:"]
    for d in departments:
        lines += [f"  - name: {q(d)}", f"    description: {q(d + ' department')}"]
    lines += ["", "locations:"]
    for c in locations:
        lines += [f"  - name: {c}", f"    description: {c.replace('-', ' ')} office"]
    _write(out / "org.yaml", lines)

    # -- templates and roles ----------------------------------------------------
    lines = ["templates:"]
    for name, desc, phones, cos, cor in TEMPLATES:
        lines += [f"  - name: {name}", f"    description: {desc}", "    phones:"]
        for j, (label, dev) in enumerate(phones):
            lines += [f"      - label: {label}", f"        device_type: {q(dev)}"]
            if j == 0:
                lines.append("        primary: true")
        lines += [f"    cos: {{day: {cos}, night1: 60}}", f"    cor: {{day: {cor}, night1: 6}}"]
    roles: list[tuple[str, int]] = []  # (role name, template index)
    lines += ["", "roles:"]
    for i in range(p.roles):
        t = i % len(TEMPLATES)
        dept = departments[i % len(departments)]
        name = f"{dept} {TEMPLATES[t][0]}"
        if any(r == name for r, _ in roles):
            name = f"{name} {i}"
        roles.append((name, t))
        lines += [f"  - name: {q(name)}", f"    template: {TEMPLATES[t][0]}"]
    _write(out / "roles-and-templates.yaml", lines)

    # -- users: one file per department ------------------------------------------
    logins: set[str] = set()
    dn_next = 2_000_000
    by_dept: dict[int, list[str]] = {i: [] for i in range(len(departments))}
    roles_by_dept: dict[int, list[tuple[str, int]]] = {}
    for i, r in enumerate(roles):
        roles_by_dept.setdefault(i % len(departments), []).append(r)
    for u in range(users):
        di = u % len(departments)
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        login = f"{first[0]}{last}".lower()
        n = 1
        while login in logins:
            n += 1
            login = f"{first[0]}{last}{n}".lower()
        logins.add(login)
        role, t = rng.choice(roles_by_dept.get(di) or roles)
        tname, _, tphones, _, _ = TEMPLATES[t]
        # Most users one phone; templates with more phones give some users 2-3.
        k = 1
        if len(tphones) > 1:
            k = rng.choices(range(1, len(tphones) + 1), weights=[6, 3, 1][: len(tphones)])[0]
        host = servers[(u * 7 + di) % len(servers)]
        u_lines = [
            f"  - login_id: {login}",
            f"    first_name: {first}",
            f"    last_name: {last}",
            f"    email: {first.lower()}.{last.lower()}{n if n > 1 else ''}@example.com",
        ]
        if len(last) + 2 + len(first) > 21:
            u_lines.append(f"    directory_name: {q((last + ', ' + first)[:21])}")
        u_lines += [
            f"    department: {q(departments[di])}",
            f"    location: {locations[(u // 7) % len(locations)]}",
            f"    role: {q(role)}",
            f"    template: {tname}",
            f"    host: {host}",
        ]
        if rng.random() < 0.2:
            u_lines.append(f"    voicemail_pin: {{env: VM_PIN_{login.upper()}}}")
        u_lines.append("    services:")
        for j in range(k):
            label, dev = tphones[j]
            u_lines += [f'      - dn: "{dn_next}"', f"        label: {label}"]
            dn_next += 1
            if j == 0 and rng.random() < 0.1:
                # An exception to the template's defaults, as admins make them.
                u_lines.append("        cos: {day: 70, night1: 60}")
            if rng.random() < 0.15:
                u_lines.append(f"        device_type: {q(dev)}")
        by_dept[di].append("\n".join(u_lines))
    for di, blocks in by_dept.items():
        dept = departments[di]
        text = f"# {dept}: {len(blocks)} users.\n" + "users:\n" + "\n".join(blocks) + "\n"
        path = out / "people" / f"{slug(dept)}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    # -- IVR content --------------------------------------------------------------
    lines = ["ivr_media_servers:"]
    for i in range(p.media_servers):
        lines += [
            f"  - name: media{i + 1}",
            "    media_type: voice",
            f"    host: media{i + 1}.example.net",
            "    port: 5060",
        ]
    _write(out / "ivr/media-servers.yaml", lines)
    lines = ["prompts:"]
    prompt_names: list[str] = []
    wav_rng = random.Random(seed + 1)
    for i in range(p.prompts):
        name = f"{PHONE_WORDS[i % len(PHONE_WORDS)]}-{i // len(PHONE_WORDS) + 1}"
        prompt_names.append(name)
        langs = ["en-US", "fr-CA"] if i % 3 == 0 else ["en-US"]
        for lang in langs:
            rel = f"ivr/prompts/{lang}/{name}.wav"
            write_wav(out / rel, wav_rng)
            lines += [f"  - name: {name}", f"    language: {lang}", f"    file: {rel}"]
    _write(out / "ivr/prompts.yaml", lines)
    lines = ["subroutines:"]
    subs: list[str] = []
    for i in range(p.subroutines):
        name = f"Collect Account {i + 1}"
        subs.append(name)
        lines += [
            f"  - name: {name}",
            "    media_type: voice",
            "    steps:",
            f"      - {{action: collect, prompt: {prompt_names[i % len(prompt_names)]}, "
            "timeout_seconds: 10}",
            f"      - {{action: play, prompt: {prompt_names[(i + 1) % len(prompt_names)]}}}",
        ]
    _write(out / "ivr/subroutines.yaml", lines)
    lines = ["workflows:"]
    for i in range(p.workflows):
        lines += [
            f"  - name: Main Line {i + 1}",
            "    media_type: voice",
            f"    media_servers: [media{i % p.media_servers + 1}]",
            "    steps:",
            f"      - action: play\n        prompt: {prompt_names[i % len(prompt_names)]}",
            f"      - action: menu\n        prompt: {prompt_names[(i + 2) % len(prompt_names)]}",
            "        choices:",
            f'          "1": "transfer:{2_000_000 + i}"',
            f'          "2": "subroutine:{subs[i % len(subs)]}"',
            '          "9": repeat',
            f"      - action: subroutine\n        subroutine: {subs[(i + 1) % len(subs)]}",
            f'      - action: queue\n        target: "{3000 + i}"',
        ]
    _write(out / "ivr/workflows.yaml", lines)
    return p


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/data/net100k"))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    p = generate(args.users, args.out, args.seed)
    size = sum(f.stat().st_size for f in args.out.rglob("*.yaml"))
    people = sum(f.stat().st_size for f in (args.out / "people").glob("*.yaml"))
    print(
        f"wrote {args.out}: {p.users:,} users in {p.departments} files, "
        f"{p.call_servers} call servers, {p.roles} roles, {p.prompts} prompts; "
        f"{size / 1e6:.1f} MB of YAML, {people / p.users:.0f} bytes per user",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
