"""Where vgf_ray finds a Ray cluster's token (Ray's order, a --token-file first) and how bad token input fails."""

from __future__ import annotations

import os

import pytest

from vgf_ray.cluster_auth import ClusterAuthError, authorization_headers, find_token, refused, use_token_auth


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No token anywhere Ray looks, and an empty home."""
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return tmp_path


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_token_sources_in_rays_order_with_the_flag_first(clean_env, monkeypatch):
    assert find_token() is None
    write(clean_env / "home" / ".ray" / "auth_token", "from-home\n")
    assert find_token() == "from-home"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(write(clean_env / "path_token", " from-path ")))
    assert find_token() == "from-path"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert find_token() == "from-env"
    assert find_token(write(clean_env / "flag_token", "from-flag")) == "from-flag"
    assert authorization_headers("abc") == {"Authorization": "Bearer abc"} and authorization_headers(None) == {}


def test_unreadable_or_empty_tokens_are_named(clean_env, monkeypatch):
    with pytest.raises(ClusterAuthError, match="--token-file .*missing: cannot read the token"):
        find_token(clean_env / "missing")
    with pytest.raises(ClusterAuthError, match="--token-file .*empty: the token file is empty"):
        find_token(write(clean_env / "empty", "  \n"))
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(clean_env / "gone"))
    with pytest.raises(ClusterAuthError, match="RAY_AUTH_TOKEN_PATH .*gone: cannot read the token"):
        find_token()


def test_token_mode_is_the_default_and_a_token_file_becomes_rays(clean_env, monkeypatch):
    use_token_auth()
    assert os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the user's explicit choice is left alone
    use_token_auth()
    assert os.environ["RAY_AUTH_MODE"] == "disabled"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "would-win")
    flag = write(clean_env / "flag_token", "from-flag")
    use_token_auth(flag)
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == str(flag.resolve()) and "RAY_AUTH_TOKEN" not in os.environ
    assert find_token() == "from-flag"
    with pytest.raises(ClusterAuthError, match="cannot read the token"):
        use_token_auth(clean_env / "missing")


def test_refusal_is_one_line_that_says_how_to_give_the_token():
    for found, says in ((False, "no token was found here"), (True, "refused the token given")):
        message = str(refused("--address http://127.0.0.1:8265", found))
        assert "\n" not in message and says in message and "--token-file" in message
