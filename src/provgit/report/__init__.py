"""The status model: what the journal, the plan and the observations say about
each element and record (`derive`), gathered into one status document
(`document`, `provgit.status/1`).

Renderers of the document live in `provgit.render` (status_*), and writing the
report files and the git note in `provgit.publish`; this package imports neither.
"""
