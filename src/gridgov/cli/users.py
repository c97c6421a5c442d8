"""`gridgov users`: add accounts."""

from __future__ import annotations

from typing import Annotated

import typer

from gridgov.accounts.rules import ROLE_LABELS, Role
from gridgov.cli.common import console, fail, unit_of_work
from gridgov.core import clock
from gridgov.core.errors import DomainError

app = typer.Typer(no_args_is_help=True)


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="用户名 (字母、数字、_ . -)")],
    region: Annotated[str, typer.Option(help="所属区域或网格代码 (12 或 15 位)")],
    role: Annotated[
        list[str], typer.Option(help="角色, 可多次给出: " + ", ".join(r.value for r in Role))
    ],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="密码")
    ],
    name: Annotated[str, typer.Option(help="显示姓名")] = "",
    unit: Annotated[
        str, typer.Option(help="乡镇平台 (ZZ/SC/ZF/BM) 或部门代码 (见事件目录); 空 = 指挥中心")
    ] = "",
) -> None:
    """新增账号: 坐落在区域树的一个节点, 只能看到其下级范围。"""
    from gridgov.accounts.service import create_user
    from gridgov.cli.common import settings
    from gridgov.events.catalog import CatalogError, cached_catalog, unit_codes

    try:
        units = unit_codes(cached_catalog(settings().catalog_file))
    except CatalogError as exc:
        fail(str(exc))

    with unit_of_work() as session:
        try:
            user = create_user(
                session,
                username=username,
                password=password,
                region_code=region,
                roles=role,
                display_name=name,
                unit=unit,
                units=units,
                now=clock.now(),
            )
        except DomainError as exc:
            fail(exc.msg)
        labels = "、".join(ROLE_LABELS.get(r, r) for r in user.roles)
        where = f"{user.region_code}/{user.unit}" if user.unit else user.region_code
        console.print(f"[green]已创建账号[/] {user.username} ({labels}) @ {where}")
