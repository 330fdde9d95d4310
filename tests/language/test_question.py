"""The question reader on wordings written for these tests (none from any evaluation suite).

Each class has at least five wordings; a failure names the wording.
"""

import pytest

from mcr.language.lexicon import lexicon_available
from mcr.language.question import AnswerType, EvidenceKind, RelationKind, read_question

pytestmark = pytest.mark.skipif(not lexicon_available(),
                                reason="needs the Debian packages wordnet-base and wordnet-sense-index")

ANSWER_TYPES = {
    AnswerType.ENTITY: [
        "Who hands the parcel to the courier?",
        "Where does the cook keep the spare knives?",
        "Which tool does the carpenter pick up after sanding the plank?",
        "What does the girl feed the goat?",
        "Whose bicycle is parked by the gate?",
    ],
    AnswerType.NUMBER: [
        "How many lanterns hang over the market stall?",
        "How often is the ball touched by the goalkeeper?",
        "What is the number of candles on the cake?",
        "How much money does the vendor ask for?",
        "How many separate rooms does the tour visit?",
    ],
    AnswerType.COLOUR: [
        "Which colour has the kite the boy flies?",
        "Which color are the curtains in the hotel lobby?",
        "What hue does the sky turn at dusk?",
        "What is the colour of the jacket the cyclist wears?",
        "Which shade of paint covers the garage door?",
    ],
    AnswerType.TEXT: [
        "What word is printed on the delivery van?",
        "Which headline is displayed above the anchor?",
        "What text appears on the banner at the stadium?",
        "Which title is written across the opening card?",
        "What inscription can be read on the statue's base?",
    ],
    AnswerType.TIME: [
        "When does the ferry leave the harbour?",
        "At what hour does the alarm ring?",
        "At which point does the baker switch off the oven?",
        "When is the trophy lifted?",
        "How long does the rocket burn before separation?",
    ],
    AnswerType.YES_NO: [
        "Is there a ladder against the barn?",
        "Does the pianist wear gloves?",
        "Did the referee show a card?",
        "Are the shutters open when the storm arrives?",
        "Can a lighthouse be seen from the beach?",
    ],
    AnswerType.REASON: [
        "Why does the crowd start cheering?",
        "Why is the road closed near the bridge?",
        "For what reason does the chef throw the soup away?",
        "Why did the puppy hide under the sofa?",
        "For what purpose does the diver carry a net?",
    ],
}


@pytest.mark.parametrize("expected, text", [(k, q) for k, qs in ANSWER_TYPES.items() for q in qs])
def test_answer_type(expected, text):
    assert read_question(text).answer_type == expected, text


def test_options_of_one_kind_decide_the_answer_type():
    assert read_question("Pick one.", ["red", "green", "blue"]).answer_type == AnswerType.COLOUR
    assert read_question("Pick one.", ["3", "4", "7"]).answer_type == AnswerType.NUMBER
    assert read_question("Pick one.", ["yes", "no"]).answer_type == AnswerType.YES_NO


FIRST_EVIDENCE = {
    EvidenceKind.SPEECH: [
        "What does the guide say about the castle?",
        "Which city does the presenter mention first?",
        "What does the storyteller tell us about the harvest?",
        "What does the coach shout to the players?",
        "Which dish does the host recommend?",
    ],
    EvidenceKind.SCREEN_TEXT: [
        "What word is printed on the delivery van?",
        "Which headline is displayed above the anchor?",
        "What text appears on the banner at the stadium?",
        "What caption is shown under the map?",
        "Which words were chalked across the blackboard?",
    ],
    EvidenceKind.PIXELS: [
        "Which colour has the kite the boy flies?",
        "Which color are the curtains in the hotel lobby?",
        "Which room is the darkest?",
        "Which clip has the brightest lighting?",
        "What hue does the sky turn at dusk?",
    ],
    EvidenceKind.OBJECTS: [
        "How many horses stand in the paddock?",
        "How many chairs surround the table?",
        "How many different birds land on the fence?",
        "How many cups are on the tray?",
        "How many people wait at the bus stop?",
    ],
    EvidenceKind.SHOTS: [
        "How many scenes make up the trailer?",
        "How many shots are there in the montage?",
        "How many distinct scenes make up the advert?",
        "How many separate scenes are shown?",
        "How many shots does the sequence have?",
    ],
    EvidenceKind.MOTION: [
        "Which way does the cyclist ride?",
        "Where does the fox run after leaving the den?",
        "Who walks across the bridge?",
        "What flies over the valley?",
        "Where does the car drive after the crossing?",
    ],
}


