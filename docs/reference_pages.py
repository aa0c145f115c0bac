"""The configuration and CLI reference pages, generated from the code at every docs build so they cannot drift:
the experiment schema and type tables, the documented defaults of ``VGFHyperParams``, ``VGFConfig`` and
``DatasetSpec`` (each key's comment in the source is its description), and the ``vgf-ray`` argument parsers."""

from __future__ import annotations

import argparse
import ast
import inspect
from collections.abc import Iterator
from typing import Any


def source_comments(obj: Any) -> dict[str, str]:
    """``{name: comment}`` for every attribute assigned in ``obj``'s source (a dataclass field or ``self.name = ...``):
    the comment on its line, else the comment lines right above it."""
    lines, _ = inspect.getsourcelines(obj)
    comments: dict[str, str] = {}
    for node in ast.walk(ast.parse(_dedent(lines))):
        target = _assigned_name(node)
        if target is None or target in comments:
            continue
        line = lines[node.lineno - 1]
        text = line.split("  # ", 1)[1].strip() if "  # " in line else ""
        above = node.lineno - 2
        block = []
        while not text and above >= 0 and lines[above].strip().startswith("#"):
            block.insert(0, lines[above].strip().lstrip("#").strip())
            above -= 1
        comments[target] = text or " ".join(block)
    return comments


def _dedent(lines: list[str]) -> str:
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "".join(line[indent:] if line.strip() else "\n" for line in lines)


def _assigned_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    if isinstance(node, ast.AnnAssign | ast.Assign):
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            return target.attr
    return None


def _cell(value: Any) -> str:
    text = "null" if value is None else repr(value) if not isinstance(value, str) else value
    return f"`{text}`".replace("|", "\\|")


def _table(rows: Iterator[tuple[str, Any, str]], header: str = "| key | default | what it does |") -> list[str]:
    out = [header, "|---|---|---|"]
    out += [f"| `{key}` | {_cell(default)} | {doc.replace('|', chr(92) + '|')} |" for key, default, doc in rows]
    return out


def configuration_page() -> str:
    """Every section and key of an experiment file, with its default and what it does."""
    from vgf_ray.core.hparams import VGFHyperParams
    from vgf_ray.data.spec import DatasetSpec
    from vgf_ray.experiment.schema import DEFAULTS, SECTION_HELP
    from vgf_ray.experiment.types import SECTION_TYPES, TOP_TYPES
    from vgf_ray.rllib.algorithm import EXTRA_KEYS, HPARAM_KEYS, VGFConfig

    out = ["# Configuration reference", "",
           "An experiment file is YAML with the sections below; `--set section.key=value` overrides any entry "
           "(the value is parsed as YAML). Unknown sections or keys and values of the wrong type fail before "
           "anything starts, naming the key. This page is generated from the code.", "",
           "## Sections", "", "| section | what it holds |", "|---|---|"]
    out += [f"| `{name}` | {SECTION_HELP[name]} |" for name in sorted(SECTION_HELP)]
    out += ["", "## Top-level keys", "", "| key | default | allowed |", "|---|---|---|"]
    out += [f"| `{key}` | {_cell(DEFAULTS.get(key))} | {' or '.join(map(_cell, kinds))} |"
            for key, kinds in TOP_TYPES.items()]
    for section, keys in SECTION_TYPES.items():
        defaults = DEFAULTS.get(section, {})
        out += ["", f"## `{section}`", "", SECTION_HELP[section], "", "| key | default | allowed |", "|---|---|---|"]
        out += [f"| `{key}` | {_cell(defaults.get(key))} | {' or '.join(map(_cell, kinds))} |"
                for key, kinds in keys.items()]
    spec, spec_docs = DatasetSpec(), source_comments(DatasetSpec)
    out += ["", "## `dataset`", "", SECTION_HELP["dataset"], ""]
    out += _table((name, getattr(spec, name), spec_docs.get(name, "")) for name in spec.to_dict())
    hp, hp_docs = VGFHyperParams(), source_comments(VGFHyperParams)
    config, config_docs = VGFConfig(), source_comments(VGFConfig.__init__)
    out += ["", "## `training`", "", SECTION_HELP["training"], "", "### VGF's update and acting", ""]
    out += _table((key, getattr(hp, key), hp_docs.get(key, "")) for key in HPARAM_KEYS)
    out += ["", "### Phases, data and evaluation", ""]
    out += _table((key, getattr(config, key), config_docs.get(key, "")) for key in EXTRA_KEYS)
    return "\n".join(out) + "\n"


def cli_page() -> str:
    """``vgf-ray --help`` and every subcommand's help, as argparse prints them."""
    from vgf_ray.cli import build_parser

    parser = build_parser()
    out = ["# CLI reference", "", "Generated from `vgf-ray`'s argument parsers.", "", "```text",
           parser.format_help().rstrip(), "```"]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        out += ["", f"## `vgf-ray {name}`", "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(out) + "\n"
