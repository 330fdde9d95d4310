"""The Tool protocol, the function decorator, and the registry.

A tool is a small typed class: a ``name``, a one-line ``description``, a pydantic
``Input`` and ``Output``, and a pure ``run(input, ctx) -> Output``. The policy
sees ``schema()`` (OpenAI function-calling JSON); the graph validates the
policy's arguments against ``Input``, runs the tool, and appends the ``Output``
to the context as a ToolResult. Tools never decide and never mutate the context.

Two kinds of failure, kept apart (as in smolagents):

* the policy's fault or the input's (bad arguments, a span outside the video,
  no audio track): raise :class:`ToolFailure` — it becomes a ToolError entry the
  policy sees next turn, and the loop goes on;
* anything else a tool raises is recorded the same way but typed
  ``tool_crashed`` with the exception, so one broken tool cannot end an episode.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from mcr.context import Context, TimeSpan, VideoRef
from mcr.tools.errors import PluginError, ToolFailure, ToolInputError, UnknownToolError
from mcr.tools.side import EpisodeModel, NoModelError

# --------------------------------------------------------------------------- #
# What a tool sees while it runs
# --------------------------------------------------------------------------- #


@dataclass
class ToolContext:
    """Everything a tool may read while it runs. It cannot write the context.

    Attributes:
        context: the episode's context so far (read it for evidence).
        video: the episode's video, with its sampling settings.
        workdir: where the tool may write artifacts (keyframes, overlays, caches).
        settings: this tool's settings from the task (e.g. a model path).
        model: the episode's model for model-backed tools, or None. Use it
            through :meth:`fork` and :meth:`side_query` only, so the main
            cache stays the policy's.
        step: the graph step this call belongs to.
        call_id: the id of the ToolCall entry being answered.
        cancelled: set when the call ran past its time limit and was abandoned
            (``tools/limits.py``); a long-running tool may check it and stop.
        frames_left: frames the episode's budget (``budget.max_frames``) still allows this call to decode
            (None: no limit); a tool reports what it used through :meth:`Tool.frames_of`.
    """

    context: Context
    video: VideoRef | None = None
    workdir: Path = field(default_factory=lambda: Path(".mcr"))
    settings: dict[str, Any] = field(default_factory=dict)
    model: EpisodeModel | None = None
    step: int = 0
    call_id: str = ""
    cancelled: threading.Event = field(default_factory=threading.Event)
    frames_left: int | None = None

    def check_path(self, value: str | Path, what: str = "path") -> Path:
        """`value` resolved, if it is in the run's workdir or the video's folder (see :mod:`mcr.tools.paths`).

        Raises:
            ToolFailure: ``path_outside_task`` / ``invalid_path``.
        """
        from mcr.tools.paths import allowed_roots, check_path

        return check_path(value, allowed_roots(self.workdir, self.video.path if self.video else None), what)

    def require_video(self) -> VideoRef:
        if self.video is None:
            raise ToolFailure("this episode has no video to work on", "no_video")
        return self.video

    @property
    def has_model(self) -> bool:
        return self.model is not None

    @property
    def sees_pixels(self) -> bool:
        """True when the episode's model receives frames; only then may it describe what is seen."""
        return self.model is not None and self.model.sees_pixels

    def require_model(self, what: str, *, vision: bool = False) -> EpisodeModel:
        """The episode's model, or a :class:`NoModelError` that says what to do instead.

        Args:
            what: the job that needs it, for the message (e.g. "model grounding").
            vision: the job needs a model that receives frames.
        """
        if self.model is None:
            raise NoModelError(f"{what} needs the video model, but this episode runs without one: "
                               "run with a model policy (internvideo3), or use the tool's model-free mode")
        if vision and not self.model.sees_pixels:
            raise NoModelError(f"{what} needs a model that sees frames, but this episode's model is text-only")
        return self.model

    def fork(self, what: str = "this tool"):
        """A fork of the episode's model session (raises :class:`NoModelError` without one)."""
        return self.require_model(what).fork()

    def side_query(self, question: str, parts: list[dict[str, Any]] | None = None, *, what: str = "this tool",
                   **generate: Any):
        """Ask the episode's model ``question`` (after the context and media ``parts``) on a fork.

        The prompt continues the policy's (same system text and tool schemas), so
        the fork reuses its whole cached prefix. Media parts need a model that
        sees frames. Returns the :class:`~mcr.model.runtime.session.Generation`.
        """
        has_media = any(p.get("type") in ("video", "image") for p in parts or ())
        model = self.require_model(what, vision=has_media)
        return model.side_query(self.context, question, parts, **generate)


