"""The verifier's evidence checks: does an answer hold up against what the tools measured?

A subpackage of the tools because it reads what tools wrote, with the tools'
own text index, embedder and colour palette; the ``verify_answer`` tool uses it
too. The loop builds the verifier (:func:`build_verifier`) and hands it to the
verify node and to any policy that judges options before answering; policies
never import this package (``tests/test_dependencies.py``).

Modules, from the atoms up:

* :mod:`~mcr.tools.evidence.units` — cited entries cut into measured units
  (a sentence, a frame, a scene, a count, a detection track);
* :mod:`~mcr.tools.evidence.match` — ASR/OCR-tolerant word similarity and
  CIEDE2000 colour distance;
* :mod:`~mcr.tools.evidence.asked` — the question record (`mcr.language`) as the scorer reads it;
* :mod:`~mcr.tools.evidence.score` — each option's support by its best unit: meaning-based signals
  combined with weights fitted on a labelled set (`weights.json`, `benchmarks/fit_verifier.py`);
* :mod:`~mcr.tools.evidence.checks` — the connection, rival and span checks;
* :mod:`~mcr.tools.evidence.verifier` — the text-support, consistency and
  model re-check checks, and :func:`build_verifier` which wires them all.
"""

from mcr.tools.evidence.verifier import (
    EVIDENCE_CHECKS,
    build_verifier,
    cited,
    claim_of,
    evidence_support,
    extra_checks,
    model_recheck,
    option_consistency,
    option_text,
    verdict_consistency,
)

__all__ = ["EVIDENCE_CHECKS", "build_verifier", "cited", "claim_of", "evidence_support", "extra_checks",
           "model_recheck", "option_consistency", "option_text", "verdict_consistency"]
