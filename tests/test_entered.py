"""What one Enter gives the shell: lines in order, a paste's addressed, long ones asked."""

import pytest

from chatsh.ui.entered import Entered, entered, new_partner, unseen_question


@pytest.mark.parametrize("text, lines, address", [
    ("@bob hi", ["@bob hi"], ""),
    ("   ", [], ""),
    ("@bob one\ntwo\n\n  three", ["@bob one", "@bob two", "@bob   three"], "@bob"),
    ("@bob\none\ntwo", ["@bob one", "@bob two"], "@bob"),
    ("@bob,carol one\ntwo", ["@bob,carol one", "@bob,carol two"], "@bob,carol"),
    ("@bob one\n!who\n@carol mine\n!to dave\nafter", ["@bob one", "!who", "@carol mine",
                                                     "!to dave", "@bob after"], "@bob"),
    ("one\ntwo", ["one", "two"], ""),  # no address: each line as typed (!to may take it)
    ("@b,,c one\ntwo", ["@b,,c one", "two"], ""),  # no valid name: nothing is addressed
    ("@r#1 one\ntwo", ["@r#1 one", "@r#1 two"], "@r#1"),  # the reference server's names
    ("!who\n@bob x", ["!who", "@bob x"], ""),
])
def test_lines_and_their_address(text, lines, address):
    assert entered(text) == Entered(lines, address)


def test_more_than_five_lines_ask_first():
    assert entered("@bob " + "\n".join("abcde")).question() is None
    assert entered("@bob,carol " + "\n".join("abcdef")).question() == (
        "Send these 6 lines to bob, carol? (y/N) ")
    assert entered("\n".join(f"@bob {n}" for n in range(7))).question() == (
        "Send these 7 lines to bob? (y/N) ")
    assert entered("\n".join("!who" for _ in range(6))).question() == "Run these 6 lines? (y/N) "


def test_a_partner_named_by_to():
    assert new_partner("!to zed") == "zed"
    assert new_partner("  !to @zed ") == "zed"
    assert new_partner("!to") is None and new_partner("!to b,d") is None
    assert new_partner("!to r#1") == "r#1"  # a name the course's reference server allows
    assert new_partner("@bob !to zed") is None
    assert unseen_question("z\x1bd") == ("Nobody called z^[d has been seen here; talk to z^[d "
                                         "anyway? (y/N) ")
