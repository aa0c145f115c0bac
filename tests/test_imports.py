"""The package's import graph: no cycles (function-level imports included), and lazy imports only where a reason
is written down."""

import ast
import sys
from pathlib import Path

import vgf_ray

PACKAGE = Path(vgf_ray.__file__).resolve().parent
# Third-party modules (and their submodules) a function may import lazily, with the reason; anything else is
# imported at module level.
LAZY_IMPORTS = {
    "ray.job_submission": "optional extra (vgf_ray[cluster]): the Jobs API client of vgf-ray submit",
    "ray.tune.schedulers.pb2": "needs scikit-learn, an optional extra (PB2's Gaussian process)",
    "stable_baselines3": "optional extra (behavior-policy training)",
    "onnx": "optional extra (export)",
    "onnxscript": "optional extra (export)",
    "matplotlib": "loaded only when a plot is written",
    "mlflow": "loaded only when a run is tracked",
}
# Modules whose imports are all lazy: the CLI answers --help and bad arguments before Ray and torch load;
# `import vgf_ray` loads Ray only when `VGF` or `VGFConfig` is asked for; the CLI reads `vgf_ray.serving.defaults`
# without loading Ray Serve; `cluster_auth` sets Ray's auth mode, which Ray reads once, at its import.
LAZY_MODULES = {"vgf_ray.cli", "vgf_ray", "vgf_ray.serving", "vgf_ray.cluster_auth"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def owning_module(name: str) -> str | None:
    """The package module that ``import name`` executes (``a.b.C`` -> ``a.b`` when ``C`` is not a module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imported_names(node: ast.AST, package: str) -> list[str]:
    """Dotted names an import statement loads (``from x import y`` loads ``x`` and maybe ``x.y``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parent + ([node.module] if node.module else []))
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph() -> dict[str, set[str]]:
    """module -> package modules it imports anywhere in its body, plus the ``__init__`` of every package it enters
    from outside (importing ``a.b.c`` runs ``a/b/__init__.py`` first)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in filter(None, map(owning_module, imported_names(node, package))):
                parts = target.split(".")
                ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
                graph[name] |= {t for t in ancestors | {target}
                                if t != name and t in MODULES and not (name + ".").startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while component[-1:] != [v]:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle_through_a_package_init():
    graph = {"p": {"p.a"}, "p.a": {"q.b"}, "q": set(), "q.b": {"p"}}
    assert cycles(graph) == [["p", "p.a", "q.b"]]


# The layers, lowest first: a module imports only from lower layers (or its own package). ARCHITECTURE.md says
# what each owns.
LAYERS = (
    ("errors", "metrics", "quiet", "seed_stats"),  # shared names and small helpers
    ("core", "data", "plots", "cluster_auth", "local_cluster"),  # the math (plain PyTorch), the data (files,
    # replay) and the plots, all Ray-free; Ray's token auth and a multi-node Ray on one machine
    ("envs", "toy", "behavior_policies"),  # environments, the 2-D toy, the locomotion behavior policies
    ("rllib",),  # VGF as an RLlib algorithm, and the scaffold every offline algorithm builds on
    ("baselines",),  # RLlib's BC, IQL and CQL on that scaffold
    ("experiment",),  # experiment files -> configs -> the run loop, history, MLflow
    ("report", "serving", "submit"),  # what reads runs and checkpoints: the report, Serve and export, the Jobs API
    ("tuning",),  # Tune sweeps of experiments
    ("cli", "vgf_ray"),  # the command line and the package's lazy exports
)


def package_of(module: str) -> str:
    """``vgf_ray.core.vgf`` -> ``core``; ``vgf_ray`` -> ``vgf_ray``."""
    return module.split(".")[1] if "." in module else module


def layer_of(module: str) -> int:
    for level, names in enumerate(LAYERS):
        if package_of(module) in names:
            return level
    raise AssertionError(f"{module}: in no layer of LAYERS (add its package there)")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{a} -> {b}" for a, targets in sorted(graph.items()) for b in sorted(targets)
            if package_of(a) != package_of(b) and layer_of(b) >= layer_of(a)]


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports(import_graph()) == []
    assert upward_imports({"vgf_ray.data.spec": {"vgf_ray.experiment.build"}}) == [
        "vgf_ray.data.spec -> vgf_ray.experiment.build"]


def test_function_level_imports_are_the_listed_lazy_ones():
    offenders = []
    for name, path in sorted(MODULES.items()):
        if name in LAZY_MODULES:
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
                    target = imported_names(node, "")[0]
                    if not any(target == lazy or target.startswith(lazy + ".") for lazy in LAZY_IMPORTS):
                        offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {target}")
    assert offenders == []
