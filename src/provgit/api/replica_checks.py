"""What replicas on a shared journal cannot do safely, refused as the config's
problems (file:line:col), before anything is planned (issue #19).

An element write from a replica carries a fencing token the element checks
(`X-Provgit-Fence` over HTTP), so a replica that lost its lease cannot write
after the next holder did. LDAP has no such header, and the directory cannot
be made to check one on every modify without a fence attribute on every entry
provgit writes; so a directory element may be shared by replicas only when
provgit never writes it (`read_only: true`). One watcher with the journal in
its state directory (SQLite) writes a directory as before.
"""

from __future__ import annotations

import dataclasses

from provgit.model.findings import Finding, Pointer, resolve
from provgit.validate import Validated

CODE = "replica_unfenced_element"


def refuse_unfenced(validated: Validated) -> Validated:
    """`validated` with an error for each element replicas would write without
    a fence (an LDAP directory not `read_only`)."""
    state = validated.state
    findings = [
        Finding(
            state.origins.get(("elements", name), Pointer("provgit.yaml", ())),
            f"element {name} (driver ldap) cannot be written by replicas sharing a "
            "PostgreSQL journal: LDAP carries no fencing token, so a replica that lost "
            "its lease could still change the directory after the next holder did",
            kind="elements",
            key=name,
            hint="set `read_only: true` on it (observed, never written), or run one "
            "`provgit watch` with the journal in its state directory (no journal URL)",
            code=CODE,
        )
        for name, element in sorted(state.elements.items())
        if element.driver == "ldap" and not element.read_only
    ]
    if not findings:
        return validated
    found = resolve(findings, state.sources)
    return dataclasses.replace(validated, diagnostics=[*validated.diagnostics, *found])
