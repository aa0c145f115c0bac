"""Each setting's one-line description, read from the comment beside (or above) its default in the source, so a
key's description lives next to its default and the experiment model, the JSON Schema and the docs share it."""

from __future__ import annotations

import ast
import functools
import inspect
from typing import Any


@functools.cache
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
