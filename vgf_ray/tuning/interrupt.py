"""Graceful interruption of a sweep: SIGINT or SIGTERM lets every running trial checkpoint before Tune stops.

Tune's own Ctrl+C handling stops the loop at once and keeps each trial's last periodic checkpoint, so up to
``checkpoint_interval`` iterations per trial are lost, and it ignores SIGTERM. Here the driver's first signal
raises a flag in a small named Ray actor; every trial reads it after each iteration (the run loop's safe point),
reports a checkpoint and waits. Once every trial that was running has checkpointed (or stopped otherwise), the
callback hands Tune its own stop signal (SIGUSR1), Tune saves the sweep state, and ``run_sweep`` ends with
``RunInterrupted`` naming the resume command. A second signal stops at once.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType
from typing import Any

import ray
from ray.tune import Callback

from vgf_ray.experiment.interrupt import HANDLED_SIGNALS

STOP_FLAG_NAMESPACE = "vgf_ray"
TUNE_STOP_SIGNAL = signal.SIGUSR1  # tune.run's handler stops the loop on it (SIGINT's is disabled, below)


def stop_flag_name(sweep_name: str) -> str:
    """Unique per driver process, so two sweeps (or a resumed one) on one cluster never share a flag."""
    return f"sweep-stop-{sweep_name}-{os.getpid()}"


def _stop_flag_class():

    @ray.remote(num_cpus=0)
    class StopFlag:
        """The signal number the sweep was asked to stop with, or None."""

        def __init__(self) -> None:
            self.signum: int | None = None

        def request(self, signum: int) -> None:
            self.signum = signum

        def requested(self) -> int | None:
            return self.signum

    return StopFlag


class TrialStopCheck:
    """In a trial: has the sweep been asked to stop? One small actor call per iteration."""

    def __init__(self, flag_name: str | None):
        self.flag = None
        if flag_name:
            try:
                self.flag = ray.get_actor(flag_name, namespace=STOP_FLAG_NAMESPACE)
            except ValueError:  # the driver that made it is gone: nobody can ask this trial to stop
                self.flag = None

    def requested(self) -> bool:
        return self.flag is not None and ray.get(self.flag.requested.remote()) is not None


def wait_to_be_stopped() -> None:
    """A trial that saved on request idles until the driver's Tune stops it (returning would mark it finished)."""
    while True:
        time.sleep(1.0)


_LIVE: SweepStopCallback | None = None


class SweepStopCallback(Callback):
    """Driver side: turns SIGINT/SIGTERM into a checkpoint of every running trial, then Tune's stop.

    ``Tuner.restore`` runs the callbacks it unpickles from the sweep state, not the ones passed in; those copies
    forward to the live instance (``_LIVE``, one sweep per driver process), which holds the signal handlers.
    """

    def __init__(self, sweep_name: str):
        self.flag_name = stop_flag_name(sweep_name)
        self.signum: int | None = None
        self.flag: Any = None
        self.waiting: set[str] | None = None  # trial ids still to checkpoint after the request
        self.stopped = False
        self._previous: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with the sweep state
        return {**self.__dict__, "flag": None, "_previous": {}, "signum": None, "waiting": None, "stopped": False}

    def __enter__(self) -> SweepStopCallback:
        global _LIVE
        _LIVE = self
        self.flag = _stop_flag_class().options(name=self.flag_name, namespace=STOP_FLAG_NAMESPACE).remote()
        ray.get(self.flag.requested.remote())
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # SIGINT is ours; Tune still stops on SIGUSR1
        for sig in HANDLED_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        global _LIVE
        _LIVE = None
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        if self.flag is not None:
            ray.kill(self.flag)
            self.flag = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        for sig, handler in self._previous.items():  # a second signal stops at once
            signal.signal(sig, handler)
        print(f"vgf-ray tune: {signal.Signals(signum).name}: every running trial saves a checkpoint after its "
              "current iteration, then the sweep stops (signal again to stop at once)", flush=True)

    @property
    def interrupted(self) -> bool:
        return self.signum is not None

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        if _LIVE is not None and _LIVE is not self:
            return _LIVE.on_step_end(iteration, trials, **info)
        if self.signum is None or self.stopped:
            return
        if self.waiting is None:
            ray.get(self.flag.request.remote(self.signum))
            self.waiting = {t.trial_id for t in trials if t.status == "RUNNING"}
        running = {t.trial_id for t in trials if t.status == "RUNNING"}
        self.waiting &= running  # a trial that finished, failed or paused meanwhile has nothing more to save
        if not self.waiting:
            self.stopped = True
            signal.raise_signal(TUNE_STOP_SIGNAL)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info) -> None:
        if _LIVE is not None and _LIVE is not self:
            return _LIVE.on_checkpoint(iteration, trials, trial, checkpoint, **info)
        if self.waiting is not None:
            self.waiting.discard(trial.trial_id)
