"""Messages made into the terminal's text in one pass write what their fragments would."""

import io

from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.data_structures import Size
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.vt100 import Vt100_Output

from chatsh import texts
from chatsh.ui.deliveries import DeliveryRenderer, heard
from chatsh.ui.display import Display, Rendered, as_fragments
from chatsh.ui.stamps import Stamps
from chatsh.ui.style import chat_style

HOSTILE = st.text(alphabet=st.sampled_from("ab Alice!\x1b\x07\r\u202e\u200b\x9bé👩\t"),
                  max_size=12)


def display(capture: io.StringIO, columns: int = 80) -> Display:
    return Display(Vt100_Output(capture, lambda: Size(rows=24, columns=columns),
                                term="xterm"), chat_style(), None)


@given(st.lists(st.tuples(st.sampled_from(["bob", "alice", "m\x1bx", "zoë", "b\u200bb",
                                           "名前"]),
                          HOSTILE | st.text("ab 漢e\u0301", max_size=40)),
                min_size=1, max_size=8),
       st.sampled_from(["alice", "bob", ""]), st.sampled_from([80, 20, 12, 1]),
       st.sampled_from([80, 20, 13]))
def test_the_text_of_a_flood_is_what_its_fragments_would_write(pairs, me, columns, now):
    """Folded alike for the terminal's width, and folded again when it is resized
    between the text's making and its writing."""
    mentioned = texts.mention_test(me)
    fast, slow, resized, again = (io.StringIO() for _ in range(4))
    rendered = DeliveryRenderer(display(fast, columns)).render(pairs, me, mentioned)
    display(fast, columns).write_now(rendered)
    display(resized, now).write_now(rendered)
    lines = [texts.delivery(sender, body, sender != me and mentioned(body))
             for sender, body in pairs]
    display(slow, columns).write_now(*lines)
    display(again, now).write_now(*lines)
    assert fast.getvalue() == slow.getvalue()
    assert resized.getvalue() == again.getvalue()
    assert rendered.lines() == lines
    assert rendered.count == len(pairs)
    assert rendered.size == sum(texts.width(line) for line in lines)
    others = [sender for sender, _ in pairs if sender != me]
    counts = heard(pairs, me)
    assert counts == {name: others.count(name) for name in others}
    assert list(counts) == list(reversed(dict.fromkeys(reversed(others))))  # latest last


def test_a_mention_stands_out_and_a_message_of_ones_own_does_not():
    capture = io.StringIO()
    renderer = DeliveryRenderer(display(capture))
    mentioned = texts.mention_test("alice")
    plain_line = renderer.render([("bob", "hi there")], "alice", mentioned).text
    mention = renderer.render([("bob", "hi alice")], "alice", mentioned).text
    own = renderer.render([("alice", "hi alice")], "alice", mentioned).text
    own_plain = renderer.render([("alice", "hi there")], "alice", mentioned).text
    assert mention.split("hi alice")[0] != plain_line.split("hi there")[0]
    assert own.split("hi alice")[0] == own_plain.split("hi there")[0]


def test_other_outputs_and_stamps_get_the_lines_themselves():
    pairs = [("bob", "one"), ("bob", "t\x1bwo")]
    lines = [texts.delivery("bob", "one"), texts.delivery("bob", "t\x1bwo")]
    screen = Display(DummyOutput(), chat_style(), None)
    rendered = DeliveryRenderer(screen).render(pairs, "me", texts.mention_test("me"))
    assert as_fragments([rendered, texts.system("after")]) == [*lines, texts.system("after")]
    stamped = Stamps("%H").on([rendered])
    assert [texts.plain(line)[5:] for line in stamped] == [texts.plain(line) for line in lines]


def test_a_closed_display_counts_the_lines_it_dropped():
    screen = Display(DummyOutput(), chat_style(), None)
    screen._loop_thread = -1  # queue without a loop to print on
    screen.call_soon = lambda callback: None  # type: ignore[method-assign]
    rendered = Rendered("", 10, 3, 0, list)
    screen.show(rendered, texts.system("x"))
    assert screen.close() == 4


def test_the_display_says_how_long_it_has_had_nothing_to_draw():
    import time

    screen = Display(DummyOutput(), chat_style(), None)
    screen._loop_thread = -1  # queue without a loop to print on
    screen.call_soon = lambda callback: None  # type: ignore[method-assign]
    screen.show(texts.system("waiting"))
    assert screen.drawn_for() == 0.0 and not screen.drawn
    screen.drain()
    assert screen.drawn and 0.0 <= screen.drawn_for() < 1.0
    before = screen.drawn_for()
    time.sleep(0.01)
    assert screen.drawn_for() > before


def test_a_folded_mention_after_a_folded_plain_message_keeps_its_style_on_every_row():
    """The rows after the first are cached per indent and per style: a mention's rows
    hang in the mention's style even after a plain message's rows of the same indent."""
    pairs = [("bob", "plain words that fold over a few rows"),
             ("bob", "alice words that fold over a few rows"),
             ("bob", "plain words that fold over a few rows")]
    mentioned = texts.mention_test("alice")
    fast, slow = io.StringIO(), io.StringIO()
    rendered = DeliveryRenderer(display(fast, 20)).render(pairs, "alice", mentioned)
    display(fast, 20).write_now(rendered)
    display(slow, 20).write_now(*[texts.delivery(sender, body, mentioned(body))
                                  for sender, body in pairs])
    assert fast.getvalue() == slow.getvalue()
