"""Who is who in the network: clusters, admin groups, partners, element types."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the models (pydantic): a status in sync builds none
    from provgit.model.network import Element


@dataclass(frozen=True)
class Topology:
    elements: dict[str, Element]
    by_type: dict[str, list[str]] = field(default_factory=dict)
    clusters: dict[str, list[str]] = field(default_factory=dict)  # cluster -> call servers
    admin_groups: dict[str, list[str]] = field(default_factory=dict)  # group -> call servers

    @classmethod
    def of(cls, elements: dict[str, Element]) -> Topology:
        by_type: dict[str, list[str]] = defaultdict(list)
        clusters: dict[str, list[str]] = defaultdict(list)
        groups: dict[str, list[str]] = defaultdict(list)
        for name, e in elements.items():
            by_type[e.type].append(name)
            if e.type == "mivb":
                if e.cluster:
                    clusters[e.cluster].append(name)
                if e.admin_group:
                    groups[e.admin_group].append(name)
        return cls(dict(elements), dict(by_type), dict(clusters), dict(groups))

    @property
    def call_servers(self) -> list[str]:
        return self.by_type.get("mivb", [])

    @property
    def micollab(self) -> list[str]:
        return self.by_type.get("micollab", [])

    @property
    def directories(self) -> list[str]:
        return self.by_type.get("directory", [])

    @property
    def ivr_servers(self) -> list[str]:
        return self.by_type.get("ivr", [])

    def pair(self, host: str) -> list[str]:
        """The hosting call server and its resilient partner, if any."""
        e = self.elements.get(host)
        if e is None or e.type != "mivb":
            return []
        partner = e.partner if e.partner in self.elements else None
        return [host] + ([partner] if partner else [])

    def cluster_of(self, host: str) -> list[str]:
        e = self.elements.get(host)
        if e is None or not e.cluster:
            return []
        return self.clusters.get(e.cluster, [])

    def admin_group_of(self, host: str) -> list[str]:
        e = self.elements.get(host)
        if e is None or not e.admin_group:
            return []
        return self.admin_groups.get(e.admin_group, [])
