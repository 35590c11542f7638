"""--log-format json: one object a line (time, level, event, peer, user, message), every
peer-supplied text escaped; the text format is unchanged by default."""

from __future__ import annotations

import json
from datetime import datetime

from conftest import RawClient
from served import Served

from chatsh.serverlog import LogLine
from chatsh.serving.jsonlog import log_json

try:
    import uvloop
except ImportError:
    uvloop = None

FIELDS = {"time", "level", "event", "peer", "user", "message"}


def records(served: Served) -> list[dict[str, object]]:
    found = [json.loads(line) for line in served.log]
    assert all(set(record) == FIELDS for record in found), found
    return found


def test_the_log_is_one_json_object_a_line():
    served = Served("--log-format", "json")
    try:
        ann = RawClient(served.port)
        assert ann.login("ann") == b"HELLO ann"
        hostile = RawClient(served.port)
        assert hostile.login('\x1b]0;owned\x07"\\\u202eevil') == b"BAD-RQST-BODY"
        ann.close()
        served.wait_logged("ann logged out")
    finally:
        assert served.stop() == 0
    found = records(served)
    assert [record["event"] for record in found][:1] == ["listening"]
    assert "stopping" in [record["event"] for record in found]
    login = next(record for record in found if record["event"] == "login")
    assert login["user"] == "ann" and login["level"] == "info"
    assert str(login["peer"]).startswith("127.0.0.1:")
    assert datetime.fromisoformat(str(login["time"]).replace("Z", "+00:00")).tzinfo
    refused = next(record for record in found if record["event"] == "login_refused")
    assert refused["user"] == '^[]0;owned^G"\\<U+202E>evil'
    assert all(ord(c) < 128 for line in served.log for c in line)  # raw ESC, BEL, U+202E: none
    assert {"connect", "logout", "disconnect"} <= {record["event"] for record in found}


def test_the_text_log_is_unchanged_by_default():
    served = Served()
    try:
        assert RawClient(served.port).login("ann") == b"HELLO ann"
        served.wait_logged("ann logged in")
    finally:
        assert served.stop() == 0
    assert all(line.startswith("chatsh serve: ") for line in served.log)
    assert f"chatsh serve: listening on 127.0.0.1:{served.port} (max 64 users)" in served.log


def test_the_log_says_which_event_loop_serves():
    """uvloop, when installed (the extra chatshell[fast]), serves: the log says so, or says
    how to have it."""
    served = Served()
    assert served.stop() == 0
    loop = (f"uvloop's {uvloop.__version__}" if uvloop else
            "asyncio's (pip install 'chatshell[fast]' for uvloop's)")
    assert f"chatsh serve: event loop: {loop}" in served.log


def test_a_plain_line_and_a_line_with_fields(capsys):
    log_json("the cluster engine is back")
    log_json(LogLine("dropped bob", "dropped", "10.0.0.1:5", "b\x00b", "warning"))
    plain, fielded = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (plain["event"], plain["level"], plain["peer"], plain["user"]) == (
        "message", "info", None, None)
    assert (fielded["event"], fielded["level"], fielded["peer"], fielded["user"]) == (
        "dropped", "warning", "10.0.0.1:5", "b^@b")
