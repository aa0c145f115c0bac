"""``vgf-ray submit``: run a train or tune experiment on a Ray cluster through the Ray Jobs API.

The experiment file's folder (or ``--working-dir``) becomes the job's working directory, uploaded by Ray; the job
runs ``vgf-ray train|tune FILE --set ray.address=auto`` there, so its driver joins the cluster instead of starting
one. The command prints the job id, follows the job's logs and exits with the job's outcome. Needs the Jobs API
client and a dashboard on the head: ``pip install 'vgf_ray[cluster]'`` (``ray[default]``). Every request carries the
cluster's token (``vgf_ray.cluster_auth``): a cluster with token auth refuses requests without it.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from pathlib import Path

import yaml
from ray.exceptions import AuthenticationError

from vgf_ray.cluster_auth import authorization_headers, find_token, refused
from vgf_ray.errors import InputError

# The job's driver inherits the head node's authentication settings (its mode and token); none are set here.
JOB_ENV = {"MUJOCO_GL": "egl", "PYTHONUNBUFFERED": "1"}
FINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED")


class SubmitError(InputError):
    """A job that cannot be submitted as asked: bad file, folder or address."""


def job_command(config: Path, working_dir: Path, command: str | None, overrides: list[str]) -> tuple[str, str]:
    """``(train|tune, entrypoint)``: the file relative to the working dir; a ``sweep`` section means tune."""
    try:
        exp = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SubmitError(f"{config}: cannot read the experiment ({err})") from err
    try:
        relative = config.resolve().relative_to(working_dir.resolve())
    except ValueError as err:
        raise SubmitError(f"{config} is not inside the working directory {working_dir}: the job could not "
                          "read it") from err
    command = command or ("tune" if isinstance(exp, dict) and exp.get("sweep") else "train")
    args = ["vgf-ray", command, relative.as_posix(), "--set", "ray.address=auto"]
    for assignment in overrides:
        args += ["--set", assignment]
    return command, shlex.join(args)


def submit(config: str, address: str, command: str | None = None, overrides: list[str] | None = None,
           working_dir: str | None = None, follow: bool = True, timeout_s: float | None = None,
           token_file: str | None = None) -> int:
    """Submit the experiment; with ``follow``, stream its logs and return 0 if it succeeded, else 1."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        raise SubmitError("vgf-ray submit needs the Ray Jobs API client: pip install 'vgf_ray[cluster]'") from err
    path = Path(config)
    if not path.is_file():
        raise SubmitError(f"{config}: no such experiment file")
    folder = Path(working_dir) if working_dir else path.parent
    if not folder.is_dir():
        raise SubmitError(f"--working-dir {folder}: not a folder")
    command, entrypoint = job_command(path, folder, command, list(overrides or []))
    token = find_token(token_file)
    try:
        client = JobSubmissionClient(address, headers=authorization_headers(token))
        job_id = submit_when_ready(client, entrypoint, {"working_dir": str(folder.resolve()), "env_vars": JOB_ENV})
        print(f"submitted {command} job {job_id} to {address}: {entrypoint}", flush=True)
        if not follow:
            return 0
        asyncio.run(_print_logs(client, job_id, timeout_s))
        status = str(wait_for_job(client, job_id, timeout_s))
    except AuthenticationError as err:
        raise refused(f"--address {address}", token is not None) from err
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise SubmitError(f"--address {address}: no Ray Jobs API there ({err})") from err
    print(f"job {job_id}: {status}", flush=True)
    return 0 if status.endswith("SUCCEEDED") else 1


def submit_when_ready(client, entrypoint: str, runtime_env: dict, wait_s: float = 60.0) -> str:
    """Submit, retrying while a just-started head has no job agent yet (Ray answers 500 "No available agent")."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env)
        except RuntimeError as err:
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


async def _print_logs(client, job_id: str, timeout_s: float | None) -> None:
    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            sys.stdout.write(lines)
            sys.stdout.flush()

    try:
        await asyncio.wait_for(tail(), timeout_s)
    except TimeoutError:
        print(f"job {job_id}: still running after {timeout_s} s; stopped following it", flush=True)


def wait_for_job(client, job_id: str, timeout_s: float | None, poll_s: float = 0.5):
    """The job's final status (the log stream can end a moment before the status does)."""
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else 10.0)
    status = client.get_job_status(job_id)
    while not any(str(status).endswith(state) for state in FINAL_STATES) and time.monotonic() < deadline:
        time.sleep(poll_s)
        status = client.get_job_status(job_id)
    return status
