"""Start real Growth Stack servers as subprocesses on loopback for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "growth_stack_dagster.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise TimeoutError(f"no answer from {url} within {timeout}s")


@contextlib.contextmanager
def run_server(
    subcommand: str, health_path: str, env: dict[str, str], extra_args: list[str] | None = None,
    port: int | None = None, log_path: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `growth-stack <subcommand> --host 127.0.0.1 --port P`; yield (base_url, process)."""
    port = port or free_port()
    full_env = {**os.environ, **env}
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [*CLI, subcommand, "--host", "127.0.0.1", "--port", str(port), *(extra_args or [])],
        env=full_env, cwd=REPO, stdout=log, stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + health_path, proc)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log_path:
            log.close()


@contextlib.contextmanager
def sandbox_server(home: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`growth-stack sandbox` with its state under `home` (its log in `home/sandbox.log`); yields its URL."""
    with run_server("sandbox", "/_admin/health", {"GROWTH_STACK_HOME": str(home), **(env or {})},
                    log_path=home / "sandbox.log") as (url, _):
        yield url


def reset_sandbox(url: str) -> str:
    """`url`, once the sandbox there has forgotten its objects, faults and write counts (tests share one
    sandbox per module and reset it per test)."""
    requests.post(f"{url}/_admin/reset", timeout=10).raise_for_status()
    return url
