"""Short, safe text for field values (secrets already redacted upstream)."""

from __future__ import annotations

import json
from typing import Any

from provgit.secrets import redact


def short(value: Any, limit: int = 80) -> str:
    text = json.dumps(redact(value), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"
