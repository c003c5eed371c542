"""`growth-stack collector`: run the HTTP collector (one or several worker processes).

The parent binds the socket, recovers open files a crashed collector left behind, then forks
the workers, which share the listening socket (the kernel spreads connections). Each worker
has its own open files. Workers die with the parent (PR_SET_PDEATHSIG), so killing the
collector with SIGKILL never leaves an orphan writing files or holding the port.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

import click

log = logging.getLogger("growth_stack.collector")

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent still stops workers on SIGTERM
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def bind_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket, shared by every worker process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _serve_one(app_factory: Callable[[], object], sock: socket.socket) -> None:
    import uvicorn

    app = app_factory()
    # Parsed JSON is acyclic and freed by refcount: rarer cyclic GC, and never over startup objects.
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    # limit_concurrency bounds memory (each request <= 500 KB); past it uvicorn answers 503, which SDKs retry.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            backlog=2048, limit_concurrency=1000, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])


def serve(app_factory: Callable[[], object], host: str, port: int, workers: int,
          before_respawn: Callable[[], object] | None = None) -> None:
    """Serve `app_factory()` on host:port with `workers` processes (1 = in this process).

    A worker that dies is replaced, after `before_respawn()` (e.g. recovering its open files).
    """
    sock = bind_socket(host, port)
    if workers <= 1:
        _serve_one(app_factory, sock)
        return
    parent = os.getpid()
    children: dict[int, int] = {}

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _die_with_parent(parent)
                _serve_one(app_factory, sock)
            except BaseException:
                log.exception("collector worker failed")
                code = 1
            finally:
                os._exit(code)
        children[pid] = slot

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(workers):
        spawn(slot)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        slot = children.pop(pid, None)
        if slot is not None and not stopping:
            log.error("collector worker %d exited (status %d); starting a new one", pid, status)
            time.sleep(0.5)
            if before_respawn is not None:
                try:
                    before_respawn()
                except Exception:
                    log.exception("could not prepare a new worker")
            spawn(slot)
    sock.close()


def development_credentials_in_use() -> list[str]:
    """Names of the collector's credential variables that still trust a built-in development value: any
    write key or webhook secret the project ships (`config.development_secret_values`), also when it is one
    of several in a rotation, and also when it was copied under another variable (e.g. the stack's
    Standard Webhooks secret set as STRIPE_WEBHOOK_SECRET)."""
    from growth_stack_dagster import config
    from growth_stack_dagster.collector.signatures import split_secrets

    built_in = config.development_secret_values()
    trusted = {
        "GROWTH_STACK_WRITE_KEYS": list(config.write_keys()),
        "STRIPE_WEBHOOK_SECRET": split_secrets(config.stripe_webhook_secret()),
        "CUSTOMERIO_WEBHOOK_SIGNING_KEY": split_secrets(config.customerio_webhook_signing_key()),
        "GROWTH_STACK_WEBHOOK_SECRET": split_secrets(config.standard_webhook_secret()),
        "HUBSPOT_CLIENT_SECRET": split_secrets(config.hubspot_client_secret()),
    }
    return [name for name, values in trusted.items() if built_in.intersection(values)]


def default_workers() -> int:
    """`$GROWTH_STACK_COLLECTOR_WORKERS`, else one per CPU (at most 4)."""
    env = os.environ.get("GROWTH_STACK_COLLECTOR_WORKERS")
    return int(env) if env else max(1, min(4, os.cpu_count() or 1))


@click.command("collector")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=None, type=int,
              help="Worker processes. Default: $GROWTH_STACK_COLLECTOR_WORKERS or one per CPU (max 4).")
@click.option("--allow-development-keys", is_flag=True,
              help="Listen on a non-loopback address even though built-in development write keys or "
                   "webhook secrets are in use (throwaway machines only).")
def collector_command(host: str, port: int, workers: int | None, allow_development_keys: bool) -> None:
    """Accept Segment/RudderStack tracking calls and signed webhooks; append them durably to
    event files under $GROWTH_STACK_HOME/events.

    \b
    Write keys: GROWTH_STACK_WRITE_KEYS (source=key,...). Webhook secrets: STRIPE_WEBHOOK_SECRET,
    CUSTOMERIO_WEBHOOK_SIGNING_KEY, GROWTH_STACK_WEBHOOK_SECRET, HUBSPOT_CLIENT_SECRET (comma-separated during a rotation).
    Files close after GROWTH_STACK_COLLECTOR_FILE_SECONDS (5) or GROWTH_STACK_COLLECTOR_FILE_MB (64);
    requests get 503 while free disk is below GROWTH_STACK_COLLECTOR_MIN_FREE_MB (100).
    Refuses a non-loopback --host while any of these is still a development default.
    """
    from growth_stack_dagster.bind import refuse_public_bind

    if not allow_development_keys:  # checked before anything is created or bound
        try:
            refuse_public_bind(host, development_credentials_in_use(), "--allow-development-keys")
        except ValueError as exc:  # a malformed GROWTH_STACK_WRITE_KEYS
            raise click.ClickException(str(exc)) from None
    from growth_stack_dagster.collector.app import CollectorSettings, build_app
    from growth_stack_dagster.collector.writer import recover_open_files

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = CollectorSettings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    settings.events_dir.mkdir(parents=True, exist_ok=True)
    recovered = recover_open_files(settings.events_dir)
    if recovered:
        log.info("recovered %d event file(s) left open by a previous run", len(recovered))
    workers = workers or default_workers()
    log.info("collector on http://%s:%d with %d worker(s), writing %s", host, port, workers, settings.events_dir)
    sys.stdout.flush()
    serve(lambda: build_app(settings), host, port, workers,
          before_respawn=lambda: recover_open_files(settings.events_dir))
