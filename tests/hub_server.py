"""A small Hugging Face Hub-compatible server for tests (standard library only, loopback only).

It speaks the part of the Hub HTTP API that ``huggingface_hub`` uses to push and pull model repos:
``whoami-v2``, repo creation and info, refs, branches, tags, preupload (always "regular" uploads, so
neither LFS nor Xet is involved), NDJSON commits with base64 file contents, and ``HEAD``/``GET``
``/{repo}/resolve/{revision}/{path}`` with the ``X-Repo-Commit``/``ETag``/``Content-Length`` headers;
large files (``*.safetensors``, ``*.bin``) are answered as the Hub answers LFS files: a redirect to a storage
host (here ``localhost`` instead of ``127.0.0.1``, a different origin) with ``X-Linked-Etag``/``X-Linked-Size``.

Outages are simulated with :meth:`HubServer.stop` (nothing listens any more: "down"),
``server.mode = "hanging"`` (connections are accepted but never answered) and ``server.mode = "failing"``
(every request gets HTTP 503); :meth:`HubServer.corrupt` damages a stored file. Storage is in memory.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

USER = "tester"
LFS_SUFFIXES = (".safetensors", ".bin")


def git_blob_sha(content: bytes) -> str:
    """The git object id of a file, which the Hub uses as the ETag of regular files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    """One model repo: immutable commits (path → bytes) plus branch and tag names pointing at them."""

    repo_id: str
    private: bool = False
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        """Commit id of a branch, tag or commit id; ``None`` if unknown."""
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        return revision if revision in self.commits else None

    def commit(self, branch: str, files: dict[str, bytes], message: str) -> str:
        """Add a commit on ``branch`` with ``files`` changed; return its id."""
        parent = self.branches.get(branch, "")
        tree = dict(self.commits.get(parent, {}))
        tree.update(files)
        digest = hashlib.sha1(f"{parent}\n{message}\n{len(self.commits)}".encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + files[path])
        commit_id = digest.hexdigest()
        self.commits[commit_id] = tree
        self.branches[branch] = commit_id
        return commit_id


