"""HTTP load: gunicorn on 127.0.0.1 driven by wrk, one case at a time."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cases import Measurement

ROOT = Path(__file__).resolve().parents[1]
WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")
WRK_MARKER = "WRK_JSON "


class LoadError(Exception):
    """The HTTP stage cannot run or a request failed; the message says which and why."""


def find_wrk():
    path = shutil.which("wrk")
    if path is None:
        raise LoadError("wrk is not installed; install it (apt-get install wrk) or pass --no-http.")
    return path


class Gunicorn:
    """gunicorn serving qcdash on 127.0.0.1:`port` with `workers` sync workers."""

    def __init__(self, port, workers, environment):
        self.port = port
        self.workers = workers
        self.environment = environment
        self.process = None

    def __enter__(self):
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
            "qcdash.wsgi:application",
        ]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.environment)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LoadError(f"gunicorn exited with status {self.process.returncode}.")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise LoadError(f"gunicorn did not listen on 127.0.0.1:{self.port} within 30 s.")

    def __exit__(self, *exc_info):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def run_wrk(case, *, port, cookie, csrf):
    """Drive `case` with wrk for its duration and return a Measurement of the HTTP figures."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as listing:
        for method, path, body in case.entries:
            listing.write(f"{method}\t{path}\t{body}\n")
    environment = dict(
        os.environ,
        WRK_REQUESTS=listing.name,
        WRK_COOKIE=f"sessionid={cookie}; csrftoken={csrf}",
        WRK_CSRF=csrf,
    )
    command = [
        find_wrk(),
        "-t1",
        f"-c{case.http_connections}",
        f"-d{case.http_seconds:g}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}/",
    ]
    try:
        output = subprocess.run(
            command, env=environment, capture_output=True, text=True, check=True
        ).stdout
    except subprocess.CalledProcessError as error:
        raise LoadError(f"wrk failed on {case.name}: {error.stderr.strip()}") from error
    finally:
        os.unlink(listing.name)
    lines = [line for line in output.splitlines() if line.startswith(WRK_MARKER)]
    if not lines:
        raise LoadError(f"wrk printed no summary for {case.name}:\n{output}")
    figures = json.loads(lines[-1][len(WRK_MARKER) :])
    if figures["status_errors"] or figures["socket_errors"]:
        raise LoadError(
            f"{case.name}: {figures['status_errors']} responses with a 4xx or 5xx status and "
            f"{figures['socket_errors']} socket errors out of {figures['requests']} requests."
        )
    if not figures["requests"]:
        raise LoadError(f"{case.name}: wrk completed no request in {case.http_seconds:g} s.")
    measurement = Measurement(case.name)
    measurement.http = figures
    measurement.requests_per_second = figures["requests"] / (figures["duration_us"] / 1e6)
    return measurement
