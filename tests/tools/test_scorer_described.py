"""A described picture ("a red kite over a grey sea") is matched word by word where each kind of fact is measured."""

from __future__ import annotations

import pytest

from mcr.context import TimeSpan
from mcr.language.lexicon import lexicon_available
from mcr.tools.evidence.score import described
from mcr.tools.evidence.units import Unit
from mcr.tools.movers import Mover, PathPoint
from mcr.tools.pixels import ColourShare

pytestmark = pytest.mark.skipif(not lexicon_available(),
                                reason="needs the Debian packages wordnet-base and wordnet-sense-index")


def _scene(**facts) -> Unit:
    return Unit("e4", "scene", TimeSpan(start=0.0, end=5.0), **facts)


def test_colours_labels_and_read_words_each_count_where_they_are_measured():
    beach = _scene(colours=[("light blue", 0.7), ("white", 0.2)], objects=[("kite", 2), ("person", 3)], text="SURF")
    farm = _scene(colours=[("green", 0.6), ("brown", 0.3)], objects=[("horse", 1)])
    for option, right, wrong in (("two kites with people under them", beach, farm), ("a SURF sign", beach, farm),
                                 ("a brown horse", farm, beach)):
        assert described(option, right) > 0.5 > described(option, wrong) + 0.3, option
    both = "kites and a brown horse"
    assert 0.2 < described(both, beach) < 0.8 and 0.2 < described(both, farm) < 0.8  # each measured part of it


def test_a_small_thing_counts_by_its_own_colour_a_detection_or_a_mover():
    mover = Mover(start=1.0, end=4.0, path=[PathPoint(t=1.0, x=0.1, y=0.5, area=0.01),
                                            PathPoint(t=4.0, x=0.9, y=0.5, area=0.01)], dx=0.8, dy=0.0, growth=1.0,
                  colours=[ColourShare(name="orange", share=0.9)])
    option = "an orange thing rolling over green"
    assert described(option, _scene(colours=[("green", 0.98)], movers=[mover])) > \
        described(option, _scene(colours=[("green", 0.98)])) + 0.3
    boxed = _scene(colours=[("green", 0.98)], objects=[("car", 1)], object_colours=[("car", [("red", 0.8)])])
    assert described("a red car on green", boxed) > 0.9 > 0.75 > described("a blue car on green", boxed)


def test_one_informative_word_is_left_to_the_plain_matching():
    assert described("the background", _scene(colours=[("green", 0.98)])) == 0.0


def test_a_colour_named_as_a_place_is_found_by_the_colours_measured_there():
    from mcr.tools.evidence.asked import asked
    from mcr.tools.evidence.score import scored

    options = ["HARBOUR", "MARKET", "BRIDGE"]
    units = [_scene(colours=[("teal", 0.95)], text="HARBOUR"), _scene(colours=[("orange", 0.96)], text="MARKET"),
             _scene(colours=[("light grey", 0.9)], text="BRIDGE")]
    found = scored(asked("Which name is written on the orange backdrop?", tuple(options)), options, units)
    assert max(found, key=lambda s: s.p).option == "MARKET"
    abouts = [s.about for s in found]
    assert abouts[1] > max(abouts[0], abouts[2]) + 0.3  # orange is measured there; "backdrop" nowhere


def test_a_shaded_colour_named_as_a_place_is_one_colour_not_two_words():
    """"the light blue card" is the light blue one: "blue" alone is far from it, and "light" is no colour."""
    from mcr.tools.evidence.asked import asked
    from mcr.tools.evidence.score import scored

    options = ["ORBIT", "COMET"]
    units = [_scene(colours=[("light blue", 0.93)], text="ORBIT"), _scene(colours=[("dark blue", 0.94)], text="COMET")]
    found = scored(asked("Which word sits on the light blue card?", tuple(options)), options, units)
    assert max(found, key=lambda s: s.p).option == "ORBIT"
    assert found[0].about > found[1].about + 0.3


def test_a_sentence_joined_with_its_frame_keeps_the_frame_s_object_colours():
    """A moment (what was said + the frame shown then) answers a thing's colour by the thing, not the frame."""
    from mcr.tools.evidence.asked import asked
    from mcr.tools.evidence.checks import join_moments
    from mcr.tools.evidence.score import scored

    said = Unit("e3", "speech", TimeSpan(start=0.0, end=3.0), speech="The cyclist waves from the bridge.")
    seen = Unit("e5", "frame", TimeSpan(start=1.0, end=1.0), colours=[("grey", 0.8), ("white", 0.1)],
                objects=[("person", 1)], object_colours=[("person", [("red", 0.7), ("black", 0.2)])])
    options = ["grey", "red", "green"]
    found = scored(asked("What colour coat is the cyclist wearing?", tuple(options)), options, join_moments([said, seen]))
    best = max(found, key=lambda s: s.p)
    assert best.option == "red" and best.unit.kind in ("moment", "frame")
