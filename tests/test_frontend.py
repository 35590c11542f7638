"""The one event path, in process: each engine event is classified once by the front
end, and the text and JSON runners are two renderings of the same calls."""

import io
import json

import pytest

from chatsh import protocol as p
from chatsh import texts
from chatsh.engine import ClientEngine
from chatsh.expect import parse_expectation
from chatsh.modes.jsonl import JsonScriptRunner
from chatsh.modes.script import ScriptOptions, ScriptRunner
from chatsh.session import (
    Deliveries,
    Disconnected,
    LineTooLong,
    LoggedIn,
    LoginRefused,
    Replied,
    Request,
    ScriptLine,
)
from chatsh.words import Word

LINE = ScriptLine(3, "@bob hi")
SENT = Request(Word.SEND, LINE, destination="bob")
LISTED = Request(Word.LIST, ScriptLine(4, "!who"))

# each event: the text a person reads (stdout), what goes to stderr, the JSON object
CASES = [
    (Replied(SENT, p.SendOk()), ["The message was sent successfully"], "",
     {"event": "send-ok", "line": 3, "to": "bob"}),
    (Replied(SENT, p.BadDestUser()), ["The destination user does not exist"], "",
     {"event": "bad-dest-user", "line": 3, "to": "bob"}),
    (Replied(LISTED, p.ListOk(("me", "bob"))), ["There are 2 online users:", "me", "bob"], "",
     {"event": "users", "line": 4, "users": ["me", "bob"]}),
    (Replied(Request(Word.LIST, quiet=True), p.ListOk(("me",))), [], "", None),
    (p.BadRequestHeader(), ["Error: Unknown issue in previous message header."], "",
     {"event": "bad-request-header", "line": None}),
    (Replied(SENT, p.BadRequestBody()), ["Error: Unknown issue in previous message body."], "",
     {"event": "bad-request-body", "line": 3, "to": "bob"}),
    (Deliveries([("bob", "hi \x1b[2J there")]), ["From bob: hi ^[[2J there"], "",
     {"event": "delivery", "from": "bob", "body": "hi \x1b[2J there"}),
    (LoggedIn("me", "me"), ["Successfully logged in as me!"], "",
     {"event": "logged-in", "name": "me", "asked": "me"}),
    (LoggedIn("ME", "me"), ["Successfully logged in as ME!"], "chatsh: ",
     {"event": "logged-in", "name": "ME", "asked": "me"}),
    (LoginRefused("me", p.InUse()),
     ["Cannot log in as me. That username is already in use."], "",
     {"event": "login-refused", "name": "me", "reason": "in-use"}),
    (LoginRefused("me", p.Busy()), ["Cannot log in. The server is full!"], "",
     {"event": "login-refused", "name": "me", "reason": "busy"}),
    (LoginRefused("m!e", p.BadRequestBody()),
     ["Cannot log in as m!e. That username contains disallowed characters."], "",
     {"event": "login-refused", "name": "m!e", "reason": "bad-name"}),
    (LoginRefused("me", p.BadRequestHeader()),
     ["Error: Unknown issue in previous message header."], "",
     {"event": "login-refused", "name": "me", "reason": "bad-header"}),
    (LoginRefused("me", None), [texts.CLOSED_AT_LOGIN], "",
     {"event": "login-refused", "name": "me", "reason": "closed"}),
    (LineTooLong(1024), [], "chatsh: Skipped a server line longer than 1024 bytes.\n",
     {"event": "line-too-long", "limit": 1024}),
    (p.UnknownLine("WHAT\u202eever"), [], "chatsh: ",
     {"event": "unknown-line", "text": "WHAT\u202eever"}),
    (Disconnected((SENT, Request(Word.LIST))), [], "",
     {"event": "connection-lost", "unanswered": [{"line": 3, "text": "@bob hi"}]}),
]


def runner(kind: type[ScriptRunner], **options):
    out, err = io.StringIO(), io.StringIO()
    front = kind(ClientEngine("127.0.0.1", 1), out, err, ScriptOptions(**options))
    return front, out, err


@pytest.mark.parametrize("event, shown, stderr, obj", CASES, ids=lambda c: type(c).__name__)
def test_each_event_renders_as_text_and_as_json_from_the_same_call(event, shown, stderr, obj):
    text, out, err = runner(ScriptRunner)
    text.on_event(event)
    text.output.flush()
    assert out.getvalue() == "".join(f"{line}\n" for line in shown)
    assert err.getvalue().startswith(stderr) and bool(err.getvalue()) == bool(stderr)

    as_json, out, json_err = runner(JsonScriptRunner)
    as_json.on_event(event)
    as_json.output.flush()
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert objects == ([obj] if obj else [])
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()
    assert json_err.getvalue() == err.getvalue()
    # what !expect can see is the same whichever way the run is reported
    assert as_json.window.last(10) == text.window.last(10) == shown[-10:]


