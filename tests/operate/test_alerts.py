"""Run-failure alerts: a real failed run in a real (temporary) Dagster instance, the sensor posting to a
real HTTP receiver on loopback that verifies the Standard Webhooks signature."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from standardwebhooks import Webhook

from growth_stack_dagster.operate import alerts
from growth_stack_dagster.operate.sensors import run_failure_alert_sensor

SECRET = "whsec_" + "dGVzdC1hbGVydC1zZWNyZXQtZm9yLWdyb3d0aC1zdGFjaw=="


class Receiver:
    """An HTTP server on 127.0.0.1 that verifies each POST with the secret and keeps what it got."""

    def __init__(self, secret: str, fail_first: int = 0) -> None:
        self.received: list[dict] = []
        self.rejected = 0
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.attempts += 1
                if receiver.attempts <= fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    payload = Webhook(secret).verify(body, dict(self.headers))
                except Exception:
                    receiver.rejected += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.received.append({"payload": payload, "headers": dict(self.headers)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(SECRET, fail_first=1)
    yield r
    r.close()


@dg.op
def load_that_breaks() -> None:
    raise RuntimeError("the warehouse file is locked by another writer")


@dg.job
def breaking_job() -> None:
    load_that_breaks()


def failure_context(instance: dg.DagsterInstance) -> dg.RunFailureSensorContext:
    result = breaking_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    return dg.build_run_status_sensor_context(
        sensor_name=run_failure_alert_sensor.name, dagster_instance=instance, dagster_run=run,
        dagster_event=result.get_run_failure_event()).for_run_failure()


def test_a_failed_run_posts_a_signed_alert_that_the_receiver_verifies(receiver, monkeypatch) -> None:
    monkeypatch.setenv(alerts.URL_ENV, receiver.url)
    monkeypatch.setenv(alerts.SECRET_ENV, SECRET)
    monkeypatch.setenv(alerts.UI_ENV, "http://127.0.0.1:3999")
    with dg.instance_for_test() as instance:
        context = failure_context(instance)
        run_failure_alert_sensor(context)
    [got] = receiver.received
    assert receiver.attempts == 2 and receiver.rejected == 0  # the 503 was retried with the same message
    data = got["payload"]["data"]
    assert got["payload"]["type"] == "run.failed"
    assert data["job_name"] == "breaking_job" and data["failed_steps"] == ["load_that_breaks"]
    assert data["run_url"] == f"http://127.0.0.1:3999/runs/{context.dagster_run.run_id}"
    assert SECRET not in json.dumps(got)  # the secret signs, it is never sent


def test_a_wrong_secret_is_rejected_by_the_receiver(receiver) -> None:
    other = "whsec_" + "b3RoZXItc2VjcmV0LW5vdC10aGUtcmVjZWl2ZXJzLW9uZQ=="
    with pytest.raises(Exception, match="401"):
        alerts.post_alert(receiver.url, other, alerts.run_failure_message("r1", "j", "boom", []))
    assert receiver.rejected == 1 and receiver.received == []


def test_alerts_are_off_without_a_url_and_a_url_without_secret_is_an_error(monkeypatch) -> None:
    assert alerts.alert_settings({}) is None
    with pytest.raises(alerts.AlertConfigError, match=alerts.SECRET_ENV):
        alerts.alert_settings({alerts.URL_ENV: "http://127.0.0.1:1/x"})
    with pytest.raises(alerts.AlertConfigError, match="not a Standard Webhooks secret"):
        alerts.alert_settings({alerts.URL_ENV: "http://127.0.0.1:1/x", alerts.SECRET_ENV: "whsec_%%%"})
    monkeypatch.delenv(alerts.URL_ENV, raising=False)
    with dg.instance_for_test() as instance:
        result = run_failure_alert_sensor(failure_context(instance))
    assert isinstance(result, dg.SkipReason) and alerts.URL_ENV in result.skip_message
