"""Requests without a reply in the shell: which are named, once, and how."""

from chatsh import texts
from chatsh.session import Request, ScriptLine
from chatsh.ui.unanswered import Unanswered, check_interval
from chatsh.words import Word


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def typed(text: str) -> Request:
    return Request(Word.SEND, ScriptLine(0, text), destination="bob")


def test_a_request_is_named_once_when_it_has_waited_the_timeout():
    clock = Clock()
    unanswered = Unanswered(2.0, clock)
    first, second = typed("@bob one"), typed("@bob two")
    assert unanswered.overdue([first]) == []
    clock.now += 1.5
    assert unanswered.overdue([first, second]) == []
    clock.now += 0.5
    assert unanswered.overdue([first, second]) == [first]
    clock.now += 5
    assert unanswered.overdue([first, second]) == [second]
    assert unanswered.overdue([first, second]) == []


def test_an_answered_request_and_chatshs_own_are_never_named():
    clock = Clock()
    unanswered = Unanswered(1.0, clock)
    own, answered, late = Request(Word.LIST, quiet=True), typed("@bob a"), typed("@bob b")
    unanswered.overdue([own, answered, late])
    clock.now += 0.9
    unanswered.overdue([own, late])  # answered meanwhile
    clock.now += 0.1
    assert unanswered.overdue([own, answered, late]) == [late]  # a new one of the same line
    clock.now += 1
    assert unanswered.overdue([own, answered]) == [answered]


def test_the_notice_quotes_each_line_once_escaped_and_counts_the_rest():
    assert texts.plain(texts.no_reply(["@a,b hi", "@a,b hi"], 30)) == (
        'No reply to "@a,b hi" after 30 s; the server may never answer it.')
    notice = texts.plain(texts.no_reply(["@x \x1b[2J", "!who", "@y " + "z" * 100, "4", "5"],
                                        2.5))
    assert notice == ('No reply to "@x ^[[2J", "!who", "@y ' + "z" * 57 + '..." and 2 more '
                      'after 2.5 s; the server may never answer them.')


def test_checks_come_a_few_times_per_timeout_never_in_a_busy_loop():
    assert check_interval(30) == 1.0
    assert check_interval(0.5) == 0.125
    assert check_interval(1e-9) >= 0.05  # --reply-timeout 1e-9 must not spin the shell
