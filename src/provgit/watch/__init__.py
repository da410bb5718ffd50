"""Watch mode: the reconciler that runs all day.

One module per job: `loop` (the single flight, composing the rest),
`config_tracker` (which config is wanted and whether it changed, with
`stability` and `removals` for directory mode and `follower` for git), `live`
(what the status document and the log say about the watcher), `timers`
(resync, fetch, retries, sync windows, idle GC), `run` (one reconcile run:
observe, plan, apply, report), `triggers` (file changes), `drift_policy`,
`shutdown` (stopping mid-apply), `server` (status over HTTP), `metrics`,
`reports` (adapter to `provgit.report` and `provgit.publish`), `incremental` (what is kept in memory
between runs), `journals`, `options` and `logs`.
"""

from provgit.watch.loop import Watcher, WatchOptions

__all__ = ["WatchOptions", "Watcher"]
