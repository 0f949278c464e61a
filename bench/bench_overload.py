"""Overload: signed WeChat text messages offered open-loop at a fixed rate to a real ``volunteer-bot serve``
process (SQLite / PostgreSQL, 1 or 2 workers), beside a bare aiohttp endpoint doing only wechatpy's
check_signature + parse_message + create_reply through the same generator.

    .venv/bin/python bench/bench_overload.py [--rate 200] [--seconds 30] [--postgres URL]
                                             [--only sqlite1,pg1,pg2,bare] [--source /tmp/old]

Processes: this one is the load generator and hosts the fake WeChat API (tests/fakes) that receives the
customer-service messages; the server is a separate ``serve`` process (its workers are processes too);
the bare endpoint is a separate process. Requests are sent at their scheduled times whatever the
answers do (open loop); each has a 15 s client timeout.

Per run it prints: answered in time (HTTP 200 within 4.5 s: a passive reply or ``success``), passive
replies past 4.5 s (WeChat has given up on them: those replies are lost), ``success`` past 4.5 s,
"please resend" answers (queue full), errors (non-200, timeouts), p50/p99, replies delivered through the
outbox (customer-service messages received by the fake API, of the messages answered ``success``; the
rest are lost), the server's peak RSS (all its processes) and its inbound-queue counters (GET /metrics:
messages queued, joined, refused as full, handled later).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
THIS_FILE = str(Path(__file__).resolve())
sys.path.insert(0, str(REPO))

from bench.harness import PG_BASE, free_port, migrate_checkout, percentile, rss_mib, scratch_pg_database  # noqa: E402
from tests.fakes.wechat_api import FakeWeChatAPI  # noqa: E402

TOKEN = "bench-token"
USERS = 400
TEXTS = ["帮助", "我的时长", "活动", "你好", "我想注册成为志愿者", "取消"]
IN_TIME = 4.5
CLIENT_TIMEOUT = 15.0
BUSY_MARK = "请过一分钟再发一次"


def signed_query(timestamp: str, nonce: str) -> dict[str, str]:
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}


def message_xml(i: int, run: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[o_load_{i % USERS}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{TEXTS[i % len(TEXTS)]}]]></Content><MsgId>{run * 10**9 + i}</MsgId></xml>")


# ---- the bare endpoint (a separate process: `bench_overload.py --bare-server PORT`) ------------------
def bare_server(port: int) -> None:
    from wechatpy import create_reply, parse_message
    from wechatpy.utils import check_signature

    async def handle(request: web.Request) -> web.Response:
        query = request.query
        check_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"])
        message = parse_message(await request.text())
        return web.Response(text=create_reply("我是志愿助手，可以帮你……", message).render(),
                            content_type="application/xml")

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "pid": os.getpid()})

    app = web.Application()
    app.router.add_post("/wechat", handle)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# ---- measuring ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    in_time: int = 0
    passive_late: int = 0
    success_late: int = 0
    success: int = 0
    busy: int = 0
    busy_late: int = 0
    errors: int = 0


async def wait_healthy(base: str, server: subprocess.Popen[bytes], patience: float = 300.0) -> None:
    give_up = time.monotonic() + patience
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < give_up:
            if server.poll() is not None:
                raise RuntimeError(f"server exited with {server.returncode}")
            try:
                async with http.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("server did not start")


async def offer_load(base: str, rate: float, seconds: float, run: int, server_pid: int) -> tuple[Outcome, float]:
    outcome = Outcome()
    peak_rss = 0.0
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)  # WeChat opens a connection per push

    async def one(http: aiohttp.ClientSession, i: int) -> None:
        query = signed_query(str(int(time.time())), str(i))
        started = time.perf_counter()
        try:
            async with http.post(f"{base}/wechat", params=query, data=message_xml(i, run).encode(),
                                 timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)) as response:
                body = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            outcome.errors += 1
            return
        elapsed = time.perf_counter() - started
        outcome.latencies.append(elapsed)
        if status != 200:
            outcome.errors += 1
            return
        is_success, is_busy = body == "success", BUSY_MARK in body
        outcome.success += is_success
        outcome.busy += is_busy
        if elapsed <= IN_TIME:
            outcome.in_time += 1
        elif is_success:
            outcome.success_late += 1
        elif is_busy:
            outcome.busy_late += 1
        else:
            outcome.passive_late += 1

    async def sample_rss(stop: asyncio.Event) -> None:
        nonlocal peak_rss
        while not stop.is_set():
            peak_rss = max(peak_rss, rss_mib(server_pid))
            await asyncio.sleep(0.5)

    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(stop))
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(http, i)))
        await asyncio.gather(*tasks)
    stop.set()
    await sampler
    return outcome, peak_rss


async def wait_outbox(api: FakeWeChatAPI, expected: int, quiet: float = 30.0, patience: float = 300.0) -> int:
    """Customer-service messages received, once they stop coming (or all expected have come)."""
    give_up = time.monotonic() + patience
    last, last_change = -1, time.monotonic()
    while time.monotonic() < give_up:
        count = len(api.calls_to("message/custom/send"))
        if count != last:
            last, last_change = count, time.monotonic()
        if count >= expected or time.monotonic() - last_change > quiet:
            break
        await asyncio.sleep(1.0)
    return len(api.calls_to("message/custom/send"))


def report(label: str, total: int, outcome: Outcome, delivered: int | None, rss: float, ahead: int = 0) -> None:
    lat = outcome.latencies or [0.0]
    # every message gets a reply: one answered `success` whose reply came neither through the outbox nor in
    # the passive reply to the same user's next message (a queued message run ahead of it: ``ahead``) is lost
    outbox = ("" if delivered is None else f"; via outbox {delivered}, with a later passive reply {ahead}, of "
              f"{outcome.success} answered success (lost {max(0, outcome.success - delivered - ahead)})")
    print(f"{label:<22} {total} offered: in time {outcome.in_time}, passive past {IN_TIME}s {outcome.passive_late}, "
          f"success past {IN_TIME}s {outcome.success_late}, please-resend {outcome.busy} ({outcome.busy_late} past "
          f"{IN_TIME}s), errors {outcome.errors}; "
          f"p50 {percentile(lat, 0.5):.3f}s p99 {percentile(lat, 0.99):.3f}s{outbox}; peak RSS {rss:.0f} MiB",
          flush=True)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log: IO[bytes]  # a file, not a pipe: a full pipe nobody reads until the end would block the server


def start(argv: list[str], env: dict[str, str], cwd: Path = REPO) -> Server:
    log = tempfile.TemporaryFile()
    return Server(subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log), log)


def serve_argv(source: Path, port: int, workers: int) -> list[str]:
    """``volunteer-bot serve`` of the checkout ``source`` (its code first on the path, workers included)."""
    code = f"import sys; sys.path.insert(0, {str(source)!r}); from bot.cli import main; main()"
    return [sys.executable, "-c", code, "serve", "--port", str(port), "--workers", str(workers)]


def stop_server(server: Server) -> str:
    """SIGTERM (the server drains its queue), SIGKILL after 120 s; returns its log."""
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    with server.log:
        server.log.seek(0)
        return server.log.read().decode(errors="replace")


async def inbound_counts(base: str) -> dict[str, float] | None:
    """The server's inbound-queue and refusal counters (GET /metrics), summed over its workers."""
    totals: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    for line in text.splitlines():
        if line.startswith(("volunteer_inbound_total", "volunteer_admission_refused_total",
                            "volunteer_deadline_misses_total")):
            name, value = line.rsplit(" ", 1)
            name = name.replace('channel="wechat"', "").replace("{,", "{").replace(",}", "}").replace("{}", "")
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def counters_text(totals: dict[str, float] | None) -> str:
    if totals is None:
        return "metrics unavailable"
    return ", ".join(f"{name} {value:.0f}" for name, value in sorted(totals.items())) or "no inbound counters"


