"""The metric selectors a PromQL expression names: enough to check dashboards and alert rules
against the exporter's declared metrics (not a PromQL parser)."""

from __future__ import annotations

import re

# PromQL words that look like metric names when not followed by `(`.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)(?![\w:])\s*(\{[^}]*\})?(?!\s*\()")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_DURATION = re.compile(r"\[[^\]]*\]")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched on) for every vector selector in ``expr``."""
    found: list[tuple[str, set[str]]] = []
    # Label matchers keep their quoted values; blank the strings only outside braces.
    text = _DURATION.sub("", _GROUPING.sub("", expr))
    for match in _SELECTOR.finditer(_blank_strings_outside_braces(text)):
        name, braces = match.group(1), match.group(2) or ""
        if name in _KEYWORDS or name.isdigit():
            continue
        found.append((name, set(_MATCHER.findall(_STRING.sub('""', braces)))))
    return found


def _blank_strings_outside_braces(text: str) -> str:
    out, depth, i = [], 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch in "\"'" and depth == 0:
            end = _STRING.match(text, i)
            if end:
                out.append('""')
                i = end.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out)
