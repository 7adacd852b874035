"""API keys (file, environment), the key check, the per-key request limit, and the bind rule."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from emocontext.errors import ConfigError  # noqa: E402
from emocontext.serve import check_bind, is_loopback  # noqa: E402
from emocontext.serve.auth import Auth, key_id  # noqa: E402
from emocontext.serve.errors import ApiError  # noqa: E402
from emocontext.serve.settings import ServeSettings, load_api_keys  # noqa: E402

KEY_A = "a" * 20
KEY_B = "b-0123456789abcdef"


def test_keys_from_file_and_environment(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text(f"# the lab's keys\n{KEY_A}\n\n  {KEY_B}  \n")
    assert load_api_keys(f, environ={}) == (KEY_A, KEY_B)
    assert load_api_keys(None, environ={"EMOCONTEXT_API_KEYS": f"{KEY_B}, {KEY_A}"}) == (KEY_B, KEY_A)
    assert load_api_keys(f, environ={"EMOCONTEXT_API_KEYS": KEY_A}) == (KEY_A, KEY_B)  # each key once
    assert load_api_keys(None, environ={}) == ()


@pytest.mark.parametrize(
    ("text", "words"), [("# nothing\n\n", "holds no key"), ("short\n", "shorter than 16"), (None, "cannot read")]
)
def test_bad_key_files_fail_clearly_without_showing_keys(tmp_path, text, words):
    f = tmp_path / "keys.txt"
    if text is not None:
        f.write_text(text)
    with pytest.raises(ConfigError, match=words) as e:
        load_api_keys(f, environ={})
    assert "short\n" not in str(e.value) and "'short'" not in str(e.value)


def test_settings_never_show_keys():
    s = ServeSettings(api_keys=(KEY_A,))
    assert KEY_A not in repr(s) and KEY_A not in str(s)


def test_the_key_check():
    auth = Auth((KEY_A, KEY_B), requests_per_minute=0)
    assert auth.required and auth.owner(KEY_A) == key_id(KEY_A) != auth.owner(KEY_B)
    for token in (None, "", KEY_A[:-1], KEY_A + "x", KEY_A.upper()):
        with pytest.raises(ApiError) as e:
            auth.owner(token)
        assert e.value.status == 401 and e.value.kind == "unauthorized"
        assert e.value.headers["WWW-Authenticate"] == "Bearer" and KEY_A not in e.value.detail
    # without keys everyone is the same caller
    assert Auth((), 0).owner(None) == Auth((), 0).owner("anything") == ""
    assert len(key_id(KEY_A)) == 16 and KEY_A not in key_id(KEY_A)


def test_requests_a_minute_per_key():
    auth = Auth((KEY_A, KEY_B), requests_per_minute=3)
    for _ in range(3):
        auth.count("k1")
    with pytest.raises(ApiError) as e:
        auth.count("k1")
    assert e.value.status == 429 and e.value.kind == "rate_limited"
    assert 1 <= int(e.value.headers["Retry-After"]) <= 60
    auth.count("k2")  # another key has its own minute
    unlimited = Auth((), requests_per_minute=0)
    for _ in range(1000):
        unlimited.count("k1")


def test_no_bind_beyond_this_machine_without_keys():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    open_ = ServeSettings()
    check_bind("127.0.0.1", open_)
    with pytest.raises(ConfigError, match="--api-key-file"):
        check_bind("0.0.0.0", open_)
    check_bind("0.0.0.0", open_, insecure=True)
    check_bind("0.0.0.0", ServeSettings(api_keys=(KEY_A,)))


def test_serve_refuses_an_open_bind_and_a_bad_key_file(tmp_path):
    from typer.testing import CliRunner

    from emocontext.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "refusing to listen on 0.0.0.0 without API keys" in r.output
    r = runner.invoke(app, ["serve", "--api-key-file", str(tmp_path / "missing.txt"), "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "cannot read the API key file" in r.output
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