def ran_ahead(totals: dict[str, float] | None) -> int:
    """Queued messages whose replies went out in the passive reply to their user's next message."""
    return int(sum(value for name, value in (totals or {}).items()
                   if name.startswith("volunteer_inbound_total") and 'outcome="ahead"' in name))


async def run_serve(label: str, url: str, workers: int, args: argparse.Namespace, run: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeWeChatAPI() as api:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "DATABASE_URL": url, "WECHAT_TOKEN": TOKEN, "WECHAT_APP_ID": api.app_id,
                   "WECHAT_APP_SECRET": api.secret, "WECHAT_API_BASE": api.base_url, "WECHAT_MP_BASE": api.base_url,
                   "LOG_LEVEL": "WARNING", "SCHEDULER_LOCK_FILE": f"{tmp}/lock", "TELEGRAM_BOT_TOKEN": "",
                   "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00"}
            server = start(serve_argv(args.source, port, workers), env, cwd=args.source)
            try:
                await wait_healthy(base, server.process)
                outcome, rss = await offer_load(base, args.rate, args.seconds, run, server.process.pid)
                delivered = await wait_outbox(api, outcome.success)
                counters = await inbound_counts(base)
            finally:
                log = stop_server(server)
                if args.logs is not None:
                    args.logs.mkdir(parents=True, exist_ok=True)
                    (args.logs / f"{label.split(',')[0].lower()}-{workers}.log").write_text(log)
            report(label, int(args.rate * args.seconds), outcome, delivered, rss, ran_ahead(counters))
            print(f"{'':<22} server counters: {counters_text(counters)}", flush=True)
            problems = [line for line in log.splitlines() if "Traceback" in line or "ERROR" in line]
            overload = [line for line in log.splitlines() if "overloaded" in line]
            print(f"{'':<22} server log: {len(overload)} overload line(s), {len(problems)} error line(s)"
                  + (f"; first: {problems[0][:160]}" if problems else ""), flush=True)


