"""Build the policy a task names. One dict maps model policy names to their builders.

Like the tool registry (``mcr.tools.BUILTIN_TOOLS``) and the importers
(``mcr.eval.importers.FORMATS``), :data:`MODEL_POLICIES` is the one place a
name becomes a constructor. A builder imports its policy module when called,
so a missing extra (``.[model]``, ``.[serve]``) fails only the policy that
needs it, with :class:`PolicyUnavailable` saying what to install.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcr.policies.base import Policy
from mcr.task import ModelPolicySpec, ScriptedPolicySpec, TaskSpec
from mcr.tools.base import ToolRegistry


class PolicyUnavailable(RuntimeError):
    """A model policy cannot be built here (missing weights or packages)."""


PolicyBuilder = Callable[[dict[str, Any], ToolRegistry], Policy]


def _internvideo3(settings: dict[str, Any], registry: ToolRegistry) -> Policy:
    from mcr.model.runtime.loader import RemoteCodeRequired
    from mcr.policies.internvideo3 import InternVideo3Policy

    try:
        return InternVideo3Policy.from_settings(settings, registry=registry)
    except RemoteCodeRequired as exc:  # the user's choice to make: say how (exit 2), never run it unasked
        raise PolicyUnavailable(str(exc)) from None


def _offline(settings: dict[str, Any], registry: ToolRegistry) -> Policy:
    from mcr.policies.offline import offline_default_policy

    return offline_default_policy(settings, registry=registry)


def _openai(settings: dict[str, Any], registry: ToolRegistry) -> Policy:
    from mcr.policies.base import PolicyError
    from mcr.policies.openai import OpenAIPolicy

    try:
        return OpenAIPolicy.from_settings(settings, registry=registry)
    except (ValueError, PolicyError) as exc:
        raise PolicyUnavailable(str(exc)) from None


#: Model policy name (``ModelPolicySpec.name``) → builder(settings, registry).
MODEL_POLICIES: dict[str, PolicyBuilder] = {
    "internvideo3": _internvideo3,
    "offline": _offline,
    "openai": _openai,
}


def build_policy(task: TaskSpec, registry: ToolRegistry) -> Policy:
    spec = task.policy
    if isinstance(spec, ScriptedPolicySpec):
        from mcr.policies.scripted import ScriptedPolicy

        return ScriptedPolicy(spec)
    assert isinstance(spec, ModelPolicySpec)
    builder = MODEL_POLICIES.get(spec.name)
    if builder is None:
        raise PolicyUnavailable(f"unknown policy {spec.name!r}; known: {', '.join(sorted(MODEL_POLICIES))}")
    try:
        return builder(spec.settings, registry)
    except ImportError as exc:
        raise PolicyUnavailable(
            f"policy {spec.name!r} needs the model extras: pip install -e '.[model]' ({exc})"
        ) from None
