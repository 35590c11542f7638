"""Lines folded to the terminal's width, hung under their head."""

from hypothesis import example, given
from hypothesis import strategies as st
from wcwidth import wcswidth

from chatsh import texts
from chatsh.ui.fold import MAX_FOLDED, fold

WORDS = st.text(alphabet=st.sampled_from("ab  xyz漢字e\u0301é👩-"), max_size=200)


def rows_text(rows: list[texts.Fragments]) -> list[str]:
    return [texts.plain(row) for row in rows]


@given(st.sampled_from(["bob", "名前", "alexandra-the-great"]), WORDS,
       st.integers(min_value=1, max_value=90), st.booleans())
@example("bob", "漢字 " * 10, 50, False)  # 40 characters, 60 cells: folded all the same
def test_folding_loses_nothing_but_the_spaces_at_its_breaks(sender, body, columns, stamped):
    line = texts.delivery(sender, body)
    if stamped:
        line = [("class:timestamp", "[12:34] "), *line]
    rows = rows_text(fold(line, columns))
    whole = texts.plain(line)
    limit = columns if whole.isascii() else columns - 1
    if len(rows) == 1:  # what is left unfolded fits (wide characters counted twice)
        assert rows[0].rstrip() == whole.rstrip()
        assert wcswidth(rows[0].rstrip()) <= limit
        return
    indent = len(rows[1]) - len(rows[1].lstrip(" "))
    assert all(row.startswith(" " * indent) for row in rows[1:])
    assert "".join(rows[0].split()) + "".join(
        "".join(row[indent:].split()) for row in rows[1:]) == "".join(whole.split())
    for row in rows:  # only a row of one character can be wider than the terminal
        assert wcswidth(row) <= limit or wcswidth(row.strip()) <= 2


def test_words_are_kept_whole_and_only_longer_ones_are_cut():
    line = texts.delivery("bob", "aaaa bbbb cccc dddd " + "x" * 30 + " end")
    assert rows_text(fold(line, 20)) == [
        "From bob: aaaa bbbb", "          cccc dddd", "          xxxxxxxxxx",
        "          xxxxxxxxxx", "          xxxxxxxxxx", "          end"]
    assert rows_text(fold(line, 30)) == [
        "From bob: aaaa bbbb cccc dddd", "          " + "x" * 20, "          " + "x" * 10 + " end"]


def test_what_fits_has_no_head_or_is_huge_is_left_to_the_terminal():
    assert fold(texts.delivery("bob", "short"), 60) == [texts.delivery("bob", "short")]
    system = texts.system("word " * 40)
    assert fold(system, 60) == [system]
    huge = texts.delivery("bob", "word " * (MAX_FOLDED // 5))
    assert fold(huge, 60) == [huge]


def test_styles_are_kept_across_the_breaks():
    line = texts.delivery("bob", "plain then \x1b escaped then more words", highlight=True)
    rows = fold(line, 20)
    assert [fragment for row in rows for fragment in row if fragment[1].strip()] == [
        fragment for fragment in line if fragment[1].strip()] or len(rows) > 1
    assert any("class:escape" in style for row in rows for style, _ in row)
    assert all(style == "" or "class:" in style for row in rows for style, _ in row)


def test_the_rows_a_reflowing_terminal_adds_above_the_cursor():
    from prompt_toolkit.data_structures import Point
    from prompt_toolkit.layout.screen import Char, Screen

    from chatsh.ui.resize import reflows, rows_added

    screen = Screen()
    for x, char in enumerate("alice> " + "x" * 53):  # 60 columns, then 10 more
        screen.data_buffer[0][x] = Char(char)
    for x, char in enumerate("y" * 10):
        screen.data_buffer[1][x] = Char(char)
    screen.height = 3
    assert rows_added(screen, Point(x=10, y=1), 40) == 1  # the first row became two
    assert rows_added(screen, Point(x=10, y=1), 60) == 0
    assert rows_added(screen, Point(x=45, y=0), 40) == 1  # the cursor's row cut before it
    assert rows_added(screen, Point(x=10, y=1), 20) == 2
    assert reflows({"TERM": "xterm-256color"}) and reflows({"TERM": "linux", "TMUX": "x"})
    assert not reflows({"TERM": "xterm-256color", "XTERM_VERSION": "XTerm(390)"})
    assert not reflows({"TERM": "linux"})


def test_a_prompt_toolkit_without_the_resize_hook_keeps_its_own_resize():
    """The reflow fix leans on ``Application._on_resize``, which prompt_toolkit does not
    promise: a release without it must leave the shell as it is, not end it."""
    from chatsh.ui.resize import keep_prompt_whole

    class Bare:
        """An application with none of the hooks."""

    bare = Bare()
    keep_prompt_whole(bare, {"TMUX": "x"})  # type: ignore[arg-type]
    assert vars(bare) == {}


def test_a_renderer_without_its_private_height_is_asked_as_prompt_toolkit_asks():
    """The first answer of the terminal is not believed by keeping the renderer's
    ``_min_available_height``; a renderer without it is asked as it would ask itself."""
    from types import SimpleNamespace

    from prompt_toolkit.output import DummyOutput
    from prompt_toolkit.renderer import CPR_Support

    from chatsh.ui.display import Display
    from chatsh.ui.style import chat_style

    answers: list[int] = []
    asked: list[bool] = []

    class Renderer:
        """A renderer with the public part of prompt_toolkit's, and no more."""
        cpr_support = CPR_Support.UNKNOWN
        waiting_for_cpr = True

        def report_absolute_cursor_row(self, row: int) -> None:
            answers.append(row)

        def request_absolute_cursor_position(self) -> None:
            asked.append(True)

    renderer = Renderer()
    display = Display(DummyOutput(), chat_style(), None)
    display._ask_where(SimpleNamespace(renderer=renderer))  # type: ignore[arg-type]
    renderer.report_absolute_cursor_row(7)
    assert answers == [7] and asked == [True]


def test_a_head_wider_than_the_row_breaks_between_its_words():
    """``!last`` with time stamps at 20 columns: the head does not fit the first row, and
    is broken at a space in it, not through the time (``2026-12-07 1`` / ``8:17``);
    a name longer than a row is still cut."""
    line: texts.Fragments = [("class:timestamp", "[18:17] "),
                             ("class:dim", "2026-12-07 18:17 "), ("class:from", "<"),
                             ("", "x"), ("class:from", "> "), ("class:body", "end")]
    assert rows_text(fold(line, 20)) == ["[18:17] 2026-12-07", "  18:17 <x> end"]
    assert rows_text(fold(texts.delivery("n" * 30, "a message"), 20)) == [
        "From nnnnnnnnnnnnnnn", "  nnnnnnnnnnnnnnn: a", "  message"]


def test_an_emoji_joined_with_zero_width_joiners_stays_on_one_row():
    """A family (man, woman, girl, boy joined by U+200D) is one picture in terminals that
    join them: a row ends before it or after it, never between its parts."""
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"
    heart_on_fire = "\u2764\ufe0f\u200d\U0001F525"
    for columns in range(20, 41):
        for picture in (family, heart_on_fire):
            rows = rows_text(fold(texts.delivery("bob", "word " + picture * 12), columns))
            assert len(rows) > 1
            for row in rows:
                assert not row.endswith("\u200d") and not row.lstrip().startswith(
                    ("\u200d", "\ufe0f")), (columns, rows)
                assert row.count("\u200d") == row.count(picture[-1]) * (
                    picture.count("\u200d")), (columns, rows)
