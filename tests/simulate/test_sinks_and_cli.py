"""Sink behaviour under a flaky receiver, and the command line's errors."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from click.testing import CliRunner

from growth_stack_dagster.simulate.command import simulate_command
from growth_stack_dagster.simulate.sinks import SandboxSeeder, SinkError


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 (then 429) before accepting, like a busy sandbox."""

    replies = [503, 429]
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.replies.pop(0) if self.replies else 200
        if status == 200:
            self.bodies.append(body)
        payload = json.dumps({"seeded": len(body.splitlines())} if status == 200 else {"error": "busy"}).encode()
        self.send_response(status)
        self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_seeder_retries_busy_answers_and_batches():
    _Flaky.replies, _Flaky.bodies = [503, 429], []
    server, url = _serve(_Flaky)
    try:
        seeder = SandboxSeeder(url, batch_size=10)
        for k in range(25):
            seeder.add("zendesk", "users", {"id": k})
        assert seeder.close() == {"zendesk": {"users": 25}}
    finally:
        server.shutdown()
    assert [len(b.splitlines()) for b in _Flaky.bodies] == [10, 10, 5]
    assert [json.loads(line)["id"] for b in _Flaky.bodies for line in b.splitlines()] == list(range(25))


def test_seeder_reports_a_refusal_as_a_sentence():
    class Refuse(_Flaky):
        replies = [400] * 3

    server, url = _serve(Refuse)
    try:
        seeder = SandboxSeeder(url, batch_size=5)
        try:
            for k in range(20):
                seeder.add("hubspot", "contacts", {"id": str(k)})
            seeder.close()
        except SinkError as exc:
            assert "refused 5 hubspot contacts" in str(exc) and "HTTP 400" in str(exc)
        else:
            raise AssertionError("a refused seed request must fail the run")
    finally:
        server.shutdown()


def test_cli_rejects_a_bad_date_and_an_unreachable_sandbox(gs_home):
    runner = CliRunner()
    bad = runner.invoke(simulate_command, ["--as-of", "26/11/2026"])
    assert bad.exit_code == 2 and "write it as YYYY-MM-DD" in bad.output
    down = runner.invoke(simulate_command, ["--customers", "3", "--sandbox-url", "http://127.0.0.1:9"])
    assert down.exit_code == 1 and "start it with `growth-stack sandbox`" in down.output
    assert not (gs_home / "events").exists()
