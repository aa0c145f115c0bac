"""The configuration and CLI reference pages, generated from the code at every docs build so they cannot drift:
the experiment file's JSON Schema (``vgf_ray.experiment.model``: each key's type, default and description) and the
``vgf-ray`` argument parsers."""

from __future__ import annotations

import argparse
import json
from typing import Any

INTRO = ("An experiment file is YAML with the sections below; `--set section.key=value` overrides any entry (the "
         "value is parsed as YAML). Unknown sections or keys and values of the wrong type fail before anything "
         "starts, naming the file and the key. `vgf-ray schema > experiment.schema.json` writes the JSON Schema "
         "these tables come from, for an editor (e.g. a `# yaml-language-server: $schema=experiment.schema.json` "
         "line at the top of the file). This page is generated from the code.")


def type_text(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A JSON Schema property's type in words: ``integer >= 1 or null``, ``'min' or 'mean'``."""
    if "$ref" in prop:
        return defs[prop["$ref"].rsplit("/", 1)[1]].get("title", "mapping")
    if "anyOf" in prop or "oneOf" in prop:
        return " or ".join(type_text(p, defs) for p in prop.get("anyOf", prop.get("oneOf")))
    if "const" in prop:
        return repr(prop["const"])
    if "enum" in prop:
        return " or ".join(map(repr, prop["enum"]))
    kind = {"array": "list", "object": "mapping", "null": "null", "boolean": "true/false"}.get(prop.get("type"),
                                                                                            prop.get("type", "any"))
    if kind == "list" and "items" in prop:
        kind = f"list of {type_text(prop['items'], defs)}"
    bounds = [f">= {prop['minimum']}" if "minimum" in prop else "", f"> {prop['exclusiveMinimum']}"
              if "exclusiveMinimum" in prop else "", f"<= {prop['maximum']}" if "maximum" in prop else ""]
    return " ".join([kind, *filter(None, bounds)])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def section_table(model: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    out = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for key, prop in model.get("properties", {}).items():
        default = json.dumps(prop["default"]) if "default" in prop else "required"
        out.append(f"| `{key}` | {_cell(type_text(prop, defs))} | `{_cell(default)}` | "
                   f"{_cell(prop.get('description', ''))} |")
    return out


def configuration_page() -> str:
    """Every section and key of an experiment file, with its type, default and what it does."""
    from vgf_ray.experiment.model import json_schema

    schema = json_schema()
    defs, top = schema["$defs"], schema["properties"]
    sections = {key: prop for key, prop in top.items() if "$ref" in prop or "anyOf" in prop and key == "sweep"}
    out = ["# Configuration reference", "", INTRO, "", "## Top-level keys", ""]
    out += section_table({"properties": {k: v for k, v in top.items() if k not in sections}}, defs)
    for key, prop in sections.items():
        ref = prop["$ref"] if "$ref" in prop else next(p["$ref"] for p in prop["anyOf"] if "$ref" in p)
        model = defs[ref.rsplit("/", 1)[1]]
        out += ["", f"## `{key}`", "", prop.get("description", model.get("description", "")), ""]
        out += section_table(model, defs)
    out += ["", "## `sweep.scheduler`", "", "One of these, by `type` (a bare word is `{type: word}`).", ""]
    for name in ("FifoScheduler", "AshaScheduler", "PbtScheduler", "Pb2Scheduler"):
        out += ["", f"### {name.removesuffix('Scheduler').upper()}", "", defs[name]["description"], ""]
        out += section_table(defs[name], defs)
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