# --------------------------------------------------------------------------- #
# The protocol
# --------------------------------------------------------------------------- #


class Tool(ABC):
    """Base class for tools. Subclasses set the four class attributes and `run`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Input: ClassVar[type[BaseModel]]
    Output: ClassVar[type[BaseModel]]
    #: Input fields holding file paths, checked before the tool runs (:mod:`mcr.tools.paths`). None: every
    #: ``Path`` value and every string in a path-named field (``image``, ``mask_path``, ...).
    path_arguments: ClassVar[tuple[str, ...] | None] = None

    @abstractmethod
    def run(self, input: Any, ctx: ToolContext) -> BaseModel:
        """Do one job and return an ``Output``. Raise ToolFailure for bad input."""

    # -- hooks with sensible defaults ------------------------------------- #
    def summarize(self, output: BaseModel) -> str:
        """How the output reads in the context (what the policy sees). Compact JSON."""
        return output.model_dump_json(exclude_none=True)

    def span_of(self, input: BaseModel, output: BaseModel) -> TimeSpan | None:
        """The video span the result is about, if any (for the timeline)."""
        span = getattr(input, "span", None)
        return span if isinstance(span, TimeSpan) else None

    def frames_of(self, output: BaseModel) -> int:
        """Frames this call decoded, counted against the episode's ``budget.max_frames`` (default: the
        output's ``frames_used`` field, else 0)."""
        used = getattr(output, "frames_used", 0)
        return int(used) if isinstance(used, int) else 0

    def entries(self, input: BaseModel, output: BaseModel) -> list[Any]:
        """Extra context entries (e.g. Memory) to append after the ToolResult.

        The graph sets their step and adds the ToolResult's id to their refs, so
        a summary's memories point at the result they came from. Default: none.
        """
        return []

    # -- used by the graph and the policies -------------------------------- #
    @classmethod
    def schema(cls) -> dict[str, Any]:
        """The OpenAI/Qwen function-calling schema the policy sees."""
        return {
            "type": "function",
            "function": {
                "name": cls.name,
                "description": cls.description,
                "parameters": cls.Input.model_json_schema(),
            },
        }

    def validate_input(self, arguments: dict[str, Any]) -> BaseModel:
        try:
            return self.Input.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
            )
            raise ToolInputError(f"bad arguments for {self.name}: {problems}") from None

    def prepare(self, arguments: dict[str, Any], ctx: ToolContext) -> BaseModel:
        """`arguments` validated, with every file they name inside the task's media or the run's folder.

        Raises:
            ToolInputError: arguments that do not fit ``Input``.
            ToolFailure: ``path_outside_task`` / ``invalid_path`` (see :mod:`mcr.tools.paths`).
        """
        from mcr.tools.paths import path_arguments

        tool_input = self.validate_input(arguments)
        for where, value in path_arguments(tool_input, self.path_arguments):
            ctx.check_path(value, f"{self.name} argument {where}")
        return tool_input

    def __call__(self, arguments: dict[str, Any], ctx: ToolContext) -> BaseModel:
        """Validate `arguments` (and the paths they name), run, and check the output type."""
        output = self.run(self.prepare(arguments, ctx), ctx)
        if not isinstance(output, self.Output):
            raise TypeError(f"tool {self.name} returned {type(output).__name__}, not {self.Output.__name__}")
        return output


def _check_tool_class(cls: type[Tool]) -> None:
    for attr in ("name", "description", "Input", "Output"):
        if not hasattr(cls, attr):
            raise TypeError(f"tool class {cls.__name__} must define {attr!r}")
    if not (isinstance(cls.Input, type) and issubclass(cls.Input, BaseModel)):
        raise TypeError(f"{cls.__name__}.Input must be a pydantic model")
    if not (isinstance(cls.Output, type) and issubclass(cls.Output, BaseModel)):
        raise TypeError(f"{cls.__name__}.Output must be a pydantic model")
    if not cls.name.replace("_", "").isalnum():
        raise TypeError(f"tool name {cls.name!r} must be letters, digits and underscores")


