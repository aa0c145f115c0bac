"""Experiment files (YAML) -> a VGFConfig -> a training run with progress, history, plots, checkpoints, MLflow.

An experiment file has these top-level sections (all optional but ``dataset``/``env`` usually given):
``name, seed, iterations, checkpoint_every, output_dir, ray, env, dataset, training, evaluation, resources,
mlflow`` and, for ``vgf-ray tune``, ``sweep`` (see ``vgf_ray.tuning``).
``--set section.key=value`` overrides any entry (values parsed as YAML).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SECTIONS = {"name", "seed", "iterations", "checkpoint_every", "output_dir", "ray", "env", "dataset", "training",
            "evaluation", "resources", "mlflow", "sweep"}
DEFAULTS: dict[str, Any] = {
    "name": "vgf", "seed": 0, "iterations": 10, "checkpoint_every": 0, "output_dir": "runs/{name}",
    "ray": {"num_cpus": 4, "object_store_memory": 1 << 30},
    "env": {"ogbench": "cube-single-play", "success_timing": "post"},
    "dataset": {}, "training": {},
    "evaluation": {"interval": 1, "episodes": 10, "budgets": [0, 1, 2, 3], "num_env_runners": 0},
    "resources": {"num_learners": 0, "num_gpus_per_learner": "auto"},
    "mlflow": {"tracking_uri": "sqlite:///{output_dir}/../mlflow.db", "experiment": "vgf_ray"},
}


class ExperimentError(ValueError):
    """A bad experiment file or override; the message names the file and key."""


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_override(exp: dict, assignment: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) in place."""
    if "=" not in assignment:
        raise ExperimentError(f"--set {assignment!r}: expected KEY=VALUE, e.g. training.num_particles=5")
    dotted, raw = assignment.split("=", 1)
    keys = dotted.strip().split(".")
    if keys[0] not in SECTIONS:
        raise ExperimentError(f"--set {assignment!r}: unknown section {keys[0]!r}; sections: {sorted(SECTIONS)}")
    node = exp
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ExperimentError(f"--set {assignment!r}: {key!r} is not a section")
    node[keys[-1]] = yaml.safe_load(raw)


