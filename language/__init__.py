"""Reading questions: the typed question record, lexical knowledge and meaning-based similarity.

Imports only the vocabulary and third-party libraries; every other package may import it.
Nothing loads at import time: WordNet and MiniLM load on first use.
"""

from mcr.language.question import (AnswerType, EvidenceKind, Extreme, QuestionFrame, Relation, RelationKind,
                                   read_question)

__all__ = ["AnswerType", "EvidenceKind", "Extreme", "QuestionFrame", "Relation", "RelationKind", "read_question"]
