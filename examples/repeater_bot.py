"""A small bot on the chatsh client engine: it answers every message it gets.

    python examples/repeater_bot.py --port 5378 [--name repeater]

Then, from another terminal: ``chatsh --port 5378`` and ``@repeater hi``.
"""

from __future__ import annotations

import argparse
import queue
import sys

from chatsh import protocol as p
from chatsh.engine import ClientEngine, ConnectError, HandshakeTimeout
from chatsh.session import Deliveries, Disconnected, Event, LoggedIn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=p.DEFAULT_PORT)
    parser.add_argument("--name", default="repeater")
    args = parser.parse_args()

    engine = ClientEngine(args.host, args.port)
    events: queue.Queue[Event] = queue.Queue()
    try:  # the engine hands over the events of each read, on its reader thread
        verdict = engine.log_in(args.name, lambda batch: [events.put(e) for e in batch])
    except (ConnectError, HandshakeTimeout) as exc:
        print(exc, file=sys.stderr)
        return 2
    if not isinstance(verdict, LoggedIn):
        print(f"login refused: {verdict}", file=sys.stderr)
        return 1
    print(f"{args.name} is online; Ctrl-C to stop", file=sys.stderr)
    try:
        while True:
            event = events.get()
            if isinstance(event, Disconnected):
                print("the server went away", file=sys.stderr)
                return 3
            if not isinstance(event, Deliveries):
                continue
            for sender, body in event:  # the messages of one read, in order
                if sender != args.name:
                    engine.send_message(sender, f"you said {len(body)} characters: {body}")
    except KeyboardInterrupt:
        return 0
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
