"""Build the policy a task names. One place maps policy names to constructors."""

from __future__ import annotations

from mcr.policies.base import Policy
from mcr.task import ModelPolicySpec, ScriptedPolicySpec, TaskSpec
from mcr.tools.base import ToolRegistry


class PolicyUnavailable(RuntimeError):
    """A model policy cannot be built here (missing weights or packages)."""


def build_policy(task: TaskSpec, registry: ToolRegistry) -> Policy:
    spec = task.policy
    if isinstance(spec, ScriptedPolicySpec):
        from mcr.policies.scripted import ScriptedPolicy

        return ScriptedPolicy(spec)
    assert isinstance(spec, ModelPolicySpec)
    try:
        if spec.name == "internvideo3":
            from mcr.model.runtime.loader import RemoteCodeRequired
            from mcr.policies.internvideo3 import InternVideo3Policy

            try:
                return InternVideo3Policy.from_settings(spec.settings, registry=registry)
            except RemoteCodeRequired as exc:  # the user's choice to make: say how (exit 2), never run it unasked
                raise PolicyUnavailable(str(exc)) from None
        if spec.name == "offline":
            from mcr.policies.offline import offline_default_policy

            return offline_default_policy(spec.settings, registry=registry)
        if spec.name == "openai":
            from mcr.policies.base import PolicyError
            from mcr.policies.openai import OpenAIPolicy

            try:
                return OpenAIPolicy.from_settings(spec.settings, registry=registry)
            except (ValueError, PolicyError) as exc:
                raise PolicyUnavailable(str(exc)) from None
    except ImportError as exc:
        raise PolicyUnavailable(
            f"policy {spec.name!r} needs the model extras: pip install -e '.[model]' ({exc})"
        ) from None
    raise PolicyUnavailable(f"unknown policy {spec.name!r}")