def load_experiment(path: str | Path, overrides: list[str] = ()) -> dict:
    """Read a YAML experiment, fill defaults, apply overrides and resolve paths."""
    path = Path(path)
    if not path.exists():
        raise ExperimentError(f"{path}: experiment file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ExperimentError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(raw, dict):
        raise ExperimentError(f"{path}: top level must be a mapping of sections")
    unknown = sorted(set(raw) - SECTIONS)
    if unknown:
        raise ExperimentError(f"{path}: unknown section(s) {unknown}; sections: {sorted(SECTIONS)}")
    exp = _merge(DEFAULTS, raw)
    for assignment in overrides:
        apply_override(exp, assignment)
    exp["output_dir"] = str(Path(str(exp["output_dir"]).format(name=exp["name"])).resolve())
    uri = exp["mlflow"].get("tracking_uri")
    if uri:
        exp["mlflow"]["tracking_uri"] = uri.format(output_dir=exp["output_dir"])
        if exp["mlflow"]["tracking_uri"].startswith("sqlite:///") and not exp["mlflow"]["tracking_uri"].startswith(
            "sqlite:////"
        ):
            db = Path(exp["mlflow"]["tracking_uri"][len("sqlite:///"):]).resolve()
            exp["mlflow"]["tracking_uri"] = f"sqlite:///{db}"
    return exp


def build_config(exp: dict):
    """The VGFConfig an experiment describes."""
    import torch

    from vgf_ray.rllib import VGFConfig

    ev, res = exp["evaluation"], exp["resources"]
    gpus = learner_gpus(res.get("num_gpus_per_learner", "auto"), int(res.get("num_learners", 0)),
                        torch.cuda.is_available(), 0.0)  # "auto" is settled again once Ray is up
    training = dict(exp["training"])
    training["dataset"] = exp["dataset"]
    training["eval_budgets"] = list(ev.get("budgets", [0, 1, 2, 3]))
    try:
        config = (
            VGFConfig()
            .environment(env_config=exp["env"])
            .training(**training)
            .evaluation(evaluation_interval=ev.get("interval", 1), evaluation_duration=int(ev.get("episodes", 10)),
                        evaluation_num_env_runners=int(ev.get("num_env_runners", 0)))
            .learners(num_learners=int(res.get("num_learners", 0)), num_gpus_per_learner=gpus)
            .env_runners(num_env_runners=int(res.get("num_env_runners", 0)),
                         num_envs_per_env_runner=int(res.get("num_envs_per_env_runner", 1)))
            .debugging(seed=int(exp["seed"]))
        )
    except TypeError as err:
        raise ExperimentError(f"training: {err}") from err
    config.validate()
    return config


def summarize(result: dict, budgets: list[int], evaluation_interval: int | None = None) -> dict:
    """The numbers of one ``train()`` result worth a history row.

    RLlib keeps the last evaluation's (or NaN) values in results of iterations without an evaluation round, so
    evaluation numbers are taken only on iterations that evaluate (every ``evaluation_interval``).
    """
    row: dict[str, Any] = {"iteration": result["training_iteration"],
                           "grad_steps": int(result.get("num_grad_steps_lifetime", 0)),
                           "online_env_steps": int(result.get("online_env_steps_lifetime", 0)),
                           "phase": int(result.get("phase", 0)),
                           "time_s": result.get("time_total_s", 0.0)}
    learner = result.get("learners", {}).get("default_policy", {})
    for key in ("critic/loss", "critic/q_mean", "bc/loss", "grad_net/loss"):
        if key in learner:
            row[key] = float(learner[key])
    evaluated = bool(evaluation_interval) and result["training_iteration"] % evaluation_interval == 0
    evaluation = result.get("evaluation", {}) if evaluated else {}
    for budget in budgets:
        stats = evaluation.get(f"budget_{budget}")
        # Iterations without an evaluation round still carry the keys, reduced to NaN: skip them.
        if stats and math.isfinite(float(stats.get("success", float("nan")))):
            row[f"budget_{budget}/success"] = float(stats["success"])
            row[f"budget_{budget}/return"] = float(stats["return"])
    return row


def read_history(out_dir: Path, up_to_iteration: int) -> list[dict]:
    """Rows of an earlier run in ``out_dir`` up to the iteration a resumed checkpoint was saved at."""
    path = out_dir / "history.json"
    if not path.exists():
        return []
    return [row for row in json.loads(path.read_text()) if row["iteration"] <= up_to_iteration]


def write_history(history: list[dict], out_dir: Path) -> None:
    (out_dir / "history.json").write_text(json.dumps(history, indent=2))
    keys = sorted({k for row in history for k in row}, key=lambda k: (k not in ("iteration", "grad_steps"), k))
    with open(out_dir / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


class MLflowRun:
    """Thin MLflow wrapper: params once, metrics per iteration, artifacts at the end; a no-op when disabled."""

    RUN_ID_FILE = "mlflow_run_id.txt"

    def __init__(self, exp: dict, out_dir: Path, resume: bool = False):
        """A resumed experiment continues the MLflow run whose id its output folder recorded."""
        self.enabled = bool(exp["mlflow"].get("tracking_uri"))
        if not self.enabled:
            return
        import mlflow

        os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
        self.mlflow = mlflow
        mlflow.set_tracking_uri(exp["mlflow"]["tracking_uri"])
        mlflow.set_experiment(exp["mlflow"].get("experiment", "vgf_ray"))
        id_file = out_dir / self.RUN_ID_FILE
        if resume and id_file.exists():
            self.run = mlflow.start_run(run_id=id_file.read_text().strip())
            return
        self.run = mlflow.start_run(run_name=exp["name"])
        id_file.write_text(self.run.info.run_id)
        params = {f"{section}/{key}": value for section in ("training", "dataset", "evaluation", "env")
                  for key, value in exp[section].items()}
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def log(self, row: dict) -> None:
        if self.enabled:
            metrics = {k.replace("/", "."): v for k, v in row.items() if isinstance(v, (int, float))}
            self.mlflow.log_metrics(metrics, step=int(row["grad_steps"]))

    def finish(self, out_dir: Path, status: str = "FINISHED") -> None:
        if self.enabled:
            for name in ("history.csv", "learning_curve.png", "budget_curve.png", "final_evaluation.json"):
                if (out_dir / name).exists():
                    self.mlflow.log_artifact(str(out_dir / name))
            self.mlflow.end_run(status=status)


def resolve_iterations(exp: dict, config) -> int:
    """``iterations`` as an integer; ``auto`` covers the offline and online phases exactly."""
    iterations = exp["iterations"]
    if iterations == "auto":
        iterations = config.planned_iterations()
        if iterations is None:
            raise ExperimentError("iterations: 'auto' needs training.offline_steps (offline-only runs never end)")
    if not isinstance(iterations, int) or iterations < 1:
        raise ExperimentError(f"iterations must be an integer >= 1 or 'auto', got {iterations!r}")
    return iterations


def learner_gpus(setting: Any, num_learners: int, local_cuda: bool, cluster_gpus: float) -> float | int:
    """GPUs per learner for ``resources.num_gpus_per_learner``; ``auto`` asks where the learners will run.

    With ``num_learners == 0`` the learner lives in the driver process, so the driver's CUDA decides; remote
    learners may sit on other nodes, so the cluster must hold a GPU for each of them.
    """
    if setting != "auto":
        return setting
    if num_learners == 0:
        return 1 if local_cuda else 0
    return 1 if cluster_gpus >= num_learners else 0


def resolve_learner_gpus(exp: dict, config) -> None:
    """After ``ray.init``: settle ``num_gpus_per_learner: auto`` against the cluster's GPUs."""
    import ray
    import torch

    res = exp["resources"]
    gpus = learner_gpus(res.get("num_gpus_per_learner", "auto"), int(res.get("num_learners", 0)),
                        torch.cuda.is_available(), float(ray.cluster_resources().get("GPU", 0)))
    config.learners(num_gpus_per_learner=gpus)


def init_ray(exp: dict) -> None:
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        opts = dict(exp["ray"])
        address = opts.pop("address", None)
        if address:
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, **opts)


def _checkpoint_dir(path: str, flag: str) -> str:
    resolved = Path(path).resolve()
    if not (resolved / "rllib_checkpoint.json").exists():
        raise ExperimentError(f"{flag} {path}: not an RLlib checkpoint folder (no rllib_checkpoint.json)")
    return str(resolved)


def run_experiment(exp: dict, progress: bool = True, from_checkpoint: str | None = None,
                   resume: str | None = None) -> dict:
    """Train for ``iterations`` (``auto``: both phases); returns ``{"history", "final", "checkpoint", "output_dir"}``.

    ``from_checkpoint`` starts from a checkpoint's trained networks (e.g. online fine-tuning of an offline run).
    ``resume`` continues an interrupted run exactly: every learner, optimizer, replay, counter and the iteration
    count come back from the checkpoint, and the history of ``output_dir`` is continued up to ``iterations``.
    """
    if from_checkpoint and resume:
        raise ExperimentError("use either --from-checkpoint (weights only) or --resume (whole run), not both")
    from_checkpoint = _checkpoint_dir(from_checkpoint, "--from-checkpoint") if from_checkpoint else None
    resume = _checkpoint_dir(resume, "--resume") if resume else None
    from tqdm import tqdm

    from vgf_ray.plots import plot_budget_curve, plot_learning_curves

    config = build_config(exp)  # bad settings fail before anything is written
    out_dir = Path(exp["output_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "experiment.yaml").write_text(yaml.safe_dump(exp, sort_keys=False))
    init_ray(exp)
    resolve_learner_gpus(exp, config)
    budgets = list(config.eval_budgets)
    step_size = config.eval_step_size if config.eval_step_size is not None else config.vgf_lr
    total = resolve_iterations(exp, config)
    tracker = MLflowRun(exp, out_dir, resume=bool(resume))
    algo = config.build_algo()
    history: list[dict] = []
    checkpoint = None
    status = "FAILED"
    final = None
    try:
        if from_checkpoint:
            algo.load_module_weights(from_checkpoint)
        if resume:
            algo.restore_from_path(resume)
            history = read_history(out_dir, algo.iteration)
            if len(history) < algo.iteration:
                print(f"warning: --resume: {out_dir} holds history for {len(history)} of the {algo.iteration} "
                      "iterations before the checkpoint; history files and plots will miss the others (resume into "
                      "the interrupted run's output_dir to keep them)", file=sys.stderr)
        bar = tqdm(range(algo.iteration, total), desc=exp["name"], unit="it", initial=algo.iteration, total=total,
                   disable=not progress)
        for i in bar:
            start = time.perf_counter()
            row = summarize(algo.train(), budgets, config.evaluation_interval)
            online = row["phase"] != 0
            row["step"] = (config.offline_steps or 0) + row["online_env_steps"] if online else row["grad_steps"]
            row["iteration_s"] = time.perf_counter() - start
            history.append(row)
            write_history(history, out_dir)  # kept current so an interrupted run leaves its curve behind
            tracker.log(row)
            shown = {k.split("/")[0] if k.endswith("success") else k: round(v, 3) for k, v in row.items()
                     if k.endswith("success") or k in ("critic/loss", "bc/loss")}
            bar.set_postfix(shown, refresh=False)
            if progress:
                tqdm.write(f"[{exp['name']}] it {row['iteration']} grad_steps {row['grad_steps']} "
                           + " ".join(f"{k}={v:.3g}" for k, v in shown.items()))
            every = int(exp.get("checkpoint_every") or 0)
            if every and (i + 1) % every == 0:
                checkpoint = algo.save_to_path(str(out_dir / "checkpoint"))
        checkpoint = algo.save_to_path(str(out_dir / "checkpoint"))
        write_history(history, out_dir)
        online_start = config.offline_steps if config.online_env_steps else None
        plot_learning_curves(history, budgets, out_dir / "learning_curve.png", online_start=online_start)
        final = next((row for row in reversed(history) if f"budget_{budgets[0]}/success" in row), None)
        if final is not None:
            final_eval = {f"budget_{b}": {"success": final[f"budget_{b}/success"],
                                          "return": final[f"budget_{b}/return"]} for b in budgets}
            (out_dir / "final_evaluation.json").write_text(json.dumps(final_eval, indent=2))
            plot_budget_curve(final_eval, budgets, out_dir / "budget_curve.png", step_size)
        status = "FINISHED"
    finally:
        algo.stop()
        tracker.finish(out_dir, status)
    return {"history": history, "final": final, "checkpoint": checkpoint, "output_dir": str(out_dir)}


def evaluate_checkpoint(checkpoint: str, budgets: list[int], episodes: int, step_size: float | None,
                        out_dir: str | Path | None = None) -> dict:
    """Restore a trained VGF and evaluate it at each budget; writes JSON and the budget plot."""
    from vgf_ray.plots import plot_budget_curve
    from vgf_ray.rllib import VGF
    from vgf_ray.rllib.evaluation import run_budget_evaluation

    checkpoint_path = Path(checkpoint).resolve()
    if not checkpoint_path.exists():
        raise FileNotFoundError(f"{checkpoint_path}: checkpoint not found")
    algo = VGF.from_checkpoint(str(checkpoint_path))
    try:
        size = step_size if step_size is not None else algo.config.vgf_lr
        group = algo.eval_env_runner_group or algo.env_runner_group
        group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)
        results, _ = run_budget_evaluation(group, budgets, episodes, size)
    finally:
        algo.stop()
    out = Path(out_dir) if out_dir else checkpoint_path.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(results, indent=2))
    plot_budget_curve(results, budgets, out / "evaluation_budget_curve.png", size)
    return results
