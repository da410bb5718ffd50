"""The files `provgit init` writes: a config repository that validates and plans
on a fresh machine (embedded elements), ready for the pull-request workflow.

Kept as text here, not package data, so an installed provgit always has them.
The workflow is the caller example of the README ("Use it on a config
repository's pull requests"); a test keeps the two the same.
"""

from __future__ import annotations

import re

SETTINGS = """\
# Network-wide settings for provgit. Every other *.yaml file under this folder
# is config (folders are only a convention); see the provgit README.
version: 1
network: {network}

# Sign saved plans and fingerprint secrets with one key on every machine that
# plans or applies (CI: a long random string in the CI's secret store).
# secret_key: {{env: PROVGIT_SECRET_KEY}}

safety:
  # Refuse a plan that deletes or changes more than this on one element.
  max_deletes: {{count: 25, percent: 10}}
  max_updates: {{count: 2000, percent: 50}}
"""

GITIGNORE = """\
# provgit's state: caches, journal, embedded elements, reports, secret.key.
.provgit/
"""

ELEMENTS = """\
# Network elements. These use the embedded driver (a local SQLite element under
# .provgit/elements/), so the config plans and applies on a fresh machine. For a
# real element (or `provgit element serve`), use the HTTP driver:
#   driver: http
#   connection: {url: "https://mivb1.example.net/api", token: {env: MIVB1_TOKEN}}
elements:
  - name: micollab1
    type: micollab
    ceid: 1
  - name: mivb1
    type: mivb
    ceid: 11
    cluster: main

classes_of_service:
  - number: 1
    comment: Default
"""

USERS = """\
# Users: MiCollab and the hosting call server get each one (SDS sharing).
templates:
  - name: Desk
    phones:
      - {label: Desk, device_type: "6920", primary: true}
    cos: {day: 1}

roles:
  - name: Employee
    template: Desk

users:
  - login_id: jdoe
    first_name: Jane
    last_name: Doe
    email: jane.doe@example.com
    role: Employee
    host: mivb1
    services:
      - dn: "2000"
"""

WORKFLOW = """\
# .github/workflows/provgit.yml
on: pull_request
permissions: {}
jobs:
  provgit:
    # The most the called jobs may use: the check job only reads, the comment
    # job only writes the pull-request comment.
    permissions:
      contents: read
      pull-requests: write
    uses: provgit/provgit/.github/workflows/provgit-config.yml@main   # or a commit SHA
    with:
      config-path: .
      plan: false            # true to plan against the elements too
    secrets:
      PROVGIT_ENV: ${{ secrets.PROVGIT_ENV }}   # NAME=value lines: element tokens, PINs
"""

WORKFLOW_PATH = ".github/workflows/provgit.yml"


def network_name(folder: str) -> str:
    """A valid network name from a folder name (the settings' Identifier)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder).strip("-._")[:63]
    return name or "network"


def files(network: str, workflow_path: str = ".") -> dict[str, str]:
    """Relative path -> content of every file `provgit init` writes."""
    workflow = WORKFLOW
    if workflow_path != ".":
        workflow = workflow.replace("config-path: .", f"config-path: {workflow_path}")
    return {
        "provgit.yaml": SETTINGS.format(network=network),
        ".gitignore": GITIGNORE,
        "elements.yaml": ELEMENTS,
        "users.yaml": USERS,
        WORKFLOW_PATH: workflow,
    }
