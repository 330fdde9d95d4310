"""`mcr.language.heading`: which way an option says a thing moves, in wordings written here (none from a suite)."""

from __future__ import annotations

import pytest

from mcr.language.heading import Heading, heading_of

from .conftest import needs_wordnet

pytestmark = needs_wordnet


@pytest.mark.parametrize(("text", "dx", "dy"), [
    ("it glides over from the right side to the left side", -1, None),
    ("slides rightwards", 1, None),
    ("off to the left", -1, None),
    ("from the bottom edge up to the top", None, -1),
    ("it heads downward", None, 1),
    ("climbs up", None, -1),
    ("the kite goes up and to the right", 1, -1),
])
def test_positions_and_their_order_give_the_heading(text, dx, dy):
    assert heading_of(text) == Heading(dx=dx, dy=dy)


@pytest.mark.parametrize(("text", "dy"), [("the stone sinks", 1), ("it plummets", 1), ("a balloon rises", -1),
                                           ("it descends slowly", 1)])
def test_verbs_say_up_or_down_through_their_wordnet_glosses(text, dy):
    heading = heading_of(text)
    assert (heading.dy if heading is not None else None) == dy


@pytest.mark.parametrize("text", ["it never moves", "the cart remains where it is", "it is motionless the whole time",
                                  "it doesn't go anywhere", "the bike stays put"])
def test_stillness_is_negated_motion_or_a_word_whose_opposite_is_moving(text):
    assert heading_of(text) == Heading(still=True)


def test_both_ends_of_an_axis_joined_by_and_is_back_and_forth():
    assert heading_of("it swings left and right").back_and_forth == frozenset({"x"})
    assert heading_of("it hops up and down twice").back_and_forth == frozenset({"y"})


def test_towards_and_away_from_the_camera():
    assert heading_of("it rushes toward the viewer").depth == 1
    assert heading_of("it drifts away into the distance").depth == -1


@pytest.mark.parametrize("text", ["a green tractor", "the second photograph", "she reads a letter", "four", "blue"])
def test_options_that_say_nothing_about_movement_have_no_heading(text):
    assert heading_of(text) is None


def test_a_noun_that_could_be_a_falling_verb_says_no_direction():
    assert heading_of("No, snow is expected on Thursday") is None  # "snow" is the weather, not a movement
