"""`--allowed-host` values, checked as the command line reads them (light: no API)."""

from __future__ import annotations

import click

from provgit.wire.hosts import bad_host_name


def host_names(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """A click callback: each value a name as a browser sends it."""
    for name in value:
        if bad_host_name(name):
            raise click.BadParameter(
                f"{name!r} is not a host name: give a name as a browser sends it "
                "(provgit.example.net), no scheme, path or wildcard"
            )
    return value
