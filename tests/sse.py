"""Reading a Server-Sent Events stream in tests: the gateway's unit and e2e suites share it."""

from __future__ import annotations

import json
from typing import Any


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of a whole stream: ``{"id": int, "event": str, "data": JSON}`` each.

    Comment lines (``: ...``, the keep-alives) are skipped.
    """
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if fields:
            events.append(
                {
                    "id": int(fields["id"]),
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }
            )
    return events
