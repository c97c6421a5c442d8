"""Survivorship rules (一数一源): choose each golden field's value from its candidates.

Pure: candidates in, a decision out (the value, the candidate it came from, and a conflict to
put to a grid worker when the rule says so). The table lives in `data/survivorship.toml` (or a
file named in the settings) so a city can change who owns which datum without code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

AUTHORITY, FIELD, LATEST = "authority", "field", "latest"
RULES = (AUTHORITY, FIELD, LATEST)
GRID_WORKER_SOURCE = "WG"
AUTHORITY_CONFLICT, FIELD_VS_DEPARTMENT = "authority_conflict", "field_vs_department"
ENTITIES = ("person", "organization", "room")


class SurvivorshipError(ValueError):
    """A survivorship file that cannot be used; the message names the entity and field."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One source's value for one field of one record."""

    value: Any
    source: str
    as_of: datetime | None
    record_id: int
    dataset: str = ""
    batch_id: int | None = None
    valid: bool = True  # False: failed its identifier check; kept as provenance, never chosen

    def provenance(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dataset": self.dataset,
            "record": self.record_id,
            "batch": self.batch_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
        }


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    ranks: tuple[tuple[str, ...], ...]  # sources by rank; a rank may hold equals

    def rank_of(self, source: str) -> int | None:
        for i, rank in enumerate(self.ranks):
            if source in rank:
                return i
        return None


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: str
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    value: Any
    chosen: Candidate | None
    conflict: Conflict | None = None


@dataclass(frozen=True, slots=True)
class Survivorship:
    rules: Mapping[str, Mapping[str, Rule]] = field(default_factory=dict)

    def rule(self, entity: str, field_name: str) -> Rule:
        found = self.rules.get(entity, {}).get(field_name)
        return found if found is not None else Rule(LATEST, ())


def _latest(cands: Sequence[Candidate], rule: Rule) -> Candidate:
    """The most recent candidate; equal dates go to the better-ranked source, then the newer row."""

    def key(c: Candidate) -> tuple[Any, ...]:
        rank = rule.rank_of(c.source)
        when = c.as_of.timestamp() if c.as_of else float("-inf")
        return (when, -(rank if rank is not None else len(rule.ranks)), c.record_id)

    return max(cands, key=key)


def decide(rule: Rule, candidates: Sequence[Candidate]) -> Decision:
    usable = [c for c in candidates if c.valid and c.value not in (None, "")]
    if not usable:
        return Decision(None, None)
    if rule.kind == AUTHORITY:
        for rank in rule.ranks:
            at_rank = [c for c in usable if c.source in rank]
            if not at_rank:
                continue
            # Each source speaks through its latest value; equals that disagree are a conflict.
            latest_by_source = {
                s: _latest([c for c in at_rank if c.source == s], rule)
                for s in dict.fromkeys(c.source for c in at_rank)
            }
            chosen = _latest(list(latest_by_source.values()), rule)
            values = {_norm(c.value) for c in latest_by_source.values()}
            conflict = (
                Conflict(AUTHORITY_CONFLICT, tuple(latest_by_source.values()))
                if len(values) > 1
                else None
            )
            return Decision(chosen.value, chosen, conflict)
        # No authoritative source holds a value: fall back to the most recent one.
        chosen = _latest(usable, rule)
        return Decision(chosen.value, chosen)
    if rule.kind == FIELD:
        checks = [c for c in usable if c.source == GRID_WORKER_SOURCE]
        if not checks:
            chosen = _latest(usable, rule)
            return Decision(chosen.value, chosen)
        check = _latest(checks, rule)
        newer = [
            c
            for c in usable
            if c.source != GRID_WORKER_SOURCE
            and c.as_of is not None
            and (check.as_of is None or c.as_of > check.as_of)
            and _norm(c.value) != _norm(check.value)
        ]
        conflict = None
        if newer:
            conflict = Conflict(FIELD_VS_DEPARTMENT, (check, _latest(newer, rule)))
        return Decision(check.value, check, conflict)
    chosen = _latest(usable, rule)
    return Decision(chosen.value, chosen)


def _norm(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def parse_survivorship(doc: Mapping[str, Any], where: str = "survivorship.toml") -> Survivorship:
    rules: dict[str, dict[str, Rule]] = {}
    for entity, fields in doc.items():
        if entity not in ENTITIES:
            raise SurvivorshipError(f"{where}: 未知的实体 [{entity}]; 可选: {', '.join(ENTITIES)}")
        if not isinstance(fields, dict):
            raise SurvivorshipError(f"{where}: [{entity}] 须为表")
        rules[entity] = {}
        for name, spec in fields.items():
            at = f"{where} [{entity}] {name}"
            if not isinstance(spec, dict) or spec.get("rule") not in RULES:
                raise SurvivorshipError(f"{at}: rule 须为 {' / '.join(RULES)} 之一")
            sources = spec.get("sources", [])
            if not isinstance(sources, list):
                raise SurvivorshipError(f"{at}: sources 须为部门代码列表")
            ranks: list[tuple[str, ...]] = []
            for item in sources:
                rank = tuple(item) if isinstance(item, list) else (item,)
                if not rank or not all(isinstance(s, str) and s.isupper() for s in rank):
                    raise SurvivorshipError(f"{at}: sources 中的 {item!r} 不是部门代码")
                ranks.append(rank)
            if spec["rule"] == AUTHORITY and not ranks:
                raise SurvivorshipError(f"{at}: authority 规则须列出权威部门 sources")
            rules[entity][name] = Rule(spec["rule"], tuple(ranks))
    return Survivorship(rules)


def load_survivorship(path: Path | None = None) -> Survivorship:
    if path is None:
        text = (resources.files("gridgov.registry") / "data" / "survivorship.toml").read_text(
            encoding="utf-8"
        )
        return parse_survivorship(tomllib.loads(text))
    try:
        return parse_survivorship(tomllib.loads(path.read_text(encoding="utf-8")), path.name)
    except tomllib.TOMLDecodeError as exc:
        raise SurvivorshipError(f"{path.name}: 不是有效的 TOML: {exc}") from None


@cache
def shipped_survivorship() -> Survivorship:
    return load_survivorship()
