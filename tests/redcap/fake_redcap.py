"""A stand-in for a REDCap server's API, served on 127.0.0.1 from a thread.

It responds to the two calls qcdash makes (record export and version export) with fixture
data, in the shape REDCap uses: form-encoded POSTs to `/api/`, flat JSON rows, JSON error bodies.
A test can make it fail with a status, respond slower than the client's timeout, or respond with
any body, and it records every request it got.
"""

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

API_PATH = "/api/"
VERSION = "14.5.2"


@dataclass
class FakeProject:
    """One REDCap project: its records as flat rows and whether it has events."""

    token: str
    record_key: str = "record_id"
    rows: list[dict] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def known_fields(self):
        names = set(self.fields)
        for row in self.rows:
            names.update(row)
        names.discard("redcap_event_name")
        return names


@dataclass
class RecordedRequest:
    """One request the stand-in received: path and form fields, list-valued where repeated."""

    path: str
    form: dict

    @property
    def content(self):
        return self.form.get("content", [""])[0]

    def values(self, name):
        """The values of an array parameter such as records[0], records[1], ..."""
        pattern = re.compile(rf"{re.escape(name)}\[[0-9]+\]")
        return [
            value for key, values in self.form.items() if pattern.fullmatch(key) for value in values
        ]


class FakeRedcap:
    """The stand-in server. Use as a context manager, or call start() and stop()."""

    def __init__(self):
        self.projects = {}
        self.requests = []
        self.version = VERSION
        self._failure = None
        self._delay = 0.0
        self._raw_body = None
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    # --- set-up -------------------------------------------------------------------------

    def add_project(self, token, rows=(), *, record_key="record_id", fields=(), events=()):
        project = FakeProject(
            token=token,
            record_key=record_key,
            rows=[dict(row) for row in rows],
            fields=list(fields),
            events=list(events),
        )
        self.projects[token] = project
        return project

    def set_rows(self, token, rows):
        with self._lock:
            self.projects[token].rows = [dict(row) for row in rows]

    def fail_with(self, status, message="Internal server error"):
        """Respond to every request with `status` until `recover()`."""
        with self._lock:
            self._failure = (status, message)

    def respond_slowly(self, seconds):
        """Wait `seconds` before responding to each request, until `recover()`."""
        with self._lock:
            self._delay = seconds

    def respond_with(self, body, content_type="application/json"):
        """Respond to every request with this raw body and status 200, until `recover()`."""
        with self._lock:
            self._raw_body = (body if isinstance(body, bytes) else body.encode(), content_type)

    def recover(self):
        with self._lock:
            self._failure = None
            self._delay = 0.0
            self._raw_body = None

    @property
    def url(self):
        host, port = self._server.server_address
        return f"http://{host}:{port}/"

    @property
    def api_url(self):
        return f"{self.url.rstrip('/')}{API_PATH}"

    def record_requests(self):
        """Requests for the record export, in order."""
        return [request for request in self.requests if request.content == "record"]

    # --- server -------------------------------------------------------------------------

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                fake._handle(self)

            def do_GET(self):
                fake._send(self, 405, b'{"error": "POST only"}')

            def log_message(self, format, *args):
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval lets stop() return in milliseconds instead of half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode("utf-8")
        form = {}
        for key, value in parse_qsl(body, keep_blank_values=True):
            form.setdefault(key, []).append(value)
        request = RecordedRequest(path=handler.path, form=form)
        with self._lock:
            self.requests.append(request)
            failure, delay, raw_body = self._failure, self._delay, self._raw_body

        if delay:
            time.sleep(delay)
        if failure is not None:
            status, message = failure
            return self._send(handler, status, json.dumps({"error": message}).encode())
        if raw_body is not None:
            return self._send(handler, 200, raw_body[0], raw_body[1])
        if handler.path != API_PATH:
            return self._send(handler, 404, b"<html>Not Found</html>", "text/html")

        token = request.form.get("token", [""])[0]
        project = self.projects.get(token)
        if project is None:
            error = {"error": "You do not have permissions to use the API"}
            return self._send(handler, 403, json.dumps(error).encode())
        if request.content == "version":
            return self._send(handler, 200, self.version.encode(), "text/html")
        if request.content == "record":
            return self._export_records(handler, project, request)
        return self._send(
            handler, 400, b'{"error": "The value of the parameter content is not valid"}'
        )

    def _export_records(self, handler, project, request):
        fields = request.values("fields")
        invalid = [name for name in fields if name not in project.known_fields()]
        if invalid:
            message = (
                'The following values in the parameter "fields" are not valid: '
                f"'{', '.join(invalid)}'"
            )
            return self._send(handler, 400, json.dumps({"error": message}).encode())
        events = request.values("events")
        invalid = [name for name in events if name not in project.events]
        if invalid:
            message = f'The following values in the parameter "events" are not valid: {invalid}'
            return self._send(handler, 400, json.dumps({"error": message}).encode())

        records = request.values("records")
        with self._lock:
            rows = [dict(row) for row in project.rows]
        if records:
            rows = [row for row in rows if str(row.get(project.record_key)) in records]
        if events:
            rows = [row for row in rows if row.get("redcap_event_name") in events]
        if fields:
            # REDCap always exports the record ID field, and the event in longitudinal projects.
            keep = set(fields) | {project.record_key, "redcap_event_name"}
            rows = [{name: value for name, value in row.items() if name in keep} for row in rows]
        return self._send(handler, 200, json.dumps(rows).encode())

    @staticmethod
    def _send(handler, status, body, content_type="application/json"):
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test); nothing is left to send.
            pass


class _Server(ThreadingHTTPServer):
    # Twenty triggers fetch at once in the concurrency test; the default listen backlog is 5.
    request_queue_size = 64
