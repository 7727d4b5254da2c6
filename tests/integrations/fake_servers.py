"""Stand-ins for an XNAT server and for the GitHub and GitLab issue APIs, on 127.0.0.1.

Each runs a real HTTP server in a thread, speaks the small part of the protocol qcdash uses
and records every request. A test can make it fail the next N requests with a status, respond
slowly or respond with any body.
"""

import base64
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict
    headers: object  # an email.message.Message: case-insensitive get()
    body: bytes

    def json(self):
        return json.loads(self.body)


class StandInServer:
    """The HTTP plumbing: threads, recording and failure modes. Subclasses build responses."""

    def __init__(self):
        self.requests = []
        self._failures = []
        self._delay = 0.0
        self._raw_body = None
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    def fail_next(self, count, status=503, body=b'{"message": "Service unavailable"}'):
        """Respond to the next `count` requests with `status`."""
        with self._lock:
            self._failures += [(status, body)] * count

    def respond_slowly(self, seconds):
        """Wait `seconds` before responding to each request, until `recover()`."""
        with self._lock:
            self._delay = seconds

    def respond_with(self, body, status=200, content_type="application/json"):
        """Respond to every request with this body, until `recover()`."""
        with self._lock:
            payload = body if isinstance(body, bytes) else body.encode()
            self._raw_body = (status, payload, content_type)

    def recover(self):
        with self._lock:
            self._failures = []
            self._delay = 0.0
            self._raw_body = None

    @property
    def url(self):
        host, port = self._server.server_address
        return f"http://{host}:{port}"

    def start(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                stand_in._handle(self, "GET")

            def do_PUT(self):
                stand_in._handle(self, "PUT")

            def do_POST(self):
                stand_in._handle(self, "POST")

            def log_message(self, format, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
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

    def _handle(self, handler, method):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        request = RecordedRequest(
            method=method,
            path=unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=handler.headers,
            body=body,
        )
        with self._lock:
            self.requests.append(request)
            failure = self._failures.pop(0) if self._failures else None
            delay, raw_body = self._delay, self._raw_body
        if delay:
            time.sleep(delay)
        if failure is not None:
            return self.send(handler, failure[0], failure[1])
        if raw_body is not None:
            return self.send(handler, raw_body[0], raw_body[1], raw_body[2])
        status, answer = self.answer(request)
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        return self.send(handler, status, payload)

    def answer(self, request):
        raise NotImplementedError

    @staticmethod
    def send(handler, status, body, content_type="application/json"):
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test); nothing to answer.
            pass


class FakeXnat(StandInServer):
    """An XNAT server with a set of scans, each a dict of fields, behind HTTP basic auth."""

    def __init__(self, user="qcdash", password="s3cret-xnat"):  # noqa: S107 - a test account
        super().__init__()
        self.user = user
        self.password = password
        self.scans = {}

    def add_scan(self, project, subject, experiment, scan_id, **fields):
        path = f"/data/projects/{project}/subjects/{subject}/experiments/{experiment}"
        path += f"/scans/{scan_id}"
        self.scans[path] = dict(fields)
        return path

    def quality(self, path):
        return self.scans[path].get("quality")

    def puts(self):
        return [request for request in self.requests if request.method == "PUT"]

    def answer(self, request):
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return 401, b"<html><body>Login failed</body></html>"
        scan = self.scans.get(request.path)
        if scan is None:
            return 404, b"<html><body>Not found</body></html>"
        if request.method == "GET":
            return 200, {"items": [{"data_fields": {"ID": request.path.rsplit("/", 1)[1], **scan}}]}
        if request.method == "PUT":
            for name, values in request.query.items():
                if name == "xnat:imageScanData/quality":
                    scan["quality"] = values[0]
            return 200, b""
        return 405, b""


class FakeTracker(StandInServer):
    """GitHub's and GitLab's issue endpoints for one repository, with a token check."""

    def __init__(self, token="tracker-token", repository="tigrlab/data-issues"):  # noqa: S107
        super().__init__()
        self.token = token
        self.repository = repository
        self.issues = []
        self.gitlab_users = {}

    def add_issue(self, title, body="", state="open"):
        number = len(self.issues) + 1
        self.issues.append(
            {
                "number": number,
                "title": title,
                "body": body,
                "state": state,
                "comments": 0,
                "created_at": f"2024-03-{number:02d}T10:00:00Z",
                "updated_at": f"2024-03-{number:02d}T11:00:00Z",
            }
        )
        return number

    def posts(self):
        return [request for request in self.requests if request.method == "POST"]

    def answer(self, request):
        github_auth = request.headers.get("Authorization") == f"Bearer {self.token}"
        gitlab_auth = request.headers.get("PRIVATE-TOKEN") == self.token
        if not (github_auth or gitlab_auth):
            return 401, {"message": "Bad credentials"}
        project = f"/projects/{self.repository}"
        if request.method == "GET" and request.path == "/search/issues":
            return 200, self._github_search(request.query["q"][0])
        if request.method == "POST" and request.path == f"/repos/{self.repository}/issues":
            data = request.json()
            return 201, self._github_issue(self._create(data["title"], data.get("body", "")))
        if request.method == "GET" and request.path == f"{project}/issues":
            text = request.query["search"][0].casefold()
            matching = [issue for issue in self.issues if text in _text(issue).casefold()]
            return 200, [self._gitlab_issue(issue) for issue in reversed(matching)]
        if request.method == "POST" and request.path == f"{project}/issues":
            data = request.json()
            return 201, self._gitlab_issue(self._create(data["title"], data.get("description", "")))
        if request.method == "GET" and request.path == "/users":
            name = request.query["username"][0]
            user_id = self.gitlab_users.get(name)
            return 200, [{"id": user_id, "username": name}] if user_id else []
        return 404, {"message": "Not Found"}

    def _create(self, title, body):
        number = self.add_issue(title, body)
        return self.issues[number - 1]

    def _github_search(self, query):
        # The stand-in reads only the quoted phrase of the query.
        phrase = query.split('"')[1].casefold()
        matching = [issue for issue in self.issues if phrase in _text(issue).casefold()]
        items = [self._github_issue(issue) for issue in reversed(matching)]
        return {"total_count": len(items), "incomplete_results": False, "items": items}

    def _github_issue(self, issue):
        return {
            **issue,
            "html_url": f"https://github.com/{self.repository}/issues/{issue['number']}",
            "user": {"login": "lab-bot"},
        }

    def _gitlab_issue(self, issue):
        return {
            "iid": issue["number"],
            "title": issue["title"],
            "description": issue["body"],
            "state": "opened" if issue["state"] == "open" else issue["state"],
            "web_url": f"https://gitlab.example.org/{self.repository}/-/issues/{issue['number']}",
            "user_notes_count": issue["comments"],
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
        }


def _text(issue):
    return f"{issue['title']}\n{issue['body']}"
