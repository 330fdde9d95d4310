"""The scorer on questions about movement: options backed by a measured path, never by their words.

The units are built here as `look` and `summarize` write them (a scene with the
thing `mcr.tools.movers` measured moving); the questions and options are
written here in several wordings, none from a suite. The question is read by
`mcr.language.read_question` (WordNet: a verb of motion makes motion evidence).
"""

from __future__ import annotations

import pytest

from mcr.context import Context, Instruction, Memory, TimeSpan, ToolResult, VideoRef
from mcr.language.lexicon import lexicon_available
from mcr.tools.evidence.asked import asked
from mcr.tools.evidence.checks import option_scores
from mcr.tools.evidence.score import scored
from mcr.tools.evidence.units import Unit, units_of
from mcr.tools.movers import Mover, PathPoint
from mcr.tools.pixels import ColourShare

pytestmark = pytest.mark.skipif(not lexicon_available(),
                                reason="needs the Debian packages wordnet-base and wordnet-sense-index")


def _mover(dx: float, dy: float = 0.0, start: float = 8.2, end: float = 11.0, colour: str = "orange") -> Mover:
    path = [PathPoint(t=start - 0.5, x=0.5 - dx / 2, y=0.5 - dy / 2, area=0.01),
            PathPoint(t=end, x=0.5 + dx / 2, y=0.5 + dy / 2, area=0.01)]
    return Mover(start=start, end=end, path=path, dx=dx, dy=dy, growth=1.0,
                 colours=[ColourShare(name=colour, share=0.8), ColourShare(name="black", share=0.15)])


def _scenes(mover: Mover | None) -> list[Unit]:
    """Three scenes of 6 s, colours measured in each; the middle one holds the mover (if any)."""
    return [Unit("e3", "scene", TimeSpan(start=0.0, end=6.0), colours=[("white", 0.9)], motion_measured=True),
            Unit("e3", "scene", TimeSpan(start=6.0, end=12.0), colours=[("dark blue", 0.95)], motion_measured=True,
                 movers=[mover] if mover else []),
            Unit("e3", "scene", TimeSpan(start=12.0, end=18.0), colours=[("green", 0.9)], motion_measured=True)]


def _best(question: str, options: list[str], units: list[Unit]) -> str:
    found = scored(asked(question, tuple(options)), options, units)
    return max(found, key=lambda s: s.p).option


SLED = ["over to the left", "it doesn't budge", "towards the right-hand side", "straight down"]


@pytest.mark.parametrize(("dx", "dy", "answer"), [(0.5, 0.0, SLED[2]), (-0.4, 0.02, SLED[0]), (0.0, 0.6, SLED[3])])
def test_the_measured_heading_backs_the_option_that_says_it(dx, dy, answer):
    assert _best("Where does the sled slide to?", SLED, _scenes(_mover(dx, dy))) == answer


def test_with_motion_measured_and_nothing_moving_only_stillness_holds():
    found = scored(asked("How is the sled moving?", tuple(SLED)), SLED, _scenes(None))
    assert [s.fact for s in found] == [0.0, 1.0, 0.0, 0.0]
    assert max(found, key=lambda s: s.p).option == SLED[1]
    nothing = scored(asked("How is the sled moving?", tuple(SLED)), SLED, [Unit("e2", "speech", None, speech="hi")])
    assert all(s.fact == 0.0 for s in nothing)  # no motion measured yet: nothing is backed


@pytest.mark.parametrize(("start", "answer"), [(8.2, "8-12 s"), (7.9, "8-12 s"), (4.5, "4-8 s")])
def test_when_a_thing_sets_off_is_its_measured_start(start, answer):
    options = ["0-4 s", "4-8 s", "8-12 s", "12-16 s"]
    units = _scenes(_mover(0.5, start=start, end=11.0))
    assert _best("About when does the sled begin to slide?", options, units) == answer


def test_the_colour_of_the_thing_that_moves_is_its_own_not_the_backgrounds():
    options = ["dark blue", "orange", "white", "black"]
    assert _best("What colour is the sled that slides by?", options, _scenes(_mover(0.5))) == "orange"


def test_a_summary_scene_note_is_read_typed_and_cited_instead_of_the_whole_video():
    scene = {"level": "scene", "span": {"start": 6.0, "end": 12.0}, "text": "a scene", "pixels": "colours ...",
             "colours": [{"name": "dark blue", "share": 0.95}], "brightness": 20.0,
             "movers": [_mover(-0.5).model_dump()]}
    summary = ToolResult(id="e1", tool="summarize", span=TimeSpan(start=0.0, end=18.0),
                         output={"scenes": [scene], "shots": []})
    note = Memory(id="e2", span=TimeSpan(start=6.0, end=12.0), text="Scene 1: (no measured line to parse)",
                  source="summarize", facts=scene)
    (unit,) = units_of(note)
    assert unit.movers[0].dx == -0.5 and unit.colours == [("dark blue", 0.95)] and unit.motion_measured

    ctx = Context([Instruction(id="e0", text="Which direction does the sled slide?", options=tuple(SLED),
                               video=VideoRef(path="sled.mp4", duration=18.0)), summary, note])
    best = max(option_scores(ctx), key=lambda s: s.score)
    assert best.letter == "A" and best.refs == ("e2",)  # the scene's note, not the whole-video summary
