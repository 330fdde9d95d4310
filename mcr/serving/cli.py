"""The `mcr serve` and `mcr mcp` subcommands (their parsers; handlers in mcr.serving.app and mcr.mcp_server)."""

from __future__ import annotations

import argparse


def cmd_serve(args: argparse.Namespace) -> int:
    import sys

    from mcr.model.runtime.loader import ModelLoadError
    from mcr.serving.app import serve_main

    try:
        return serve_main(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, ModelLoadError) as exc:
        print(f"mcr serve: error: {exc}", file=sys.stderr)
        return 2


def cmd_mcp(args: argparse.Namespace) -> int:
    from mcr.mcp_server import mcp_main

    return mcp_main(args)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="serve a model over the OpenAI chat-completions API, with cross-request cache reuse",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="An OpenAI-compatible server over our runtime: SmolLM2 (MODEL=offline), any local folder or "
                    ".gguf the loader opens, or an M^2LA-converted folder. A conversation that continues a "
                    "previous one reuses its cache (usage.prompt_tokens_details.cached_tokens).",
        epilog="""supported:
  POST /v1/chat/completions   messages (text; image_url/video_url for vision models), tools with
                              tool_choice none|auto|required|{function}, parallel_tool_calls,
                              response_format text|json_object|json_schema (enforced by a grammar),
                              stream + stream_options.include_usage (server-sent events),
                              logprobs + top_logprobs, temperature, top_p, seed, stop, max_tokens,
                              max_completion_tokens, mm_processor_kwargs (fps, min_pixels, max_pixels)
  GET /v1/models, GET /v1/slots, GET /health
  refused with 400: n > 1, penalties, logit_bias, audio, unknown fields; other endpoints: 404
  concurrent requests decode together (--max-batch), each on its own cached session
exit codes: 0 stopped, 2 bad argument (checked before the model loads), 130 Ctrl-C""")
    serve.add_argument("model", nargs="?", default="offline", help="offline (SmolLM2, default), a folder or a .gguf")
    serve.add_argument("--port", type=int, default=8000,
                       help="TCP port to listen on (default 8000; 0 picks a free one and prints it)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for every "
                            "interface — then set --api-key-env)")
    serve.add_argument("--model-id", help="the name clients send as 'model' (default: the folder or file name)")
    serve.add_argument("--sessions", type=int, default=4, help="cached conversations kept at once (default 4)")
    serve.add_argument("--max-batch", type=int, default=4,
                       help="requests decoded together, one forward per step (default 4; 1: one at a time; "
                            "at most --sessions)")
    serve.add_argument("--max-waiting", type=int, default=8, help="queued requests before 503 (default 8)")
    serve.add_argument("--max-tokens", type=int, default=256, help="default completion budget (default 256)")
    serve.add_argument("--api-key-env", metavar="VAR", help="require 'Authorization: Bearer $VAR'")
    serve.add_argument("--allowed-media-path", action="append", metavar="DIR",
                       help="folders whose files image_url/video_url may name (repeatable)")
    serve.add_argument("--max-body-mb", type=float, default=8.0,
                       help="largest request body accepted, in MiB (default 8; larger gets 413)")
    serve.add_argument("--allowed-host", action="append", metavar="NAME",
                       help="also answer requests whose Host header names NAME (repeatable); on a loopback "
                            "--host only localhost/127.0.0.1/[::1] are answered, against DNS rebinding")
    serve.set_defaults(func=cmd_serve)

    mcp = sub.add_parser(
        "mcp", help="serve the tools over the Model Context Protocol (stdio, or --http)",
        description="Every registered tool (and --plugin tools) as an MCP server. Each call takes "
                    "session: {video, workdir}; results are cached and traced as in an episode.")
    mcp.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1",
                     help="with --http: address to listen on (default 127.0.0.1, this machine only; for another "
                          "interface set --api-key-env too)")
    mcp.add_argument("--port", type=int, default=8765, help="with --http: TCP port to listen on (default 8765)")
    mcp.add_argument("--workdir", default=".mcr/mcp",
                     help="the folder sessions' workdirs live under; session.workdir names a subfolder "
                          "(default: .mcr/mcp)")
    mcp.add_argument("--allowed-media-path", action="append", metavar="DIR",
                     help="a folder whose videos sessions may name (repeatable); besides these, only the roots "
                          "the client declares are allowed")
    mcp.add_argument("--api-key-env", metavar="VAR",
                     help="with --http: require 'Authorization: Bearer $VAR' on every request")
    mcp.add_argument("--plugin", action="append", help="also expose the tools of this module or .py file")
    mcp.set_defaults(func=cmd_mcp)
