"""The event pages over HTTP: worklists with notifications, the event page and its action forms."""

from __future__ import annotations

from tests.integration.test_events import report

from gridgov.demo.build import DEMO_PASSWORD
from gridgov.events import service


def _login(client, username: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/login", data={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code in (200, 303)


def test_worklist_page_shows_new_event_and_notification(client, session) -> None:  # type: ignore[no-untyped-def]
    ctx = service.context_from_settings(client.app.state.settings)
    ev = report(session, ctx, "grid_worker", "ZF03", description="垃圾堆放")
    _login(client, "village_staff")
    page = client.get("/events")
    assert page.status_code == 200
    assert f'href="/events/{ev.tracking_no}"' in page.text
    assert 'id="notifications"' in page.text and "新事件待受理" in page.text
    detail = client.get(f"/events/{ev.tracking_no}")
    assert 'data-action="accept"' in detail.text and 'data-action="refuse"' in detail.text
    r = client.post(
        f"/events/{ev.tracking_no}/act",
        data={"action": "accept", "version": str(ev.version)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("done=accept")
    after = client.get(r.headers["location"])
    assert "已受理" in after.text and 'data-action="dispatch"' in after.text
    # An escalation without a reason comes back as a message on the page, nothing changes.
    session.expire(ev)
    r = client.post(
        f"/events/{ev.tracking_no}/act",
        data={"action": "escalate", "version": str(ev.version)},
        follow_redirects=True,
    )
    assert "须填写理由" in r.text and 'data-action="dispatch"' in r.text


def test_grid_worker_sees_no_action_on_a_village_event(client, session) -> None:  # type: ignore[no-untyped-def]
    ctx = service.context_from_settings(client.app.state.settings)
    ev = report(session, ctx, "grid_worker", "ZF03")
    _login(client, "grid_worker")
    detail = client.get(f"/events/{ev.tracking_no}")
    assert detail.status_code == 200 and 'id="no-actions"' in detail.text
    r = client.post(
        f"/events/{ev.tracking_no}/act", data={"action": "accept", "version": str(ev.version)}
    )
    assert "只有当前承办单位" in r.text


def test_public_tracking_page(client, session) -> None:  # type: ignore[no-untyped-def]
    ctx = service.context_from_settings(client.app.state.settings)
    grid_ev = report(session, ctx, "grid_worker", "ZF03")
    # Grid workers' reports are internal: not followable by tracking number.
    assert client.get("/track", params={"no": grid_ev.tracking_no}).status_code == 404
    r = client.get("/track", params={"no": "NOSUCHNO00"})
    assert r.status_code == 404 and "没有查询编号" in r.text
