"""Declarative department mappings: which files a source sends, column → field, types, code tables.

One TOML file per department (`ingest/sources/<CODE>.toml`, or a folder set in the settings) lists
its datasets; `_codes.toml` holds the shared code tables. A dataset has a *kind* (person, org, room,
tenancy, tag, address, check) whose fields and their types are fixed here, so a mapping can only
name fields the rest of the pipeline understands. Mistakes in a mapping file are reported with
the file, the dataset and the column at fault.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

# Field types: how a value is standardised and checked (see ingest.standardise).
TEXT, NAME, CITIZEN_ID, CREDIT_CODE, PHONE, DATE, ADDRESS, NUMBER, CODE = (
    "text",
    "name",
    "citizen_id",
    "credit_code",
    "phone",
    "date",
    "address",
    "number",
    "code",
)

_COMMON = {"record_no": TEXT, "as_of": DATE}
KINDS: dict[str, dict[str, str]] = {
    "person": {
        **_COMMON,
        "citizen_id": CITIZEN_ID,
        "name": NAME,
        "sex": CODE,
        "birth_date": DATE,
        "ethnicity": CODE,
        "phone": PHONE,
        "registered_address": ADDRESS,
        "actual_address": ADDRESS,
        "household_no": TEXT,
        "relation_to_head": TEXT,
        "employer_credit_code": CREDIT_CODE,
        "employer_name": TEXT,
        "school_name": TEXT,
        "school_code": TEXT,
        "guardian_phone": PHONE,
        "left_behind": CODE,
    },
    "org": {
        **_COMMON,
        "credit_code": CREDIT_CODE,
        "name": TEXT,
        "legal_rep_name": NAME,
        "legal_rep_id": CITIZEN_ID,
        "address": ADDRESS,
        "phone": PHONE,
        "industry": TEXT,
        "status": CODE,
        "founded_on": DATE,
        "hazardous": CODE,
        "safety_contact": NAME,
    },
    "room": {
        **_COMMON,
        "house_no": TEXT,
        "address": ADDRESS,
        "use": CODE,
        "area": NUMBER,
        "owner_id": CITIZEN_ID,
        "owner_name": NAME,
        "cert_no": TEXT,
    },
    "tenancy": {
        **_COMMON,
        "house_no": TEXT,
        "address": ADDRESS,
        "tenant_id": CITIZEN_ID,
        "tenant_name": NAME,
        "tenant_phone": PHONE,
        "start_date": DATE,
        "end_date": DATE,
    },
    "tag": {
        **_COMMON,
        "citizen_id": CITIZEN_ID,
        "name": NAME,
        "tag_class": CODE,
        "subtype": CODE,
        "risk_level": CODE,
        "address": ADDRESS,
        "phone": PHONE,
        "valid_from": DATE,
        "valid_to": DATE,
    },
    "address": {
        **_COMMON,
        "address_code": TEXT,
        "address": ADDRESS,
        "village_code": TEXT,
        "road": TEXT,
        "door_no": TEXT,
        "compound": TEXT,
        "building": TEXT,
        "lon": NUMBER,
        "lat": NUMBER,
    },
    "check": {
        **_COMMON,
        "grid_code": TEXT,
        "citizen_id": CITIZEN_ID,
        "name": NAME,
        "actual_address": ADDRESS,
        "phone": PHONE,
        "residence_status": CODE,
        "use": CODE,
        "checker": TEXT,
    },
}
TAG_CLASSES = ("backbone", "service", "control")
SOURCE_CODE_RE = re.compile(r"^[A-Z]{2,8}$")
DATASET_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file, dataset and column."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # the column's header in the department's file
    field: str
    type: str
    required: bool = False
    codes: str | None = None  # code table name for CODE fields
    formats: tuple[str, ...] = ()  # strptime formats for DATE fields


@dataclass(frozen=True, slots=True)
class Dataset:
    source: str
    name: str
    title: str
    kind: str
    files: tuple[str, ...]  # glob patterns on the file name
    key: str  # the column holding the department's own record id
    columns: tuple[Column, ...]
    constants: Mapping[str, str] = field(default_factory=dict)
    sensitive: bool = False  # PIPL art. 28 (health, criminal record): tags are masked harder

    @property
    def qualified(self) -> str:
        return f"{self.source}.{self.name}"

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def matches(self, file_name: str) -> bool:
        stem = file_name.lower()
        return any(
            fnmatch.fnmatch(stem, p.lower() + ("" if "." in p else ".*")) for p in self.files
        )


@dataclass(frozen=True, slots=True)
class Source:
    code: str
    name: str
    data: str
    datasets: tuple[Dataset, ...]


@dataclass(frozen=True, slots=True)
class Mappings:
    sources: Mapping[str, Source]
    codes: Mapping[str, Mapping[str, str]]

    def source(self, code: str) -> Source:
        found = self.sources.get(code.upper())
        if found is None:
            known = ", ".join(f"{s.code} {s.name}" for s in self.sources.values())
            raise MappingError(f"未知的数据来源部门 {code!r}; 可选: {known}")
        return found

    def files_in(self, folder: Path) -> dict[str, list[Path]]:
        """The files of a folder by the source whose dataset patterns they match (others left out)."""
        out: dict[str, list[Path]] = {}
        for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            for src in self.sources.values():
                if any(d.matches(f.name) for d in src.datasets):
                    out.setdefault(src.code, []).append(f)
                    break
        return out

    def dataset_for(self, source: str, file_name: str) -> Dataset:
        src = self.source(source)
        hits = [d for d in src.datasets if d.matches(file_name)]
        if not hits:
            wanted = "; ".join(f"{d.title}: {', '.join(d.files)}" for d in src.datasets)
            raise MappingError(
                f"文件 {file_name} 不属于 {src.code} {src.name} 的任何数据集 (文件名应为 {wanted})"
            )
        if len(hits) > 1:
            names = ", ".join(d.name for d in hits)
            raise MappingError(f"文件 {file_name} 同时匹配数据集 {names}; 请检查映射文件的 files")
        return hits[0]


def _fail(where: str, message: str) -> MappingError:
    return MappingError(f"{where}: {message}")


def _column(where: str, name: str, spec: Any, kind: str, codes: Mapping[str, Any]) -> Column:
    if not isinstance(spec, dict):
        raise _fail(where, f'列 {name!r} 须为表, 如 {{ field = "name" }}')
    unknown = set(spec) - {"field", "required", "codes", "formats"}
    if unknown:
        raise _fail(where, f"列 {name!r} 有未知的键 {sorted(unknown)}")
    fld = spec.get("field")
    fields = KINDS[kind]
    if fld not in fields:
        raise _fail(
            where, f"列 {name!r} 的 field {fld!r} 不是 {kind} 的字段; 可选: {sorted(fields)}"
        )
    typ = fields[fld]
    table = spec.get("codes")
    if typ == CODE and table is None:
        raise _fail(where, f"列 {name!r} ({fld}) 是代码字段, 须指定 codes (代码表)")
    if table is not None and table not in codes:
        raise _fail(where, f"列 {name!r} 的代码表 {table!r} 不存在; 可选: {sorted(codes)}")
    formats = spec.get("formats", [])
    if typ == DATE and not formats:
        raise _fail(where, f'列 {name!r} ({fld}) 是日期字段, 须列出 formats, 如 ["%Y-%m-%d"]')
    if not isinstance(formats, list) or not all(isinstance(f, str) and "%" in f for f in formats):
        raise _fail(where, f"列 {name!r} 的 formats 须为 strptime 格式列表")
    return Column(
        name=name,
        field=fld,
        type=typ,
        required=bool(spec.get("required", False)),
        codes=table,
        formats=tuple(formats),
    )


def _dataset(where: str, source: str, spec: Any, codes: Mapping[str, Any]) -> Dataset:
    if not isinstance(spec, dict):
        raise _fail(where, "dataset 须为表")
    name = spec.get("name", "")
    if not isinstance(name, str) or not DATASET_RE.match(name):
        raise _fail(where, f"数据集 name {name!r} 须为小写字母、数字和下划线")
    where = f"{where} 数据集 {name}"
    kind = spec.get("kind")
    if kind not in KINDS:
        raise _fail(where, f"kind {kind!r} 无效; 可选: {', '.join(KINDS)}")
    files = spec.get("files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise _fail(where, 'files 须为文件名模式列表, 如 ["ga_hukou*"]')
    raw_columns = spec.get("columns")
    if not isinstance(raw_columns, dict) or not raw_columns:
        raise _fail(where, "columns 不能为空")
    columns = tuple(_column(where, n, s, kind, codes) for n, s in raw_columns.items())
    seen: dict[str, str] = {}
    for c in columns:
        if c.field in seen:
            raise _fail(where, f"列 {seen[c.field]!r} 和 {c.name!r} 都映射到字段 {c.field}")
        seen[c.field] = c.name
    key = spec.get("key")
    if key not in raw_columns:
        raise _fail(where, f"key {key!r} 须是 columns 中的一列 (部门自己的记录编号)")
    constants = spec.get("constants", {})
    if not isinstance(constants, dict):
        raise _fail(where, "constants 须为表")
    for fld, value in constants.items():
        if fld not in KINDS[kind]:
            raise _fail(where, f"constants 的字段 {fld!r} 不是 {kind} 的字段")
        if fld in seen:
            raise _fail(where, f"字段 {fld} 既是常量又有列 {seen[fld]!r}")
        if fld == "tag_class" and value not in TAG_CLASSES:
            raise _fail(where, f"tag_class {value!r} 无效; 可选: {', '.join(TAG_CLASSES)}")
    if kind == "tag" and "tag_class" not in constants:
        raise _fail(where, "tag 数据集须在 constants 中指定 tag_class")
    return Dataset(
        source=source,
        name=name,
        title=str(spec.get("title", name)),
        kind=kind,
        files=tuple(files),
        key=str(key),
        columns=columns,
        constants={k: str(v) for k, v in constants.items()},
        sensitive=bool(spec.get("sensitive", False)),
    )


def parse_source(path_name: str, doc: Mapping[str, Any], codes: Mapping[str, Any]) -> Source:
    code = doc.get("code", "")
    if not isinstance(code, str) or not SOURCE_CODE_RE.match(code):
        raise _fail(path_name, f"code {code!r} 须为 2–8 个大写字母")
    datasets = doc.get("dataset")
    if not isinstance(datasets, list) or not datasets:
        raise _fail(path_name, "至少需要一个 [[dataset]]")
    parsed = tuple(_dataset(path_name, code, d, codes) for d in datasets)
    names = [d.name for d in parsed]
    if len(set(names)) != len(names):
        raise _fail(path_name, f"数据集名称重复: {names}")
    return Source(
        code=code, name=str(doc.get("name", code)), data=str(doc.get("data", "")), datasets=parsed
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path.name}: 不是有效的 TOML: {exc}") from None


def load_mappings(folder: Path | None = None) -> Mappings:
    """All department mappings in a folder (default: the shipped ones)."""
    if folder is None:
        with resources.as_file(resources.files("gridgov.ingest") / "sources") as shipped:
            return load_mappings(Path(shipped))
    codes_file = folder / "_codes.toml"
    codes_doc = _read(codes_file) if codes_file.exists() else {}
    codes: dict[str, dict[str, str]] = {}
    for table, values in codes_doc.items():
        if not isinstance(values, dict):
            raise MappingError(f"_codes.toml: 代码表 {table} 须为表")
        codes[table] = {str(k): str(v) for k, v in values.items()}
    sources: dict[str, Source] = {}
    for path in sorted(folder.glob("*.toml")):
        if path.name.startswith("_"):
            continue
        src = parse_source(path.name, _read(path), codes)
        if src.code in sources:
            raise MappingError(f"{path.name}: 部门代码 {src.code} 重复")
        sources[src.code] = src
    if not sources:
        raise MappingError(f"{folder}: 没有部门映射文件 (*.toml)")
    return Mappings(sources=sources, codes=codes)


@cache
def shipped_mappings() -> Mappings:
    return load_mappings()