@pytest.mark.parametrize("expected, text", [(k, q) for k, qs in FIRST_EVIDENCE.items() for q in qs])
def test_the_first_evidence_kind(expected, text):
    assert read_question(text).evidence[0] == expected, (text, read_question(text).evidence)


def test_what_is_asked_decides_the_evidence_not_the_locating_clause():
    frame = read_question("Which colour does the wall have while the host is speaking?")
    assert frame.evidence[0] == EvidenceKind.PIXELS
    assert EvidenceKind.SPEECH in frame.evidence


RELATIONS = {
    RelationKind.AFTER: [
        ("What does the waiter bring after the guests sit down?", "guests sit down"),
        ("Which animal appears after the gate opens?", "gate opens"),
        ("What happens right after the whistle blows?", "whistle blows"),
        ("Who speaks just after the applause ends?", "applause ends"),
        ("What is shown immediately after the map?", "map"),
    ],
    RelationKind.BEFORE: [
        ("What does the pilot check before take-off?", "take-off"),
        ("Which song plays just before the credits?", "credits"),
        ("Who enters the shop right before the alarm sounds?", "alarm sounds"),
        ("What does the mechanic say before he closes the bonnet?", "closes the bonnet"),
        ("What appears on the screen before the interview starts?", "interview starts"),
    ],
    RelationKind.WHILE: [
        ("Which colour does the wall have while the host is speaking?", "host is speaking"),
        ("Which sign is visible while the train passes?", "train passes"),
        ("What does the child hold while the band plays?", "band plays"),
        ("Which words appear across the board while the teacher explains fractions?", "teacher explains fractions"),
        ("Who laughs while the clown juggles?", "clown juggles"),
    ],
    RelationKind.DURING: [
        ("What is heard during the storm?", "storm"),
        ("Which flag is shown during the parade?", "parade"),
        ("What does the actor drink during the interview?", "interview"),
        ("What text appears during the countdown?", "countdown"),
        ("Who is visible during the final lap?", "final lap"),
    ],
}


@pytest.mark.parametrize("kind, text, event", [(k, q, e) for k, qs in RELATIONS.items() for q, e in qs])
def test_temporal_relations_carry_their_event(kind, text, event):
    relation = read_question(text).relation(kind)
    assert relation is not None, text
    assert relation.event.lower() == event, (text, relation.event)


@pytest.mark.parametrize("text, immediate", [
    ("What happens right after the whistle blows?", True),
    ("Who speaks just after the applause ends?", True),
    ("What is shown immediately after the map?", True),
    ("Which song plays just before the credits?", True),
    ("What does the pilot check before take-off?", False),
    ("What does the waiter bring after the guests sit down?", False),
])
def test_immediacy(text, immediate):
    assert read_question(text).relations[0].immediate is immediate, text


@pytest.mark.parametrize("text, kind", [
    ("Which animal appears first?", RelationKind.FIRST),
    ("What is the first word shown on screen?", RelationKind.FIRST),
    ("Which guest arrives last?", RelationKind.LAST),
    ("What is shown at the end of the film?", RelationKind.LAST),
    ("Which logo is displayed at the beginning?", RelationKind.FIRST),
    ("What is the final score on the board?", RelationKind.LAST),
])
def test_first_and_last(text, kind):
    assert read_question(text).relation(kind) is not None, text


@pytest.mark.parametrize("text, event", [
    ("When does the ferry leave the harbour?", "ferry leave harbour"),
    ("At what hour does the alarm ring?", "alarm ring"),
    ("When is the trophy lifted?", "trophy lifted"),
    ("At which moment does the singer bow?", "singer bow"),
    ("When does the goalkeeper dive?", "goalkeeper dive"),
])
def test_at_what_time(text, event):
    frame = read_question(text)
    relation = frame.relation(RelationKind.AT_TIME)
    assert relation is not None, text
    assert set(event.split()) <= set(relation.event.lower().split()), (text, relation.event)
    assert set(frame.grounding_query.lower().split()) & set(event.split())


