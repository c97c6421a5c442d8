"""Benchmark the field app's sync: queued items from many devices, each applied exactly once.

For each database (a temporary SQLite file; a fresh PostgreSQL database `gridgov_bench_<random>`,
dropped at the end):

  1. setup: the demo city and one grid worker per grid for --devices grids (the events
     benchmark's `setup`), plus a person and 10 buildings in each of those grids;
  2. the real app under uvicorn in this process (a thread) on a free loopback port; --devices
     simulated devices (threads, one httpx client and one field session each) each upload a
     photo, then send their queue: --items in all, spread evenly, in `POST /api/field/sync`
     batches of --batch items, all devices at once. A device's queue is a patrol (start, track
     batches of 5 points, stop), reports with the photo, and visits to the grid's person;
  3. replay: every device sends its whole queue again (as after answers lost on the way back).
     Every item must come back `replayed` with its first result, and nothing may be created.

Prints items/s for the first pass and the replay, errors (HTTP failures and refused items) and
duplicates (rows beyond those expected: events, visits, track points, patrols; must be 0).

    python benchmarks/field.py                       # 1,000 items from 50 devices, SQLite
    python benchmarks/field.py --db both             # and PostgreSQL
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchdb import make_database
from events import Cast, _free_port, setup

from gridgov.demo.build import DEMO_PASSWORD as PASSWORD


@dataclass
class Device:
    cast: Cast
    person_id: int
    items: list[dict[str, Any]] = field(default_factory=list)
    token: str = ""
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def add_registry(url: str, cast: list[Cast]) -> dict[str, int]:
    """A person and 10 buildings in each grid of the cast; grid → person id."""
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.registry.models import Building, Person

    engine = make_engine(url)
    out: dict[str, int] = {}
    now = clock.now()
    with session_scope(make_sessionmaker(engine)) as session:
        for c in cast:
            lon, lat = c.points[0]
            for i in range(10):
                session.add(
                    Building(
                        key=f"bench|{c.grid}|{i}",
                        village_code=c.grid[:12],
                        grid_code=c.grid,
                        name=f"楼{i}",
                        lon=lon,
                        lat=lat + i * 3e-4,
                        updated_at=now,
                    )
                )
            p = Person(name="走访对象", grid_code=c.grid, provenance={}, updated_at=now)
            session.add(p)
            session.flush()
            out[c.grid] = p.id
    engine.dispose()
    return out


def queue_for(device: Device, n: int, now: datetime) -> None:
    """n queued items: a patrol (start, tracks, stop), reports, visits, in the order made."""
    c = device.cast
    patrol = f"patrol-{uuid.uuid4().hex[:12]}"
    start = now - timedelta(hours=1)
    tracks = max(1, n * 4 // 10)
    reports = max(1, (n - tracks - 2) * 6 // 10)
    visits = n - tracks - 2 - reports
    items: list[tuple[str, dict[str, Any]]] = [
        ("patrol_start", {"patrol": patrol, "at": start.isoformat()})
    ]
    lon, lat = c.points[0]
    for t in range(tracks):
        pts = [
            {
                "at": (start + timedelta(seconds=60 * t + 10 * k)).isoformat(),
                "lon": lon,
                "lat": lat + (5 * t + k) * 1e-5,
                "accuracy": 6,
            }
            for k in range(5)
        ]
        items.append(("track", {"patrol": patrol, "points": pts}))
    for r in range(reports):
        x, y = c.points[r % len(c.points)]
        items.append(
            (
                "report",
                {
                    "category": "ZF03",
                    "description": f"基准测试上报 {r}",
                    "lon": x,
                    "lat": y,
                    "accuracy": 10,
                    "photos": ["PHOTO"],
                },
            )
        )
    for v in range(visits):
        items.append(
            (
                "visit",
                {
                    "target_kind": "person",
                    "target_id": device.person_id,
                    "visit_type": "routine",
                    "notes": f"基准测试走访 {v}",
                },
            )
        )
    items.append(
        ("patrol_stop", {"patrol": patrol, "at": (now - timedelta(minutes=1)).isoformat()})
    )
    device.items = [
        {"key": f"{kind}-{uuid.uuid4().hex}", "kind": kind, "payload": payload}
        for kind, payload in items
    ]


def photo_bytes(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (i * 37 % 256, i * 91 % 256, 120)).save(buf, "JPEG")
    return buf.getvalue()


@dataclass
class Pass:
    seconds: float = 0.0
    items: int = 0
    http_errors: int = 0
    refused: int = 0
    replayed: int = 0
    changed: int = 0  # replayed answers that differ from the first one
    lock: threading.Lock = field(default_factory=threading.Lock)


def prepare(base: str, d: Device, index: int) -> None:
    """Log the device in and upload its photo (not timed: the sync is what is measured)."""
    import httpx

    with httpx.Client(base_url=base, timeout=120) as client:
        if not d.token:
            login = {"username": d.cast.worker, "password": PASSWORD}
            r = client.post("/api/field/session", data=login)
            r.raise_for_status()
            d.token = r.json()["access_token"]
        headers = {"Authorization": f"Bearer {d.token}"}
        r = client.post(
            "/api/v1/photos",
            headers=headers,
            files={"file": ("p.jpg", photo_bytes(index), "image/jpeg")},
        )
        r.raise_for_status()
        sha = r.json()["sha256"]
        for it in d.items:
            if it["kind"] == "report":
                it["payload"]["photos"] = [sha]


def run_device(base: str, d: Device, batch: int, tally: Pass, *, first: bool) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {d.token}"}
    with httpx.Client(base_url=base, timeout=120) as client:
        for i in range(0, len(d.items), batch):
            part = d.items[i : i + batch]
            r = client.post("/api/field/sync", json={"items": part}, headers=headers)
            with tally.lock:
                tally.items += len(part)
                if r.status_code != 200:
                    tally.http_errors += len(part)
                    continue
            for res in r.json()["results"]:
                with tally.lock:
                    if res["status"] != "done":
                        tally.refused += 1
                    if res["replayed"]:
                        tally.replayed += 1
                        if d.results.get(res["key"]) != res["result"]:
                            tally.changed += 1
                if first:
                    d.results[res["key"]] = res["result"]


def run_pass(base: str, devices: list[Device], batch: int, *, first: bool) -> Pass:
    tally = Pass()
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(devices)) as pool:
        futures = [pool.submit(run_device, base, d, batch, tally, first=first) for d in devices]
        for f in futures:
            f.result()
    tally.seconds = time.perf_counter() - t
    return tally


def counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from gridgov.db.engine import make_engine
    from gridgov.events.models import Event
    from gridgov.field.models import FieldReceipt, Patrol, TrackPoint, Visit

    engine = make_engine(url)
    out = {}
    with engine.connect() as conn:
        for name, model in (
            ("events", Event),
            ("visits", Visit),
            ("track points", TrackPoint),
            ("patrols", Patrol),
            ("receipts", FieldReceipt),
        ):
            out[name] = int(conn.execute(select(func.count()).select_from(model)).scalar_one())
    engine.dispose()
    return out


def bench(kind: str, args: argparse.Namespace) -> None:
    import uvicorn

    from gridgov.app import create_app
    from gridgov.config import Settings
    from gridgov.core import clock

    tmp = Path(tempfile.mkdtemp(prefix="gridgov_field_bench_"))
    url, drop = make_database(kind, tmp)
    server = None
    try:
        print(f"\n== {kind} ==")
        cast = setup(url, args.devices, args.seed, tmp / "media")
        persons = add_registry(url, cast)
        devices = [Device(c, persons[c.grid]) for c in cast]
        per = [
            args.items // len(devices) + (1 if i < args.items % len(devices) else 0)
            for i in range(len(devices))
        ]
        now = clock.now()
        for d, n in zip(devices, per, strict=True):
            queue_for(d, n, now)
        expected = {
            "events": sum(1 for d in devices for it in d.items if it["kind"] == "report"),
            "visits": sum(1 for d in devices for it in d.items if it["kind"] == "visit"),
            "track points": sum(
                len(it["payload"]["points"])
                for d in devices
                for it in d.items
                if it["kind"] == "track"
            ),
            "patrols": len(devices),
            "receipts": sum(len(d.items) for d in devices),
        }
        port = _free_port()
        settings = Settings(database_url=url, media_dir=tmp / "media", sweep_seconds=0)
        app = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        total = sum(len(d.items) for d in devices)
        print(
            f"queues: {total:,} items from {len(devices)} devices ({expected['events']:,} "
            f"reports, {expected['visits']:,} visits, {expected['track points']:,} track "
            f"points in {total - expected['events'] - expected['visits'] - 2 * len(devices):,} "
            f"batches, {len(devices)} patrols); sync batches of {args.batch}"
        )
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda a: prepare(base, a[1], a[0]), enumerate(devices)))
        first = run_pass(base, devices, args.batch, first=True)
        print(
            f"sync:   {first.items:,} items in {first.seconds:.2f} s = "
            f"{first.items / first.seconds:,.0f} items/s; errors {first.http_errors} HTTP, "
            f"{first.refused} refused"
        )
        again = run_pass(base, devices, args.batch, first=False)
        print(
            f"replay: {again.items:,} items in {again.seconds:.2f} s = "
            f"{again.items / again.seconds:,.0f} items/s; replayed {again.replayed:,}, "
            f"answers changed {again.changed}, errors {again.http_errors} HTTP"
        )
        got = counts(url)
        dupes = {k: got[k] - v for k, v in expected.items()}
        print("rows:   " + ", ".join(f"{k} {got[k]:,} (expected {expected[k]:,})" for k in got))
        print(
            f"duplicates: {sum(max(0, v) for v in dupes.values())}"
            + ("" if all(v == 0 for v in dupes.values()) else f"  MISMATCH {dupes}")
        )
    finally:
        if server is not None:
            server.should_exit = True
            time.sleep(0.5)
        drop()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=("sqlite", "pg", "both"), default="sqlite")
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--items", type=int, default=1000, help="queued items over all devices")
    ap.add_argument("--batch", type=int, default=10, help="items per sync request")
    ap.add_argument("--seed", type=int, default=2023)
    args = ap.parse_args(argv)
    if args.items < 4 * args.devices:
        ap.error("--items must be at least 4 per device (a patrol start, track, stop, a report)")
    for kind in ("sqlite", "pg") if args.db == "both" else (args.db,):
        bench(kind, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