class HubServer:
    """The server, running in a background thread on ``127.0.0.1`` with an ephemeral port.

    ``url`` is what ``HF_ENDPOINT`` should be set to. ``mode`` is "ok", "hanging" or "failing".
    ``requests`` records ``(method, path)`` of every request, ``authorization`` the ``Authorization``
    headers seen (to check token use). Writes need a token (any), like on the Hub.
    """

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.mode = "ok"
        self.requests: list[tuple[str, str]] = []
        self.authorization: list[str] = []
        self.blobs: dict[str, bytes] = {}  # sha256 → content, served by the "storage host"
        self.cdn_requests: list[str | None] = []  # Authorization header of each storage-host download
        self._release = threading.Event()
        self._connections: set = set()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.hub = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop open (keep-alive) connections: clients now get "connection refused"."""
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for connection in list(self._connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def corrupt(self, repo_id: str, path: str, revision: str = "main", data: bytes = b"not a safetensors file") -> None:
        """Replace the stored content of one file in place (same commit id), as a damaged storage would."""
        repo = self.repos[repo_id]
        repo.commits[repo.resolve(revision)][path] = data

    def add_files(self, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        """Create the repo (and branch, from main) if needed and commit ``files`` directly; return the commit id."""
        repo = self.repos.setdefault(repo_id, Repo(repo_id))
        if not repo.branches:
            repo.commit("main", {".gitattributes": b""}, "initial commit")
        repo.branches.setdefault(branch, repo.branches["main"])
        return repo.commit(branch, files, "add files")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Clients dropping keep-alive connections is normal; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def setup(self):
        super().setup()
        self.hub._connections.add(self.connection)

    def finish(self):
        self.hub._connections.discard(self.connection)
        super().finish()

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    # ------------------------------------------------------------------ plumbing

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        path = urlsplit(self.path).path
        hub.requests.append((method, path))
        if self.headers.get("Authorization"):
            hub.authorization.append(self.headers["Authorization"])
        if hub.mode == "hanging":
            hub._release.wait()
            self.close_connection = True
            return
        if hub.mode == "failing":
            return self._json(503, {"error": "Service Unavailable"})
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        for route_method, pattern, handler in _ROUTES:
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                args = [unquote(group) for group in match.groups()]
                return handler(self, body, *args)
        self._json(404, {"error": f"no route for {method} {path}"})

    do_GET = lambda self: self._dispatch("GET")  # noqa: E731
    do_HEAD = lambda self: self._dispatch("HEAD")  # noqa: E731
    do_POST = lambda self: self._dispatch("POST")  # noqa: E731
    do_DELETE = lambda self: self._dispatch("DELETE")  # noqa: E731

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})

    def _repo(self, repo_id: str) -> Repo | None:
        """The repo, or ``None`` after answering 404 (private repos need a token, as on the Hub)."""
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self.headers.get("Authorization")):
            self._error(404, "RepoNotFound", f"Repository not found: {repo_id}")
            return None
        return repo

    def _writer(self) -> bool:
        """Writes need a token, as on the Hub; answers 401 and returns False without one."""
        if self.headers.get("Authorization"):
            return True
        self._json(401, {"error": "Invalid credentials in Authorization header"})
        return False

    def _commit(self, repo: Repo, revision: str) -> str | None:
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    # ------------------------------------------------------------------ routes

    def whoami(self, body):
        if not self.headers.get("Authorization"):
            return self._json(401, {"error": "Invalid credentials in Authorization header"})
        self._json(200, {"type": "user", "name": USER, "auth": {"type": "access_token"}})

    def create_repo(self, body):
        if not self._writer():
            return
        payload = json.loads(body)
        repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
        if repo_id in self.hub.repos:
            return self._json(409, {"error": "You already created this model repo", "url": f"{self.hub.url}/{repo_id}"})
        self.hub.add_files(repo_id, {})
        self.hub.repos[repo_id].private = payload.get("visibility") == "private" or bool(payload.get("private"))
        self._json(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id})

    def repo_info(self, body, repo_id, revision="main"):
        if (repo := self._repo(repo_id)) is None or (commit := self._commit(repo, revision)) is None:
            return
        files = [{"rfilename": path} for path in sorted(repo.commits[commit])]
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": commit, "private": repo.private, "siblings": files})

    def refs(self, body, repo_id):
        if (repo := self._repo(repo_id)) is None:
            return

        def listing(names: dict[str, str], kind: str) -> list[dict]:
            return [{"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": commit} for name, commit in names.items()]

        self._json(200, {"branches": listing(repo.branches, "heads"), "tags": listing(repo.tags, "tags"), "converts": []})

    def validate_yaml(self, body):
        self._json(200, {"errors": [], "warnings": []})

    def preupload(self, body, repo_id, revision):
        if not self._writer():
            return
        if (repo := self._repo(repo_id)) is None or (commit := self._commit(repo, revision)) is None:
            return
        tree = repo.commits[commit]
        files = [
            {"path": entry["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": git_blob_sha(tree[entry["path"]]) if entry["path"] in tree else None}
            for entry in json.loads(body)["files"]
        ]
        self._json(200, {"files": files, "commitOid": commit})

    def commit(self, body, repo_id, revision):
        if not self._writer():
            return
        if (repo := self._repo(repo_id)) is None:
            return
        if revision not in repo.branches:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        files, message = {}, ""
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "header":
                message = item["value"]["summary"]
            elif item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            else:
                return self._json(400, {"error": f"this test hub only supports regular files, not {item['key']}"})
        commit = repo.commit(revision, files, message)
        self._json(200, {"commitUrl": f"{self.hub.url}/{repo_id}/commit/{commit}", "commitOid": commit,
                         "success": True})

    def create_branch(self, body, repo_id, branch):
        if not self._writer():
            return
        if (repo := self._repo(repo_id)) is None:
            return
        if branch in repo.branches:
            return self._json(409, {"error": f"Branch {branch} already exists"})
        start = json.loads(body or b"{}").get("startingPoint", "main")
        if (commit := self._commit(repo, start)) is None:
            return
        repo.branches[branch] = commit
        self._json(200, {})

    def delete_branch(self, body, repo_id, branch):
        if not self._writer():
            return
        if (repo := self._repo(repo_id)) is None:
            return
        if repo.branches.pop(branch, None) is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
        self._json(200, {})

    def create_tag(self, body, repo_id, revision):
        if not self._writer():
            return
        if (repo := self._repo(repo_id)) is None or (commit := self._commit(repo, revision)) is None:
            return
        tag = json.loads(body)["tag"]
        if tag in repo.tags:
            return self._json(409, {"error": f"Tag {tag} already exists"})
        repo.tags[tag] = commit
        self._json(200, {})

    def resolve(self, body, repo_id, revision, path):
        if (repo := self._repo(repo_id)) is None or (commit := self._commit(repo, revision)) is None:
            return
        content = repo.commits[commit].get(path)
        if content is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist at {revision}",
                               {"X-Repo-Commit": commit})
        headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha(content)}"'}
        if path.endswith(LFS_SUFFIXES):  # like the Hub: large files redirect to a storage host, keyed by sha256
            sha256 = hashlib.sha256(content).hexdigest()
            self.hub.blobs[sha256] = content
            headers.update({"Location": f"http://localhost:{self.hub.port}/cdn/{sha256}",
                            "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(len(content))})
            return self._send(302, b"", headers)
        self._send(200, content, {**headers, "Content-Type": "application/octet-stream"})

    def cdn(self, body, sha256):
        """The storage host of large files (reached as ``localhost``, another origin than the hub's)."""
        self.hub.cdn_requests.append(self.headers.get("Authorization"))
        if sha256 not in self.hub.blobs:
            return self._json(404, {"error": "no such blob"})
        self._send(200, self.hub.blobs[sha256], {"Content-Type": "application/octet-stream"})


_REPO = r"/([^/]+/[^/]+)"
_ROUTES = [
    ("GET", r"/api/whoami-v2", _Handler.whoami),
    ("POST", r"/api/repos/create", _Handler.create_repo),
    ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
    ("GET", r"/api/models" + _REPO, _Handler.repo_info),
    ("GET", r"/api/models" + _REPO + r"/revision/(.+)", _Handler.repo_info),
    ("GET", r"/api/models" + _REPO + r"/refs", _Handler.refs),
    ("POST", r"/api/models" + _REPO + r"/preupload/(.+)", _Handler.preupload),
    ("POST", r"/api/models" + _REPO + r"/commit/(.+)", _Handler.commit),
    ("POST", r"/api/models" + _REPO + r"/branch/(.+)", _Handler.create_branch),
    ("DELETE", r"/api/models" + _REPO + r"/branch/(.+)", _Handler.delete_branch),
    ("POST", r"/api/models" + _REPO + r"/tag/(.+)", _Handler.create_tag),
    ("HEAD", _REPO + r"/resolve/([^/]+)/(.+)", _Handler.resolve),
    ("GET", _REPO + r"/resolve/([^/]+)/(.+)", _Handler.resolve),
    ("GET", r"/cdn/([0-9a-f]{64})", _Handler.cdn),
]