@pytest.mark.parametrize("text, negated", [
    ("Which fruit is NOT in the bowl?", True),
    ("Which of these tools is never used?", True),
    ("Which guest isn't wearing a hat?", True),
    ("What does the vendor not sell?", True),
    ("Which city was not visited on the tour?", True),
    ("Which fruit is in the bowl?", False),
    ("Which of these tools is used first?", False),
])
def test_negation(text, negated):
    assert read_question(text).negated is negated, text


@pytest.mark.parametrize("text, target", [
    ("How many different animals are in the barn?", "animals"),
    ("How many people cross the street?", "people"),
    ("How many distinct colours does the flag have?", "colours"),
    ("How many small boats are moored in the bay?", "boats"),
    ("How many separate scenes are shown?", "scenes"),
    ("How many of the runners finish the race?", "runners"),
])
def test_count_target_is_the_noun_not_its_adjective(text, target):
    assert read_question(text).count_target == target, text


@pytest.mark.parametrize("text, measure, direction", [
    ("Which of the scenes is brightest?", "brightness", "max"),
    ("Which room is the darkest?", "brightness", "min"),
    ("Which is the largest boat in the harbour?", "size", "max"),
    ("What is the smallest object on the desk?", "size", "min"),
    ("Which clip is the longest?", "duration", "max"),
    ("Which is the shortest speech?", "duration", "min"),
    ("Which engine is the loudest?", "loudness", "max"),
    ("Which car is the most fast?", "speed", "max"),
    ("Which is the least bright shot?", "brightness", "min"),
])
def test_superlatives(text, measure, direction):
    extreme = read_question(text).extreme
    assert extreme is not None, text
    assert (extreme.measure, extreme.direction) == (measure, direction), text


def test_generic_words_are_not_anchors_but_names_and_quotes_are():
    frame = read_question("Which colour does the screen have throughout the whole video?")
    assert frame.answer_type == AnswerType.COLOUR
    assert not {"whole", "video"} & {w for a in frame.anchors for w in a.lower().split()}
    frame = read_question("What does Marguerite say about 'The Silent Orchard'?")
    assert "The Silent Orchard" in frame.anchors
    assert "Marguerite" in frame.hints
    assert frame.grounding_query == "The Silent Orchard"


@pytest.mark.parametrize("text, label", [
    ("What is drawn on the page marked ROOM 4?", "ROOM 4"),
    ("Which car is parked under the EXIT sign?", "EXIT"),
    ("Who is standing next to the board that reads HOME?", "HOME"),
    ("What colour is the van in the PART 3 section?", "PART 3"),
    ("Which dog appears in the clip titled WEEK 12?", "WEEK 12"),
])
def test_words_written_in_capitals_are_labels_kept_in_full(text, label):
    """A common word copied in capitals ("HOME", "WEEK") names a caption or sign: it must not weigh nothing."""
    frame = read_question(text)
    assert any(label in a for a in frame.anchors), (text, frame.anchors)
    assert all(frame.weights[w.lower()] == 1.0 for w in label.split()), (text, frame.weights)
    assert all(w in frame.grounding_query for w in label.split()) or frame.relations, (text, frame.grounding_query)


def test_a_question_shouted_in_capitals_is_read_as_usual():
    shouted, plain = read_question("WHAT COLOUR IS THE BIG VAN?"), read_question("What colour is the big van?")
    assert shouted.answer_type == plain.answer_type == AnswerType.COLOUR
    assert shouted.weights == plain.weights


def test_relation_questions_ground_the_event():
    frame = read_question("Which word appears right after the kettle whistles?")
    assert frame.grounding_query == "kettle whistles"
    assert frame.answer_type == AnswerType.TEXT


def test_the_frame_is_cached_and_carries_options_and_weights():
    a = read_question("Who opens the door?", ["the butler", "the maid"])
    assert a is read_question("Who opens the door?", ("the butler", "the maid"))
    assert a.options == ("the butler", "the maid")
    assert set(a.hints) >= {"the butler", "the maid"}
    assert a.weights["door"] > a.weights["the"] == 0.0


