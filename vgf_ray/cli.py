"""``vgf-ray``: make datasets, train from a YAML experiment, evaluate a checkpoint at several budgets."""

from __future__ import annotations

import argparse
import json
import os
import sys

from vgf_ray.cluster_auth import use_token_auth
from vgf_ray.metrics import DEFAULT_BUDGETS, RETURN, SCORE, SUCCESS, budget_key

EXIT_DIVERGED = 3


def _env_defaults() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def cmd_make_dataset(args: argparse.Namespace) -> int:
    from vgf_ray.data.mujoco_names import is_mujoco_name
    from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset, generate_ogbench_dataset
    from vgf_ray.data.spec import OGBENCH_DEFAULT_SIZE

    if is_mujoco_name(args.name):
        from vgf_ray.data.mujoco_generate import generate_mujoco_dataset

        path = generate_mujoco_dataset(args.name, args.size, args.seed, overwrite=args.overwrite)
    elif args.out_dir:
        path = generate_ogbench_dataset(args.name, args.size or OGBENCH_DEFAULT_SIZE, args.out_dir, args.seed,
                                        args.episode_length)
    else:
        path = ensure_ogbench_dataset(args.name, args.size or OGBENCH_DEFAULT_SIZE, args.cache_dir, args.seed,
                                      args.episode_length)
    print(path)
    return 0