async def run_bare(args: argparse.Namespace) -> None:
    port = free_port()
    server = start([sys.executable, THIS_FILE, "--bare-server", str(port)], dict(os.environ))
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", server.process)
        outcome, rss = await offer_load(f"http://127.0.0.1:{port}", args.rate, args.seconds, 0, server.process.pid)
    finally:
        stop_server(server)
    report("bare aiohttp+wechatpy", int(args.rate * args.seconds), outcome, None, rss)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--postgres", default=PG_BASE, help="a server's admin URL: a scratch database is made there")
    parser.add_argument("--only", default="bare,sqlite1,pg1,pg2")
    parser.add_argument("--logs", type=Path, help="a directory to keep each server's log in")
    parser.add_argument("--source", type=Path, default=REPO, help="the checkout whose serve to start (before/after)")
    args = parser.parse_args()
    runs = args.only.split(",")
    print(f"{args.rate:.0f} req/s offered for {args.seconds:.0f} s, {USERS} users, serve of {args.source}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if "bare" in runs:
        await run_bare(args)
    if "sqlite1" in runs:
        with tempfile.TemporaryDirectory() as tmp:
            await run_serve("SQLite, 1 worker", f"sqlite+aiosqlite:///{tmp}/bench.db", 1, args, 1)
    for workers in (1, 2):
        if f"pg{workers}" not in runs:
            continue
        async with scratch_pg_database("overload", args.postgres) as url:
            # the schema of the checkout being measured (another checkout's serve refuses revisions it
            # does not know)
            await asyncio.to_thread(migrate_checkout, args.source, url)
            await run_serve(f"PostgreSQL, {workers} worker(s)", url, workers, args, 1 + workers)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bare-server"]:
        bare_server(int(sys.argv[2]))
    else:
        asyncio.run(main())
