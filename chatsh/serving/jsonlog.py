"""``--log-format json``: the log as one JSON object a line, for machines: time (UTC),
level, event, peer (address and port), user and the line's text. A plain line (of the
cluster, say) is event ``message``. Peer-supplied text stays escaped: names are cut and
escaped before they get here, and every object is ASCII."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from ..serverlog import LogLine


def log_json(message: str) -> None:
    line = message if isinstance(message, LogLine) else None
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": line.level if line else "info",
        "event": line.event if line else "message",
        "peer": (line.peer or None) if line else None,
        "user": (line.user or None) if line else None,
        "message": str(message),
    }
    sys.stderr.write(json.dumps(record) + "\n")
    sys.stderr.flush()
