"""Benchmark the event closed loop: service-layer lifecycles, timeline verification, HTTP reports.

For each database (a temporary SQLite file; a fresh PostgreSQL database `gridgov_bench_<random>`,
dropped at the end) it prints:

  1. setup: migrate, division tree, the generated demo city, demo accounts, and one grid worker and
     one village staff account for each of --grids grids spread evenly over the city (the demo
     event history's own account maker, `ensure_history_accounts`: bulk inserts, one hash);
  2. service layer: N events, each report → accept → dispatch → receive → feedback → verify →
     close through `service.report_event` / `service.act`, round-robin over those grids, each
     reported by its own grid worker at a random point inside the grid and handled by its village
     staff. --tx lifecycle (default) commits once per lifecycle; --tx action commits after every
     action in a new session, as the HTTP API does. Prints lifecycles/s, actions/s, time per step;
  3. `verify_chains` over every timeline entry: entries/s;
  4. HTTP: the real app under uvicorn (`gridgov.app:create_app` factory, --workers processes) on a
     free loopback port, and a load generator in another process (asyncio; a minimal keep-alive
     HTTP/1.1 client by default, --client httpx for httpx.AsyncClient):
     --clients concurrent clients, each logged in as one of the grid workers (its own bearer
     token) and posting reports in its own grid for --seconds after a warm-up. Prints requests/s,
     latency p50/p95/p99, errors by status and the CPU each side used: on a small machine the load
     generator competes with the server for the same cores.

    python benchmarks/events.py --quick                      # a smoke run, both databases
    python benchmarks/events.py                              # 100,000 events, 50 clients, 20 s
    python benchmarks/events.py --db pg --events 20000 --tx action --workers 2 --profile 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchdb import make_database

OFFICE = "08:30-12:00,13:30-17:30"
CATEGORY = "ZF03"  # 暴露垃圾: routed to the grid everywhere, so the village dispatches it there
STEPS = ("accept", "dispatch", "receive", "feedback", "verify", "close")
GRACE = 10.0  # seconds an HTTP request still open at the end of a phase may take to finish
WORKER_STEPS = frozenset(
    {"receive", "feedback"}
)  # the grid worker; the village staff does the rest


@dataclass
class Cast:
    """One grid of the benchmark: its grid worker, its village staff, points inside it."""

    grid: str
    worker: str
    village_staff: str
    points: list[tuple[float, float]]


# ------------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Ticker:
    """A Rich progress bar on a terminal, otherwise a line every 30 s (logs stay readable)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.t0 = self.last = time.perf_counter()
        self._progress: Any = None
        if sys.stdout.isatty():
            from rich.progress import Progress

            self._progress = Progress()
            self._progress.start()
            self._task = self._progress.add_task(label, total=total)

    def __call__(self, done: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done)
            return
        now = time.perf_counter()
        if now - self.last >= 30:
            self.last = now
            rate = done / (now - self.t0)
            print(f"    … {self.label}: {done:,}/{self.total:,}, {rate:,.0f}/s", flush=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_pids(root: int) -> list[int]:
    """`root` and its descendants (uvicorn's supervisor and its worker processes)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def _db_backends(engine: Any) -> list[int]:
    """Process ids of the PostgreSQL backends serving this database (none for SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    from sqlalchemy import text

    with engine.connect() as conn:
        sql = (
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return list(conn.scalars(text(sql)))


# ------------------------------------------------------------------------------- database


def setup(url: str, n_grids: int, seed: int, media: Path) -> list[Cast]:
    """Build the demo city and the benchmark's accounts; print the time of each step."""
    import numpy as np
    import shapely
    from sqlalchemy import select

    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.db.migrate import upgrade
    from gridgov.demo.build import create_demo_accounts, generate_geometry, store_generated
    from gridgov.demo.events import ensure_history_accounts
    from gridgov.events import service
    from gridgov.geo import service as geo
    from gridgov.geo.divisions import GRID, load_divisions
    from gridgov.geo.models import Region

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    times["migrate"] = time.perf_counter() - t0
    factory = make_sessionmaker(engine)
    t = time.perf_counter()
    divisions = load_divisions()
    with session_scope(factory) as session:
        geo.load_division_tree(session, divisions, now=clock.now())
    times["division tree"] = time.perf_counter() - t
    t = time.perf_counter()
    city = generate_geometry(divisions)
    times["generate city"] = time.perf_counter() - t
    t = time.perf_counter()
    with session_scope(factory) as session:
        store_generated(session, city, now=clock.now())
    times["store geometry"] = time.perf_counter() - t
    t = time.perf_counter()
    ctx = service.make_context(None, OFFICE, None, media, 10 * 2**20)
    with session_scope(factory) as session:
        create_demo_accounts(session, now=clock.now())
        codes = list(
            session.scalars(select(Region.code).where(Region.level == GRID).order_by(Region.code))
        )
        # Evenly spaced in code order: codes nest district › town › village, so the sample
        # covers every district in proportion to its grids.
        picked = [codes[int(i * len(codes) / n_grids)] for i in range(min(n_grids, len(codes)))]
        actors, created = ensure_history_accounts(
            session, catalog=ctx.catalog, grids=picked, seed=seed, now=clock.now()
        )
    times[f"accounts (+{created:,})"] = time.perf_counter() - t
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    cast: list[Cast] = []
    with factory() as session:
        geoms = geo.load_geometries(session, picked)
        for code in picked:
            geom = geoms[code]
            minx, miny, maxx, maxy = geom.bounds
            xs = rng.uniform(minx, maxx, 400)
            ys = rng.uniform(miny, maxy, 400)
            inside = shapely.contains_xy(geom, xs, ys)
            xs, ys = xs[inside][:32].round(6), ys[inside][:32].round(6)
            # Keep only points the locate index puts in this grid (edges, rounding).
            hits = geo.locate_many(session, xs, ys)
            pts = [(float(x), float(y)) for x, y, h in zip(xs, ys, hits, strict=True) if h == code]
            if not pts:
                p = geom.representative_point()
                pts = [(p.x, p.y)]
            cast.append(Cast(code, actors[code].username, actors[code[:12]].username, pts))
    times["points + locate index"] = time.perf_counter() - t
    engine.dispose()
    total = time.perf_counter() - t0
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
    districts = len({c.grid[:6] for c in cast})
    print(f"setup: {total:.1f} s ({parts})")
    print(
        f"  city: {len(codes):,} grids; benchmark cast: {len(cast)} grids in {districts} districts, "
        f"each with its grid worker (gw_<grid>) and village staff (vs_<village>), "
        f"{sum(len(c.points) for c in cast):,} report points inside them"
    )
    return cast


# -------------------------------------------------------------------------- service layer


def lifecycles(url: str, cast: list[Cast], n: int, tx: str, media: Path, profile: int) -> None:
    from sqlalchemy import func, select

    from gridgov.accounts.models import User
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker
    from gridgov.events import service
    from gridgov.events.models import Event, EventEntry, Notification
    from gridgov.events.service import ActInput, ReportInput

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    ctx = service.make_context(None, OFFICE, None, media, 10 * 2**20)
    names = {c.worker for c in cast} | {c.village_staff for c in cast}
    with factory() as s:
        users = {u.username: u for u in s.scalars(select(User).where(User.username.in_(names)))}
        s.expunge_all()
    inputs = {
        "accept": ActInput("accept"),
        "dispatch": ActInput("dispatch"),  # no target: the routed unit, the event's grid
        "receive": ActInput("receive"),
        "feedback": ActInput("feedback", comment="已清运"),
        "verify": ActInput("verify"),
        "close": ActInput("close", satisfaction="satisfied"),
    }
    spent = dict.fromkeys(("report", *STEPS, "commit"), 0.0)
    ticker = Ticker("lifecycles", n)
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    t0 = time.perf_counter()
    pc = time.perf_counter
    try:
        for i in range(n):
            c = cast[i % len(cast)]
            lon, lat = c.points[(i // len(cast)) % len(c.points)]
            now = clock.now()
            data = ReportInput(CATEGORY, f"基准测试 {i}: 路边垃圾堆放", lon=lon, lat=lat)
            s = factory()
            try:
                t = pc()
                worker = s.merge(users[c.worker], load=False)
                ev = service.report_event(
                    s, ctx=ctx, user=worker, data=data, channel="grid", now=now
                ).event
                ev_id = ev.id
                spent["report"] += pc() - t
                for step in STEPS:
                    if tx == "action":
                        t = pc()
                        s.commit()
                        s.close()
                        s = factory()
                        spent["commit"] += pc() - t
                    t = pc()
                    who = c.worker if step in WORKER_STEPS else c.village_staff
                    user = s.merge(users[who], load=False)
                    service.act(s, ctx=ctx, user=user, ref=ev_id, data=inputs[step], now=now)
                    spent[step] += pc() - t
                t = pc()
                s.commit()
                spent["commit"] += pc() - t
            finally:
                s.close()
            ticker(i + 1)
    finally:
        ticker.close()
    elapsed = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
    with factory() as s:
        events = s.scalar(select(func.count()).select_from(Event)) or 0
        closed = s.scalar(select(func.count()).where(Event.status == "closed")) or 0
        entries = s.scalar(select(func.count()).select_from(EventEntry)) or 0
        notes = s.scalar(select(func.count()).select_from(Notification)) or 0
    engine.dispose()
    how = (
        "one transaction per lifecycle"
        if tx == "lifecycle"
        else "one transaction per action (7 per lifecycle, a new session each)"
    )
    print(
        f"service layer: {n:,} lifecycles (report → accept → dispatch → receive → feedback → "
        f"verify → close; {how}; {len(cast)} grids round-robin) in {elapsed:.1f} s"
    )
    print(
        f"  {n / elapsed:,.1f} lifecycles/s, {7 * n / elapsed:,.0f} actions/s; "
        f"rows now: {events:,} events ({closed:,} closed), {entries:,} timeline entries, "
        f"{notes:,} notifications"
    )
    per = ", ".join(f"{k} {v / n * 1e3:.2f}" for k, v in spent.items())
    print(f"  ms per lifecycle by step: {per}")
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(profile)
        # gridgov's own functions by cumulative time: which use case step pays for what.
        stats.sort_stats("cumulative").print_stats(r"gridgov/", profile)
        print("  cProfile of the service-layer run (own time; then gridgov by cumulative time):")
        print("\n".join("    " + line for line in out.getvalue().splitlines() if line.strip()))


def verify(url: str) -> None:
    from gridgov.db.engine import make_engine, make_sessionmaker
    from gridgov.events.timeline import verify_chains

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        t0 = time.perf_counter()
        report = verify_chains(s)
        elapsed = time.perf_counter() - t0
    engine.dispose()
    status = "all chains intact" if report.ok else f"{len(report.problems)} PROBLEMS"
    print(
        f"verify_chains: {report.entries:,} entries of {report.events:,} events in "
        f"{elapsed:.2f} s: {report.entries / elapsed:,.0f} entries/s ({status})"
    )
    if not report.ok:
        for p in report.problems[:5]:
            print(f"    {p}")


# ------------------------------------------------------------------------------------ HTTP


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: one connection per client.

    It costs the load generator a small fraction of httpx's CPU per request, which matters when
    the load generator and the server share two cores.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post_json(self, path: str, body: dict[str, Any], token: str) -> int:
        if self._conn is None:
            self._conn = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._conn
        payload = json.dumps(body, ensure_ascii=False).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        try:
            writer.write(head.encode() + payload)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and b"close" in value.lower():
                    close = True
            await reader.readexactly(length)
        except BaseException:
            await self.aclose()
            raise
        if close:
            await self.aclose()
        return status

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None


def load_generator(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run in its own process: C clients, each posting reports in its own grid, back to back."""
    import httpx

    clients: int = cfg["clients"]
    jobs: list[dict[str, Any]] = cfg["jobs"]
    base = httpx.URL(cfg["base"])

    async def phase(shared: httpx.AsyncClient, seconds: float, record: bool) -> dict[str, Any]:
        latencies: list[float] = []
        status: dict[str, int] = {}
        stop = time.perf_counter() + seconds

        async def one(k: int) -> None:
            job = jobs[k % len(jobs)]
            token, points = job["token"], job["points"]
            headers = {"Authorization": f"Bearer {token}"}
            raw = RawClient(base.host, base.port or 80) if cfg["client"] == "raw" else None
            i = k
            while time.perf_counter() < stop:
                lon, lat = points[i % len(points)]
                text = f"压测上报 {k}-{i}"
                body = {"category": CATEGORY, "description": text, "lon": lon, "lat": lat}
                i += 1
                t = time.perf_counter()
                try:
                    if raw is not None:
                        coro = raw.post_json("/api/v1/events", body, token)
                        code = str(await asyncio.wait_for(coro, timeout=60))
                    else:
                        r = await shared.post("/api/v1/events", json=body, headers=headers)
                        code = str(r.status_code)
                except (httpx.HTTPError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                    code = type(exc).__name__
                if record:
                    latencies.append(time.perf_counter() - t)
                status[code] = status.get(code, 0) + 1
            if raw is not None:
                await raw.aclose()

        t0 = time.perf_counter()
        tasks = [asyncio.create_task(one(k)) for k in range(clients)]
        # A stuck server must not stall the benchmark: requests still open GRACE seconds after
        # the phase ends are cancelled and counted, not timed.
        _, pending = await asyncio.wait(tasks, timeout=seconds + GRACE)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - t0
        return {"latencies": latencies, "status": status, "wall": wall, "unfinished": len(pending)}

    async def run() -> dict[str, Any]:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as shared:
            warm = await phase(shared, cfg["warmup"], record=False)
            cpu0 = time.process_time()
            out = await phase(shared, cfg["seconds"], record=True)
            out["cpu"] = time.process_time() - cpu0
            out["warmup_status"] = warm["status"]
            out["warmup_unfinished"] = warm["unfinished"]
            return out

    return asyncio.run(run())


@contextlib.contextmanager
def server(url: str, workers: int, media: Path, log: Path) -> Iterator[tuple[str, int]]:
    """The real app under uvicorn in a subprocess; yields its base URL and process id."""
    import httpx

    port = _free_port()
    env = {**os.environ, "GRIDGOV_DATABASE_URL": url, "GRIDGOV_MEDIA_DIR": str(media)}
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "gridgov.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log", "--timeout-graceful-shutdown", "5",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.perf_counter() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_benchmark(
    url: str,
    cast: list[Cast],
    *,
    clients: int,
    seconds: float,
    warmup: float,
    workers: int,
    client: str,
    tmp: Path,
    spy: str = "",
) -> None:
    import httpx
    from sqlalchemy import func, select

    from gridgov.db.engine import make_engine, make_sessionmaker
    from gridgov.demo.build import DEMO_PASSWORD
    from gridgov.events.models import Event

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        before = s.scalar(select(func.count()).select_from(Event)) or 0
    with server(url, workers, tmp / "media", tmp / "server.log") as (base, pid):
        t = time.perf_counter()
        with httpx.Client(base_url=base, timeout=60) as c:

            def login(member: Cast) -> dict[str, Any]:
                form = {"username": member.worker, "password": DEMO_PASSWORD}
                r = c.post("/api/v1/auth/token", data=form)
                r.raise_for_status()
                return {"token": r.json()["access_token"], "points": member.points}

            # A few at a time: each login verifies an argon2 hash (~0.15 s of CPU).
            with ThreadPoolExecutor(4) as pool:
                jobs = list(pool.map(login, cast))
        login_s = time.perf_counter() - t
        cfg = {
            "base": base,
            "clients": clients,
            "seconds": seconds,
            "warmup": warmup,
            "jobs": jobs,
            "client": client,
        }
        pids = _tree_pids(pid)
        cpu0 = sum(_proc_cpu(p) for p in pids)
        db0 = {p: _proc_cpu(p) for p in _db_backends(engine)}
        spy_proc = None
        if spy:
            # Sample the server's workers over warm-up + run (py-spy, collapsed stacks).
            spy_cmd = [
                shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil",
                "--format", "raw", "--output", spy, "--duration", str(int(warmup + seconds)),
            ]  # fmt: skip
            spy_proc = subprocess.Popen(  # noqa: S603
                spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        out = subprocess.run(  # noqa: S603
            [sys.executable, __file__, "--_loadgen"],
            input=json.dumps(cfg),
            capture_output=True,
            text=True,
            check=False,
        )
        # Warm-up is inside the load generator's run: server CPU covers warm-up + measured phase.
        server_cpu = sum(_proc_cpu(p) for p in pids) - cpu0
        db_cpu = sum(_proc_cpu(p) - db0.get(p, 0.0) for p in _db_backends(engine))
        if spy_proc is not None:
            spy_proc.wait()
        if out.returncode != 0:
            raise SystemExit(f"load generator failed:\n{out.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.stdout)
    with make_sessionmaker(engine)() as s:
        after = s.scalar(select(func.count()).select_from(Event)) or 0
    engine.dispose()
    lat = sorted(result["latencies"])
    n, wall = len(lat), result["wall"]
    status: dict[str, int] = result["status"]
    ok = status.get("201", 0)
    errors = {k: v for k, v in status.items() if k != "201"}
    print(
        f"HTTP POST /api/v1/events: uvicorn --workers {workers}, {clients} concurrent clients as "
        f"{min(clients, len(jobs))} grid workers, each reporting in its own grid "
        f"({len(jobs)} logins took {login_s:.1f} s); load generator in its own process "
        f"({client} client); {warmup:g} s warm-up, then {seconds:g} s measured"
    )
    print(
        f"  {n:,} requests in {wall:.1f} s: {n / wall:,.1f} req/s ({ok / wall:,.1f} created/s); "
        f"latency p50 {_pct(lat, 0.50) * 1e3:.0f} ms, p95 {_pct(lat, 0.95) * 1e3:.0f} ms, "
        f"p99 {_pct(lat, 0.99) * 1e3:.0f} ms, max {(lat[-1] if lat else 0) * 1e3:.0f} ms"
    )
    warm_ok = result["warmup_status"].get("201", 0)
    print(
        f"  errors by status: {errors or 'none'} (warm-up: {result['warmup_status']}); "
        f"no answer {GRACE:g} s after the phase ended (cancelled): {result['unfinished']} "
        f"(warm-up: {result['warmup_unfinished']}); new events in the database: "
        f"{after - before:,} (201 answers: {ok:,} measured + {warm_ok:,} warm-up)"
    )
    cores, span = os.cpu_count() or 1, warmup + wall
    db_part = f", PostgreSQL backends {db_cpu:.1f} s ({db_cpu / span:.2f})" if db0 else ""
    print(
        f"  CPU used on this {cores}-core machine (seconds, and cores on average): over warm-up "
        f"+ run, server {server_cpu:.1f} s ({server_cpu / span:.2f}){db_part}; over the run, "
        f"load generator {result['cpu']:.1f} s ({result['cpu'] / wall:.2f}). The load generator "
        f"competes with the server for the same cores: the figures are lower bounds for the "
        f"server alone"
    )


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    ap.add_argument("--events", type=int, default=100_000, help="service-layer lifecycles")
    ap.add_argument(
        "--tx",
        choices=("lifecycle", "action"),
        default="lifecycle",
        help="commit once per lifecycle, or after every action (as the HTTP API does)",
    )
    ap.add_argument("--grids", type=int, default=50, help="grids (grid workers) to spread over")
    ap.add_argument("--clients", type=int, default=50, help="concurrent HTTP clients")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured HTTP load, seconds")
    ap.add_argument("--warmup", type=float, default=5.0, help="HTTP warm-up, seconds")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="uvicorn worker processes (default: 2 on PostgreSQL, 1 on SQLite, whose requests "
        "take turns on its single writer lock anyway)",
    )
    ap.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator's HTTP client: a minimal asyncio keep-alive client (light on CPU) "
        "or httpx.AsyncClient",
    )
    ap.add_argument("--seed", type=int, default=2023)
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-service", action="store_true")
    ap.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile the service layer, top N"
    )
    ap.add_argument(
        "--spy",
        default="",
        metavar="FILE",
        help="sample the HTTP server with py-spy (must be installed) into FILE (collapsed stacks)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 500 events, 5 s of HTTP")
    ap.add_argument("--_loadgen", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._loadgen:
        json.dump(load_generator(json.load(sys.stdin)), sys.stdout)
        return 0
    if args.quick:
        args.events, args.seconds, args.warmup = min(args.events, 500), 5.0, 3.0
    kinds = ["sqlite", "pg"] if args.db == "both" else [args.db]
    print(
        f"gridgov events benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{args.events:,} lifecycles, HTTP {args.clients} clients × {args.seconds:g} s"
    )
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="gridgov_bench_") as tmp_dir:
            tmp = Path(tmp_dir)
            url, cleanup = make_database(kind, tmp)
            try:
                shown = url if kind == "sqlite" else url.rsplit("/", 1)[1]
                print(f"\n== {'SQLite' if kind == 'sqlite' else 'PostgreSQL'} ({shown}) ==")
                cast = setup(url, args.grids, args.seed, tmp / "media")
                if not args.skip_service and args.events > 0:
                    lifecycles(url, cast, args.events, args.tx, tmp / "media", args.profile)
                    verify(url)
                if not args.skip_http:
                    workers = args.workers or (2 if kind == "pg" else 1)
                    http_benchmark(
                        url,
                        cast,
                        clients=args.clients,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        workers=workers,
                        client=args.client,
                        tmp=tmp,
                        spy=f"{args.spy}.{kind}" if args.spy else "",
                    )
            finally:
                cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
