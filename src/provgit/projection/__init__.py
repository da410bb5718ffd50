"""The target stage: the records each element must hold.

This is the only place that knows which data goes where (SDS sharing scopes).
"""

from provgit.projection.project import Landing, Target, project

__all__ = ["Landing", "Target", "project"]
