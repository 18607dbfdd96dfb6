"""Plan-time arbitration of SafetyAmp's unique user values (email, mobile_phone).

A value held by another SafetyAmp user may only be sent when that user gives it up in the same
plan, and then only after that user's write: claims get an order (phase). A value held by a user
that keeps it is blocked (the mobile phone is dropped, an email rejects the record). Cycles (two
users swapping numbers) cannot be ordered without a temporary value, so they are blocked too and
converge on later runs as values free up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .models import RecordId

KINDS = ("email", "mobile_phone")
REJECTING_KIND = "email"  # a blocked email rejects the whole record; a blocked phone is only dropped


@dataclass
class Claim:
    key: str
    user_id: RecordId | None  # the SafetyAmp user being updated, None for a create
    sends: dict[str, str] = field(default_factory=dict)  # kind -> normalized new value
    releases: dict[str, str] = field(default_factory=dict)  # kind -> normalized current value given up


@dataclass
class Verdict:
    blocked: dict[str, set[str]]  # claim key -> kinds that must not be sent
    phase: dict[str, int]  # claim key -> order (0 first)


def arbitrate(claims: Iterable[Claim], holders_of: Callable[[str, str], Iterable[RecordId]]) -> Verdict:
    """`holders_of(kind, value)` lists the ids of SafetyAmp users currently holding the value."""
    claims = [c for c in claims if c.sends or c.releases]
    by_user = {c.user_id: c for c in claims if c.user_id is not None}
    blocked: dict[str, set[str]] = {c.key: set() for c in claims}
    deps: dict[str, set[str]] = {}

    def rejected(claim: Claim) -> bool:
        return REJECTING_KIND in blocked[claim.key]

    def releases(claim: Claim, kind: str, value: str) -> bool:
        if rejected(claim) or claim.releases.get(kind) != value:
            return False
        return kind not in claim.sends or kind not in blocked[claim.key]

    for _ in range(len(claims) + 2):
        deps = {c.key: set() for c in claims}
        changed = False
        for claim in claims:
            if rejected(claim):
                continue
            for kind, value in claim.sends.items():
                if kind in blocked[claim.key]:
                    continue
                for holder in holders_of(kind, value):
                    if holder == claim.user_id:
                        continue
                    other = by_user.get(holder)
                    if other is not None and releases(other, kind, value):
                        deps[claim.key].add(other.key)
                    else:
                        blocked[claim.key].add(kind)
                        changed = True
                        break
        for key in _cycle_members(deps):
            if not blocked[key] >= set(KINDS):
                blocked[key].update(k for k in KINDS if k in next(c for c in claims if c.key == key).sends)
                changed = True
        if not changed:
            break
    return Verdict(blocked={k: v for k, v in blocked.items() if v}, phase=_phases(deps))


def _cycle_members(deps: dict[str, set[str]]) -> set[str]:
    state: dict[str, int] = {}
    members: set[str] = set()
    for start in deps:
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(deps.get(start, ())))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            if state.get(child) == 1:
                members.update(path[path.index(child):])
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(deps.get(child, ()))))
    return members


def _phases(deps: dict[str, set[str]]) -> dict[str, int]:
    phase: dict[str, int] = {}

    def depth(key: str, guard: int = 0) -> int:
        if key in phase:
            return phase[key]
        if guard > len(deps):
            return 0
        value = 1 + max((depth(d, guard + 1) for d in deps.get(key, ())), default=-1)
        phase[key] = value
        return value

    for key in deps:
        depth(key)
    return phase