# --------------------------------------------------------------------------- #
# Tools from typed functions
# --------------------------------------------------------------------------- #


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None):
    """Turn a typed function into a Tool class.

    The parameters (except one annotated ``ToolContext``) become the Input model;
    a pydantic return annotation is the Output, any other is wrapped as
    ``{"result": value}``. The docstring's first line is the description.

    Example::

        @tool
        def count_words(text: str) -> int:
            "Count the words in a text."
            return len(text.split())
    """

    def build(func: Callable[..., Any]) -> type[Tool]:
        hints = get_type_hints(func)
        params = inspect.signature(func).parameters
        ctx_param = next((p for p in params if hints.get(p) is ToolContext), None)
        fields: dict[str, Any] = {}
        for pname, param in params.items():
            if pname == ctx_param:
                continue
            if pname not in hints:
                raise TypeError(f"@tool {func.__name__}: parameter {pname!r} needs a type annotation")
            default = param.default if param.default is not inspect.Parameter.empty else ...
            fields[pname] = (hints[pname], default)
        tool_name = name or func.__name__
        camel = "".join(part.title() for part in tool_name.split("_"))
        input_model = create_model(f"{camel}Input", __config__=ConfigDict(extra="forbid"), **fields)
        ret = hints.get("return", Any)
        wraps = not (isinstance(ret, type) and issubclass(ret, BaseModel))
        output_model = create_model(f"{camel}Output", result=(ret, ...)) if wraps else ret
        doc = (description or inspect.getdoc(func) or "").strip().splitlines()
        if not doc:
            raise TypeError(f"@tool {func.__name__}: give a description or a docstring")

        def run(self: Tool, input: BaseModel, ctx: ToolContext) -> BaseModel:
            kwargs = {k: getattr(input, k) for k in fields}
            if ctx_param:
                kwargs[ctx_param] = ctx
            value = func(**kwargs)
            return output_model(result=value) if wraps else value

        cls = type(
            camel + "Tool",
            (Tool,),
            {
                "name": tool_name,
                "description": doc[0],
                "Input": input_model,
                "Output": output_model,
                "run": run,
                "__module__": func.__module__,
                "__doc__": inspect.getdoc(func),
            },
        )
        _check_tool_class(cls)
        return cls

    return build(fn) if fn is not None else build


# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #


def schema_function(schema: dict[str, Any]) -> dict[str, Any]:
    """The function part (name, description, parameters) of a tool schema, wrapped or bare.

    :meth:`Tool.schema` gives OpenAI's ``{"type": "function", "function": {...}}``;
    some callers (servers, users) pass the inner object alone.
    """
    return schema.get("function", schema)


class ToolRegistry:
    """Name → tool instance. Built explicitly; a task picks a subset of it."""

    def __init__(self, tools: Iterable[Tool | type[Tool]] = ()):
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, tool_or_cls: Tool | type[Tool], *, replace: bool = False):
        """Register a tool instance or class (usable as a class decorator)."""
        instance = tool_or_cls() if isinstance(tool_or_cls, type) else tool_or_cls
        if not isinstance(instance, Tool):
            raise TypeError(f"{tool_or_cls!r} is not a Tool")
        _check_tool_class(type(instance))
        if instance.name in self._tools and not replace:
            raise ValueError(f"a tool named {instance.name!r} is already registered")
        self._tools[instance.name] = instance
        return tool_or_cls

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name, self._tools) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self._tools.values()]

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        """A registry with only `names` (each must exist)."""
        return ToolRegistry(self.get(n) for n in names)

    def merged(self, other: ToolRegistry) -> ToolRegistry:
        out = ToolRegistry(self)
        for t in other:
            out.register(t, replace=True)
        return out


def tools_in_module(module: Any) -> list[Tool]:
    """Every tool a module defines: Tool subclasses made there, and Tool instances."""
    found: list[Tool] = []
    for value in vars(module).values():
        if isinstance(value, Tool):
            found.append(value)
        elif (
            isinstance(value, type)
            and issubclass(value, Tool)
            and not inspect.isabstract(value)
            and value.__module__ == module.__name__
        ):
            found.append(value())
    return found


def load_plugin(spec: str) -> list[Tool]:
    """Import a user's tool module by dotted name or file path; return its tools."""
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"tool plugin {spec!r} does not exist ({path}); check the path "
                                    "(in a task file it is relative to the file)")
        mod_name = f"mcr_plugin_{path.stem}_{abs(hash(str(path))) % 10**8}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # the plugin's own code raised: say so, not an anonymous traceback
            sys.modules.pop(mod_name, None)
            raise PluginError(spec, f"raised {type(exc).__name__} while importing: {exc}",
                              f"fix the plugin ({path}) or remove it from 'plugins'") from exc
    else:
        try:
            module = importlib.import_module(spec)
        except Exception as exc:
            raise PluginError(spec, f"cannot be imported ({type(exc).__name__}: {exc})",
                              "install the module, or give a .py file path") from exc
    tools = tools_in_module(module)
    if not tools:
        raise PluginError(spec, "defines no Tool", "subclass mcr.tools.base.Tool or decorate a function with @tool")
    return tools
