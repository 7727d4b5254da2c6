"""HTTP load: gunicorn on 127.0.0.1 driven by wrk, one case at a time."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
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
        # The command is built here from fixed parts and a port number, never from user input.
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.environment)  # noqa: S603
        # The port opens before the workers have loaded Django, so wait for a real answer.
        url = f"http://127.0.0.1:{self.port}/healthz"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LoadError(f"gunicorn exited with status {self.process.returncode}.")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise LoadError(
            f"gunicorn did not respond at {url} within 60 s; check its log for a start-up error."
        )

    def __exit__(self, *exc_info):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def run_wrk(case, *, port, cookie, csrf):
    """Drive `case` with wrk for its duration and return a Measurement of the HTTP figures.

    When no request completes in that time, the run is repeated with twice the duration, up to
    three times, before LoadError is raised.
    """
    seconds = case.http_seconds
    for _attempt in range(3):
        try:
            return _run_wrk_once(case, seconds, port=port, cookie=cookie, csrf=csrf)
        except NoRequestCompleted:
            seconds *= 2
    raise LoadError(f"{case.name}: wrk completed no request in {seconds / 2:g} s.")


class NoRequestCompleted(LoadError):
    pass


def _run_wrk_once(case, seconds, *, port, cookie, csrf):
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
        f"-d{seconds:g}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}/",
    ]
    try:
        output = subprocess.run(  # noqa: S603 - wrk with arguments built here
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
        raise NoRequestCompleted(case.name)
    measurement = Measurement(case.name)
    measurement.http = figures
    measurement.requests_per_second = figures["requests"] / (figures["duration_us"] / 1e6)
    return measurement
