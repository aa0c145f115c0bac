"""Ray's token authentication, from vgf_ray's side: where the token comes from, and a one-line error when a cluster
refuses a request.

Ray's token auth (``RAY_AUTH_MODE=token``) makes the GCS, the dashboard and the Jobs API refuse any caller without
the cluster's shared token: without it, anyone who reaches the Jobs API port can run code on the cluster. vgf_ray
turns it on before Ray starts and never turns it off; a mode already in the environment stays the user's choice.
The token is looked up where Ray looks for it (`find_token`)."""

from __future__ import annotations

import os
from pathlib import Path

from vgf_ray.errors import InputError

AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
TOKEN_MODE = "token"
TOKEN_HELP = ("give the cluster's token with --token-file FILE, the RAY_AUTH_TOKEN variable, a file named by "
              "RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token (cluster/README.md: token authentication)")


class ClusterAuthError(InputError):
    """A token that cannot be read, or a cluster that refused the one given (or its absence)."""


def default_token_file() -> Path:
    """Where ``ray.init()`` writes the token of a local cluster and where Ray looks last: ``~/.ray/auth_token``."""
    return Path.home() / ".ray" / "auth_token"


def read_token_file(path: str | Path, what: str) -> str:
    """The token in ``path``; ``what`` (the flag or variable that named it) goes into the error."""
    try:
        token = Path(path).read_text().strip()
    except OSError as err:
        raise ClusterAuthError(f"{what} {path}: cannot read the token ({err.strerror or err})") from None
    if not token:
        raise ClusterAuthError(f"{what} {path}: the token file is empty")
    return token


def find_token(token_file: str | Path | None = None) -> str | None:
    """The token, from ``token_file`` or where Ray looks, in Ray's order: ``RAY_AUTH_TOKEN``, the file named by
    ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``; None where there is none."""
    if token_file is not None:
        return read_token_file(token_file, "--token-file")
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip()
    if os.environ.get(TOKEN_PATH_ENV):
        return read_token_file(os.environ[TOKEN_PATH_ENV], TOKEN_PATH_ENV)
    default = default_token_file()
    return read_token_file(default, "token file") if default.is_file() else None


def use_token_auth(token_file: str | Path | None = None) -> None:
    """Before Ray is imported (it reads the mode once): token mode unless the environment chose a mode, and a
    ``--token-file`` as the token Ray uses (it outranks ``RAY_AUTH_TOKEN``, which would otherwise win)."""
    if token_file is not None:
        read_token_file(token_file, "--token-file")  # fail here, not deep inside Ray
        os.environ[TOKEN_PATH_ENV] = str(Path(token_file).resolve())
        os.environ.pop(TOKEN_ENV, None)
    os.environ.setdefault(AUTH_MODE_ENV, TOKEN_MODE)


def authorization_headers(token: str | None) -> dict[str, str]:
    """The HTTP header Ray's dashboard and Jobs API check; none without a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def refused(where: str, token_found: bool) -> ClusterAuthError:
    """Ray's ``AuthenticationError`` at ``where`` as one line that says how to give the token."""
    what = "refused the token given" if token_found else "no token was found here"
    return ClusterAuthError(f"{where}: the Ray cluster requires its auth token, and {what}; {TOKEN_HELP}")


def is_auth_failure(err: BaseException) -> bool:
    """Whether ``err`` or what caused it is Ray's authentication error."""
    from ray.exceptions import AuthenticationError

    while err is not None:
        if isinstance(err, AuthenticationError):
            return True
        err = err.__cause__ or err.__context__
    return False