def test_a_word_after_a_possessive_is_a_noun_and_emphasis_in_capitals_is_not_a_label():
    frame = read_question("Which bird's call is never heard in the recording?", ("owl", "crow"))
    assert frame.evidence[0] == EvidenceKind.SPEECH  # "heard", not the noun "call"
    frame = read_question("Which town's name never shows up on a sign?", ("Leeds", "York"))
    assert frame.evidence[0] == EvidenceKind.SCREEN_TEXT  # "name" after "town's" is no verb of saying
    frame = read_question("All of these fruits are shown except one. Which is NOT?", ("pear", "plum"))
    assert frame.negated and "NOT" not in " ".join(frame.anchors)


@pytest.mark.parametrize("text, target", [
    ("The gardener planted tulips. How many?", "tulips"),
    ("Anna mentions some kites. How many, going by what she says?", "kites"),
    ("The fisherman hauls in crabs - how many, exactly?", "crabs"),
    ("Count the round stones by the path. How many are there?", "stones"),  # not the noun before the question
    ("The jars on the top shelf - how many of them?", "jars"),  # the shelf only says where they are
    ("Look at the boats in the harbour: how many of them are moored?", "boats"),
    ("The red lanterns above the gate: how many were there?", "lanterns"),
    ("Count the red circles while the bell is on screen. How many are there?", "circles"),  # the verb's object
    # the left-out object of the question's own verb is what that verb took earlier, not the last noun
    ("She picked ripe plums in the orchard; how many did she pick?", "plums"),
    ("The courier delivers parcels to the office - how many does he deliver?", "parcels"),
])
def test_an_elliptical_how_many_counts_the_noun_said_before(text, target):
    assert read_question(text, ["2", "3", "4"]).count_target == target


@pytest.mark.parametrize("text", [
    "He walked up the hill - how many did he carry?",
    "The girl ran across the field. How many did she throw?",
])
def test_a_left_out_object_said_nowhere_is_no_count_target(text):
    """Guessing the last noun would count hills or fields; no target leaves the count to what was measured."""
    assert read_question(text, ["2", "3", "4"]).count_target is None


@pytest.mark.parametrize("text, options, answer_type", [
    ("Which weekday does the caller give for the delivery?", ("Monday", "Tuesday", "Sunday"), AnswerType.ENTITY),
    ("In which month was the bridge opened, according to the guide?", ("April", "June", "August"), AnswerType.ENTITY),
    ("Which holiday is the shop sign about?", ("New Year's Day", "Easter Monday"), AnswerType.ENTITY),
    # a position in the video stays a time, in words or in clock notation
    ("At which moment does the kettle whistle?", ("At the start", "In the middle", "At the end"), AnswerType.TIME),
    ("Which minute holds the goal?", ("between 0:00 and 1:00", "between 1:00 and 2:00"), AnswerType.TIME),
])
def test_a_named_day_or_month_is_a_value_to_find_a_position_in_the_video_is_a_time(text, options, answer_type):
    """Read as a time, a named weekday was never searched for (`_searchable_options`), only located."""
    assert read_question(text, options).answer_type == answer_type


@pytest.mark.parametrize("text, expected", [
    ("According to the weather report, will it rain on Sunday?", AnswerType.YES_NO),
    ("In the final shot, does the goalkeeper raise his arms?", AnswerType.YES_NO),
    ("By the end, has the boat reached the pier?", AnswerType.YES_NO),
    ("Once the music stops, how many dancers are left?", AnswerType.NUMBER),
    ("Judging by the sky, when does the storm arrive?", AnswerType.TIME),
])
def test_a_fronted_phrase_does_not_hide_the_clause_that_asks(text, expected):
    assert read_question(text).answer_type == expected, (text, read_question(text).answer_type)


@pytest.mark.parametrize("text", [
    "According to the announcement, does the train leave late?",
    "Going by the news, is the bridge closed?",
    "Is there a storm in the prediction?",
])
def test_a_question_about_what_a_message_says_looks_in_speech(text):
    assert EvidenceKind.SPEECH in read_question(text).evidence, (text, read_question(text).evidence)
