"""`mcr serve` arguments that cannot work are refused before the model loads, with exit 2 and the fix.

The model load is replaced by a function that fails the test if called: the
point is that nothing is loaded (SmolLM2 takes ~10 s, an 8B model minutes)
before a bad port, a port in use or an impossible session count is reported.
"""

from __future__ import annotations

import socket

import pytest

from mcr.cli import main


@pytest.fixture
def no_model_load(monkeypatch):
    import mcr.serving.app as app

    def refuse(model):
        raise AssertionError(f"the model {model!r} was loaded before the arguments were checked")

    monkeypatch.setattr(app, "load_served_model", refuse)


@pytest.mark.parametrize("argv, needle", [
    (["--port", "99999"], "--port 99999: a TCP port is 1-65535"),
    (["--port", "-1"], "--port -1"),
    (["--sessions", "0"], "--sessions 0: must be at least 1"),
    (["--max-waiting", "-1"], "--max-waiting -1"),
    (["--max-tokens", "0"], "--max-tokens 0"),
    (["--max-body-mb", "0"], "--max-body-mb 0"),
    (["--host", "no-such-host.invalid"], "--host no-such-host.invalid: not an address of this machine"),
    (["--allowed-media-path", "/no/such/folder"], "--allowed-media-path /no/such/folder: not a folder"),
    (["--api-key-env", "MCR_TEST_UNSET_KEY"], "MCR_TEST_UNSET_KEY: that environment variable is not set"),
])
def test_bad_arguments_exit_2_before_loading(argv, needle, no_model_load, capsys, ledger, monkeypatch):
    monkeypatch.delenv("MCR_TEST_UNSET_KEY", raising=False)
    code = main(["serve", *argv])
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err
    assert "Traceback" not in err and "serving on" not in err
    ledger.case("cli", f"mcr serve {' '.join(argv)}", outcome="exit 2 before the model loads", message=err)


def test_a_port_in_use_exits_2_before_serving(no_model_load, capsys, ledger):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port)])
    captured = capsys.readouterr()
    assert code == 2 and f"127.0.0.1:{port} is already in use" in captured.err, captured.err
    assert "serving on" not in captured.out
    ledger.case("cli", "mcr serve --port <in use>", outcome="exit 2 before the model loads", message=captured.err)


def test_serve_help_names_defaults_and_what_is_supported(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for needle in ("--port", "default 8000", "--host", "default 127.0.0.1", "--max-body-mb"):
        assert needle in out, needle
