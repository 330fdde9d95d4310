"""Test helper: a policy class that records the prompt budget it sees before every decision."""

from __future__ import annotations


def watched(policy_cls):
    """The policy class, measuring the prompt it is about to render at every step (``.budgets``)."""

    class Watched(policy_cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.budgets = []

        def decide(self, context, tools):
            self.budgets.append(self.prompt_budget(context, tools))
            return super().decide(context, tools)

    return Watched
