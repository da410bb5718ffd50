"""Watch mode: the reconciler that runs all day.

One module per job: `triggers` (file changes, timers), `follower` (git),
`loop` (single flight, composing the stages), `drift`, `shutdown` (stopping
mid-apply), `server` (status over HTTP), `metrics`, `reports` (adapter to
`provgit.report` and `provgit.publish`), `incremental` (what is kept in memory
between runs) and `logs`.
"""

from provgit.watch.loop import Watcher, WatchOptions

__all__ = ["WatchOptions", "Watcher"]
