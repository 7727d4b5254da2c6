"""Measure the latency and throughput of the REDCap trigger endpoint.

Run from the project folder, against a database that this script may fill with rows:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qcdash_bench \\
        .venv/bin/python -m tests.redcap.bench_trigger --requests 2000 --threads 8

It migrates the database, creates one REDCap configuration, then posts valid triggers two
ways: in-process through Django's test client (the view and the database only), and over HTTP
to a server it starts on 127.0.0.1 (`manage.py runserver`, or gunicorn with `--server
gunicorn` when gunicorn can be imported) from a pool of client threads. No django-q2 worker
runs, so each trigger stays queued; nothing is sent to REDCap. Every request goes to
127.0.0.1, and the run stops after the given number of requests.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
# Production-like settings for this process and the server: DEBUG off (no query log), HTTP.
BENCH_ENVIRONMENT = {
    "DEBUG": "false",
    "SECRET_KEY": "benchmark-only-" + "x" * 40,
    "ALLOWED_HOSTS": "127.0.0.1,testserver",
    "SECURE_SSL_REDIRECT": "false",
    "LOG_LEVEL": "WARNING",
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="Triggers per method.")
    parser.add_argument("--threads", type=int, default=8, help="HTTP client threads.")
    parser.add_argument(
        "--server",
        choices=["runserver", "gunicorn"],
        default="runserver",
        help="HTTP server to start (gunicorn runs 2 sync workers, one per core).",
    )
    return parser.parse_args()


def setup_django():
    os.environ.update(BENCH_ENVIRONMENT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcdash.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def create_config():
    from redcap.models import RedcapConfig, RedcapTrigger

    RedcapTrigger.objects.all().delete()
    config, _ = RedcapConfig.objects.get_or_create(
        url="http://127.0.0.1:9/",
        project_id=4242,
        instrument="tigrlab_scan_completed",
        defaults={"token": "0123456789ABCDEF0123456789ABCDEF"},
    )
    return config


def trigger_body(config, record_id):
    return urlencode(
        {
            "redcap_url": config.url,
            "project_url": f"{config.url}redcap_v14.5.2/index.php?pid={config.project_id}",
            "project_id": str(config.project_id),
            "username": "ra_jane",
            "record": str(record_id),
            "instrument": config.instrument,
            f"{config.instrument}_complete": "2",
        }
    )


def summarise(label, latencies, elapsed):
    latencies = sorted(latencies)
    quantiles = statistics.quantiles(latencies, n=100)
    return (
        f"{label}: {len(latencies)} requests in {elapsed:.2f} s = "
        f"{len(latencies) / elapsed:.0f} requests/s; latency ms p50 {quantiles[49] * 1000:.2f}, "
        f"p95 {quantiles[94] * 1000:.2f}, p99 {quantiles[98] * 1000:.2f}, "
        f"max {latencies[-1] * 1000:.2f}"
    )


def bench_in_process(config, count):
    from django.test import Client
    from django.urls import reverse

    client = Client()
    url = reverse("redcap:trigger", args=[config.trigger_secret])
    latencies = []
    started = time.perf_counter()
    for index in range(count):
        body = trigger_body(config, index)
        before = time.perf_counter()
        response = client.post(url, body, content_type="application/x-www-form-urlencoded")
        latencies.append(time.perf_counter() - before)
        if response.status_code != 200:
            raise SystemExit(f"trigger {index} returned status {response.status_code}")
    return latencies, time.perf_counter() - started


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(kind, port):
    env = dict(os.environ, **BENCH_ENVIRONMENT)
    if kind == "gunicorn":
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "qcdash.wsgi:application",
        ]
    else:
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{kind} did not start on 127.0.0.1:{port} within 30 s")


def bench_http(config, count, threads, kind):
    from django.urls import reverse

    port = free_port()
    server = start_server(kind, port)
    url = f"http://127.0.0.1:{port}" + reverse("redcap:trigger", args=[config.trigger_secret])
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    def post(index):
        request = urllib.request.Request(
            url, data=trigger_body(config, index).encode(), headers=headers
        )
        before = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            status = response.status
        if status != 200:
            raise RuntimeError(f"trigger {index} returned status {status}")
        return time.perf_counter() - before

    try:
        # A short warm-up, so start-up costs are not counted.
        for index in range(20):
            post(-index - 1)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            latencies = list(pool.map(post, range(count)))
        return latencies, time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=15)


def main():
    args = parse_args()
    setup_django()
    from django.db import connection

    config = create_config()
    print(f"database: {connection.vendor}; CPUs: {os.cpu_count()}; Python {sys.version.split()[0]}")
    latencies, elapsed = bench_in_process(config, args.requests)
    print(summarise("in-process test client, 1 thread", latencies, elapsed))
    latencies, elapsed = bench_http(config, args.requests, args.threads, args.server)
    print(summarise(f"HTTP {args.server}, {args.threads} client threads", latencies, elapsed))


if __name__ == "__main__":
    main()
