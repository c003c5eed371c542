"""TEMPORARY dev override (removed before hand-off): GS_DEV_SANDBOX_ONLY=1 serves only customerio+amplitude."""
import os, socket, subprocess, sys, time
import pytest, requests

if os.environ.get("GS_DEV_SANDBOX_ONLY"):
    @pytest.fixture
    def sandbox_url(gs_home):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
        log = open(gs_home / "sandbox.log", "ab")
        proc = subprocess.Popen([sys.executable, "/tmp/dev_sandbox.py", str(port)], env=dict(os.environ),
                                cwd="/work/main", stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                requests.get(base + "/_admin/health", timeout=1); break
            except requests.RequestException:
                time.sleep(0.05)
        yield base
        proc.terminate(); proc.wait(10); log.close()