def test_counts_follow_the_events():
    front, _, _ = runner(JsonScriptRunner)
    front.on_sending([SENT, LISTED])
    front.on_event(Replied(SENT, p.SendOk()))
    front.on_event(Replied(Request(Word.LIST, quiet=True), p.ListOk(())))
    front.on_event(Deliveries([("bob", "x")]))
    assert (front.sent, front.answered, front.delivered) == (2, 1, 1)
    front.output.flush()
    sent = [json.loads(line) for line in front.output.out.getvalue().splitlines()][:2]
    assert sent == [{"event": "sent", "line": 3, "request": "SEND", "text": "@bob hi",
                     "to": "bob"},
                    {"event": "sent", "line": 4, "request": "LIST", "text": "!who"}]
    out = io.StringIO()
    front.output.out = out
    assert front.finish(0) == 0
    summary = json.loads(out.getvalue())
    seconds = summary.pop("seconds")
    assert summary == {"event": "summary", "sent": 2, "answered": 1, "delivered": 1,
                       "status": 0}
    assert isinstance(seconds, float) and 0 <= seconds < 60 and round(seconds, 6) == seconds


@pytest.mark.parametrize("kind", [ScriptRunner, JsonScriptRunner])
def test_strict_fails_at_the_first_error_reply_naming_its_line(kind):
    front, _, err = runner(kind, strict=True)
    front.on_event(Replied(SENT, p.SendOk()))
    assert not front.failed
    front.on_event(Replied(SENT, p.BadDestUser()))
    assert front.failed
    assert "line 3: @bob hi: The destination user does not exist" in err.getvalue()


@pytest.mark.parametrize("kind", [ScriptRunner, JsonScriptRunner])
def test_lines_chatsh_refuses_are_named_and_not_sent(kind):
    front, out, err = runner(kind)
    assert front.run_line("hello", ScriptLine(7, "hello")) is None
    assert front.run_line("!nonsense", ScriptLine(8, "!nonsense")) is None
    assert front.run_line("!expect /(/", ScriptLine(9, "!expect /(/")) is None
    front.output.flush()
    assert front._batch == []
    lines = err.getvalue().splitlines()
    assert [line.split(":")[1] for line in lines] == [" line 7", " line 8", " line 9"]
    assert all(line.endswith("Not sent: " + text)
               for line, text in zip(lines, ["hello", "!nonsense", "!expect /(/"], strict=True))
    assert front.failed  # a check that cannot run fails the script, --strict or not
    if kind is JsonScriptRunner:
        objects = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [(o["event"], o["line"], o["text"]) for o in objects] == [
            ("rejected", 7, "hello"), ("rejected", 8, "!nonsense"), ("rejected", 9, "!expect /(/")]
        assert all(o["reason"] and o["reason"] in line for o, line in zip(objects, lines,
                                                                           strict=True))


def test_a_message_and_a_list_are_batched_in_order():
    front, _, _ = runner(ScriptRunner, batch_size=10)
    front.run_line("@bob hi there", LINE)
    front.run_line("!who", ScriptLine(4, "!who"))
    assert [(request.header, request.line, wire) for request, wire in front._batch] == [
        (Word.SEND, LINE, tuple(p.encode_send_parts("bob", "hi there"))),
        (Word.LIST, ScriptLine(4, "!who"), (p.encode_list(),))]
    assert front.run_line("!quit") == 0


def test_expectations_met_and_missed_are_reported():
    front, out, _ = runner(JsonScriptRunner, expect_timeout=0.01)
    front.on_event(Deliveries([("bob", "pong 1")]))
    front.line = ScriptLine(5, "!expect pong")
    front.expect(parse_expectation("pong"))
    front.line = ScriptLine(6, "!expect nothing")
    front.expect(parse_expectation("nothing"))
    front.output.flush()
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert objects[1] == {"event": "expect-met", "line": 5, "expected": "pong",
                          "matched": "From bob: pong 1"}
    assert objects[2]["event"] == "expect-missed" and objects[2]["line"] == 6
    assert objects[2]["timeout"] == 0.01 and objects[2]["expected"] == "nothing"
    assert objects[2]["last"] == []  # a line an expectation met is not seen again
    assert front.failed


class Shell(ScriptRunner):
    """The front end as the interactive shell has it: script-only commands refused."""

    scripted = False


def test_the_shell_refuses_script_only_commands_and_runs_the_rest():
    front, _, err = runner(Shell, batch_size=10)
    front.run_line("!wait 1", ScriptLine(1, "!wait 1"))
    front.run_line("!who", ScriptLine(2, "!who"))
    assert "!wait is for scripts (--script FILE or -c LINE)." in err.getvalue()
    assert [(request.header, request.line) for request, _ in front._batch] == [
        (Word.LIST, ScriptLine(2, "!who"))]


def test_a_refused_line_says_why():
    front, _, err = runner(ScriptRunner)
    front.run_line("@bob", ScriptLine(4, "@bob"))
    front.run_line("hello", ScriptLine(5, "hello"))
    lines = err.getvalue().splitlines()
    assert len(lines) == 2 and all(len(line.split(": ", 2)[2]) > len("Not sent: x")
                                   for line in lines)
    assert lines[0] != lines[1].replace("hello", "@bob")  # each says its own reason


def test_a_login_under_another_name_says_so_once():
    front, out, err = runner(ScriptRunner)
    front.on_event(LoggedIn("Bob", "bob"))
    front.output.flush()
    assert front.me == "Bob"
    assert out.getvalue() == "Successfully logged in as Bob!\n"
    assert err.getvalue() == "chatsh: The server logged you in as Bob, not as bob.\n"