def _overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` assignments, plus ``--mlflow-uri`` as the tracking store."""
    overrides = list(args.set or [])
    if getattr(args, "mlflow_uri", None):
        overrides.append(f"mlflow.tracking_uri={args.mlflow_uri}")
    if getattr(args, "address", None):
        overrides.append(f"ray.address={args.address}")
    return overrides


def cmd_train(args: argparse.Namespace) -> int:
    import time

    from vgf_ray.experiment import load_experiment, run_experiment
    from vgf_ray.experiment.summary import run_summary

    exp = load_experiment(args.config, _overrides(args))
    start = time.perf_counter()
    result = run_experiment(exp, progress=not args.quiet, from_checkpoint=args.from_checkpoint,
                            resume=args.resume)
    if args.quiet or args.json:  # for scripts: the outputs as JSON
        print(json.dumps({"output_dir": result.output_dir, "checkpoint": result.checkpoint,
                          "final": result.final}, indent=2))
    else:
        print(run_summary(exp, result, time.perf_counter() - start))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from vgf_ray.experiment import load_experiment
    from vgf_ray.tuning import export_schedule, prepare_sweep, run_sweep

    exp = load_experiment(args.config, _overrides(args))
    if args.export_schedule:
        prepare_sweep(exp)  # the same sweep file, checked
        print(export_schedule(exp, args.export_schedule, args.out))
        return 0
    summary = run_sweep(exp, resume=args.resume)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from vgf_ray.experiment.model import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from vgf_ray.submit import submit

    # --address here is the Jobs API; the job's own driver joins the cluster with ray.address=auto.
    return submit(args.config, args.address, args.command, list(args.set or []), args.working_dir,
                  follow=not args.no_follow, token_file=args.token_file)


def cmd_report(args: argparse.Namespace) -> int:
    from vgf_ray.report import write_report

    print(write_report(args.folder, args.out))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vgf_ray.experiment import evaluate_checkpoint, init_ray
    from vgf_ray.experiment.schema import DEFAULTS

    init_ray({"ray": DEFAULTS["ray"]})
    results = evaluate_checkpoint(args.checkpoint, args.budgets, args.episodes, args.step_size, args.out_dir,
                                  args.alpha, args.seed)
    for budget in args.budgets:
        stats = results[budget_key(budget)]
        score = f" score={stats[SCORE]:.2f}" if SCORE in stats else ""
        print(f"L_test={budget}: success={stats[SUCCESS]:.3f} return={stats[RETURN]:.2f}{score} "
              f"({stats['episodes']} episodes)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from vgf_ray.errors import InputError

    try:
        from vgf_ray.serving.app import deployment, serve_until_stopped
    except ModuleNotFoundError as err:
        raise InputError(f"serve needs Ray Serve: pip install 'vgf_ray[serve]' ({err})") from None

    app = deployment(args.checkpoint, replicas=args.replicas, max_batch_size=args.max_batch_size,
                     batch_wait_ms=args.batch_wait_ms, max_request_rows=args.max_request_rows,
                     gpus_per_replica=args.gpus_per_replica)
    return serve_until_stopped(app, args.port, args.replicas)


def cmd_export(args: argparse.Namespace) -> int:
    from vgf_ray.serving.export import export_acting_function

    meta = export_acting_function(args.checkpoint, args.budget, args.format, args.out, args.step_size)
    print(f"{args.out}: {args.format}, budget {meta['budget']}, step size {meta['step_size']}, inputs "
          f"observation {meta['inputs']['observation']} and noise {meta['inputs']['noise']} (standard normal)")
    return 0


def cmd_toy(args: argparse.Namespace) -> int:
    import torch

    from vgf_ray.core.transport import TransportBudget
    from vgf_ray.toy import plot_toy, train_toy, true_reward

    result = train_toy(steps=args.steps, seed=args.seed)
    for steps in args.budgets:
        # Same behavior samples for every budget, so the plot shows where each particle moves.
        start = torch.Generator().manual_seed(args.seed)
        _, particles = result.agent.nets.sample_particles(torch.ones(1, 1), TransportBudget(steps, 0.1), start)
        result.particles[steps] = particles[0].numpy()
        chosen = result.agent.act(torch.ones(500, 1), steps)
        print(f"L={steps}: mean true reward of chosen action {true_reward(chosen.numpy()).mean():.4f}")
    plot_toy(result, args.budgets, args.out)
    print(args.out)
    return 0


def _token_file_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token-file", default=None, help="the cluster's auth token (default: RAY_AUTH_TOKEN, "
                   "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, as Ray looks)")


def _serving_parsers(sub) -> None:
    from vgf_ray.serving.defaults import DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH_SIZE, DEFAULT_PORT, MAX_REQUEST_ROWS

    p = sub.add_parser("serve", help="a Ray Serve endpoint on 127.0.0.1: POST /act with the budget per request")
    p.add_argument("checkpoint", help="a VGF or baseline checkpoint (what evaluate takes)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                   help="requests gathered into one module call (1: no batching)")
    p.add_argument("--batch-wait-ms", type=float, default=DEFAULT_BATCH_WAIT_MS,
                   help="how long a batch waits for more requests")
    p.add_argument("--max-request-rows", type=int, default=MAX_REQUEST_ROWS, help="observations in one request")
    p.add_argument("--gpus-per-replica", type=float, default=0.0)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("export", help="write VGF's acting function at one budget (TorchScript or ONNX)")
    p.add_argument("checkpoint")
    p.add_argument("--budget", type=int, required=True, help="transport steps, unrolled into the file")
    p.add_argument("--step-size", type=float, default=None, help="default: the run's test-time step size")
    p.add_argument("--format", choices=["torchscript", "onnx"], default="torchscript")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)


def _dataset_parser(sub) -> None:
    """make-dataset."""
    p = sub.add_parser("make-dataset", help="generate a dataset locally: OGBench with the shipped oracles, MuJoCo "
                       "locomotion (Minari format) with the shipped behavior policies")
    p.add_argument("name", help="e.g. cube-single-play, scene-play, puzzle-3x3-play, pointmaze-medium-navigate, "
                   "mujoco/hopper/medium-v0 (mujoco/{hopper,halfcheetah,walker2d}/{expert,medium,medium-replay,"
                   "medium-expert}-v0)")
    p.add_argument("--size", type=int, default=None, help="number of transitions (OGBench default 50000; MuJoCo: "
                   "1M, medium-expert 2M, medium-replay the training run up to the medium policy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episode-length", type=int, default=1001, help="steps per trajectory (official: 1001)")
    p.add_argument("--cache-dir", default=None, help="cache root (default $VGF_RAY_DATA_DIR or ~/.cache/vgf_ray)")
    p.add_argument("--out-dir", default=None, help="write here instead of the cache (always regenerates)")
    p.add_argument("--overwrite", action="store_true", help="MuJoCo: replace an existing Minari dataset of that id")
    p.set_defaults(func=cmd_make_dataset)


def _training_parsers(sub) -> None:
    """train, tune and submit: the commands that run experiments."""
    p = sub.add_parser("train", help="train from a YAML experiment (see tune_configs/)")
    p.add_argument("config")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. training.num_particles=5")
    p.add_argument("--quiet", action="store_true", help="no progress output; print the outputs as JSON")
    p.add_argument("--json", action="store_true", help="end with the outputs as JSON, not the summary")
    p.add_argument("--from-checkpoint", default=None, help="start from this checkpoint's trained networks")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue an interrupted run exactly from its checkpoint (same config and output_dir)")
    p.add_argument("--mlflow-uri", default=None, help="MLflow tracking URI, e.g. http://127.0.0.1:5000")
    p.add_argument("--address", default=None, help="an existing Ray cluster: auto or ray://HOST:PORT "
                   "(default: start a local Ray)")
    _token_file_argument(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("tune", help="Ray Tune sweep: search space, ASHA/PBT/PB2, Optuna (experiment YAML + sweep)")
    p.add_argument("config")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. iterations=20")
    p.add_argument("--mlflow-uri", default=None, help="MLflow tracking URI, e.g. http://127.0.0.1:5000")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep (Tune's restore)")
    p.add_argument("--export-schedule", default=None, metavar="TRIAL",
                   help="write an experiment that replays this trial's budget (PBT mutations) in one train run")
    p.add_argument("--out", default=None, help="where --export-schedule writes (default: in the sweep folder)")
    p.add_argument("--address", default=None, help="an existing Ray cluster: auto or ray://HOST:PORT "
                   "(default: start a local Ray)")
    _token_file_argument(p)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("schema", help="print the experiment file's JSON Schema (for editors: vgf-ray schema > "
                                      "experiment.schema.json)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("submit", help="run a train or tune experiment on a Ray cluster via the Ray Jobs API")
    p.add_argument("config")
    p.add_argument("--address", required=True, help="the cluster's Jobs API, e.g. http://127.0.0.1:8265")
    p.add_argument("--command", choices=["train", "tune"], default=None,
                   help="default: tune if the experiment has a sweep section, else train")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, passed on to the job")
    p.add_argument("--working-dir", default=None, help="uploaded as the job's working directory "
                   "(default: the experiment file's folder)")
    p.add_argument("--no-follow", action="store_true", help="print the job id and return")
    _token_file_argument(p)
    p.set_defaults(func=cmd_submit)


def _result_parsers(sub) -> None:
    """report, evaluate and toy: the commands that read or show results."""
    p = sub.add_parser("report", help="one HTML page for a run or sweep folder (curves, budgets, trials, schedules)")
    p.add_argument("folder")
    p.add_argument("--out", default=None, help="default: FOLDER/report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint at several test-time budgets")
    p.add_argument("checkpoint")
    p.add_argument("--budgets", type=int, nargs="+", default=list(DEFAULT_BUDGETS))
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--step-size", type=float, default=None,
                   help="transport step size (default: the run's eval_step_size, else its vgf_lr)")
    p.add_argument("--alpha", type=float, default=None, help="transport alpha (default: the trained run's)")
    p.add_argument("--seed", type=int, default=None,
                   help="episode seed (default: the run's); equal seeds give two checkpoints the same episodes")
    p.add_argument("--out-dir", default=None)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("toy", help="the paper's 2-D bandit: train, print rewards per budget, plot particles")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budgets", type=int, nargs="+", default=[0, 5, 20])
    p.add_argument("--out", default="toy_particles.png")
    p.set_defaults(func=cmd_toy)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgf-ray", description=__doc__)
    sub = parser.add_subparsers(dest="subcommand", required=True)
    _dataset_parser(sub)
    _training_parsers(sub)
    _result_parsers(sub)
    _serving_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _env_defaults()
    from vgf_ray.quiet import quiet_library_noise

    quiet_library_noise()
    args = build_parser().parse_args(argv)
    from vgf_ray.core.divergence import DivergenceError
    from vgf_ray.errors import InputError, RunInterrupted

    try:
        use_token_auth(getattr(args, "token_file", None))  # before anything imports Ray, which reads the mode once
        return args.func(args)
    except (InputError, FileNotFoundError) as err:  # the user's to fix: one line; anything else keeps its traceback
        print(f"vgf-ray {args.subcommand}: error: {err}", file=sys.stderr)
        return 2
    except DivergenceError as err:
        print(f"vgf-ray {args.subcommand}: stopped: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except RunInterrupted as err:
        print(f"vgf-ray {args.subcommand}: interrupted by {err}", file=sys.stderr)
        return 128 + err.signum


if __name__ == "__main__":
    sys.exit(main())
