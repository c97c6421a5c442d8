"""Who sees what of a person: masking of identifiers and sensitive key-person tags (pure).

ID numbers and phones are masked in every list and page by default. Roles that work with people
on the ground may ask for the full values of one record at a time, and each such view is written
to the access log (PIPL art. 51, 55). Control-class and health tags (PIPL art. 28) are shown only
to the roles that act on them; everyone else sees that a tag exists, not what it is.
"""

from __future__ import annotations

from collections.abc import Collection

from gridgov.accounts.rules import Role

# Roles that may unmask ID numbers and phones of records in their jurisdiction.
UNMASK_ROLES = frozenset(
    {
        Role.GRID_WORKER,
        Role.VILLAGE_STAFF,
        Role.TOWN_STAFF,
        Role.DISTRICT_STAFF,
        Role.CITY_STAFF,
    }
)
# Roles that may see what a sensitive tag is (community correction, severe mental illness …).
SENSITIVE_ROLES = frozenset(
    {Role.GRID_WORKER, Role.VILLAGE_STAFF, Role.TOWN_STAFF, Role.DISTRICT_STAFF}
)
MASKED_FIELDS = ("citizen_id", "phone")


# The departments' codes (ingest/sources/*.toml) as users know them.
SOURCE_NAMES = {
    "GA": "公安", "MZ": "民政", "WJ": "卫健", "ZJ": "住建", "SJ": "市场监管", "RS": "人社",
    "JY": "教育", "SF": "司法", "YJ": "应急", "ZR": "自然资源", "WG": "网格员核查",
}  # fmt: skip


def may_unmask(roles: Collection[str]) -> bool:
    return any(r in UNMASK_ROLES for r in roles)


def may_see_sensitive(roles: Collection[str]) -> bool:
    return any(r in SENSITIVE_ROLES for r in roles)


def mask_citizen_id(value: str | None) -> str:
    """110105********002X: region and the last four kept, the birth date hidden."""
    if not value:
        return ""
    if len(value) == 18:
        return value[:6] + "*" * 8 + value[-4:]
    if len(value) == 15:
        return value[:6] + "*" * 6 + value[-3:]
    keep = max(1, len(value) // 4)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def mask_phone(value: str | None) -> str:
    """138****0001 for mobiles; landlines keep the area code and the last two digits."""
    if not value:
        return ""
    digits = value.strip()
    if len(digits) == 11 and digits.isdigit():
        return digits[:3] + "****" + digits[-4:]
    if len(digits) <= 4:
        return "*" * len(digits)
    if "-" in digits:
        head = digits.split("-")[0]
    elif digits.startswith("0"):  # area codes: 010 and 02x have three digits, the rest four
        head = digits[:3] if digits[1] in "12" else digits[:4]
    else:
        head = digits[:3]
    return head + "*" * max(1, len(digits) - len(head) - 2) + digits[-2:]


def mask_value(field: str, value: str | None) -> str:
    if field == "citizen_id" or (field.endswith("_id") and field != "record_id"):
        return mask_citizen_id(value)
    if "phone" in field:
        return mask_phone(value)
    return value or ""
