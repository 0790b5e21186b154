"""Starts `sglc launch_server` on a free port for the server tests (test_openai_*, test_native_*,
test_server_*), the way users run it, and stops it with SIGTERM afterwards. One server is shared
by the whole session (the model loads once); it runs with an API key, metrics and the cache
report on, and a small KV pool so it costs little memory. At the end of the session the
server must exit 0 on SIGTERM."""
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

API_KEY = "sk-sglc-test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, model, extra=(), api_key=API_KEY, env=None, prefix=(),
                 host="127.0.0.1"):
        """env: extra environment variables; prefix: a command to run the server under (such
        as `ip netns exec NS`); host: --host, and where the tests reach it."""
        self.port = free_port()
        self.base = f"http://{host}:{self.port}"
        self.api_key = api_key
        args = [*prefix, binary, "launch_server", "--model-path", model, "--host", host,
                "--port", str(self.port), "--max-total-tokens", "32768", "--random-seed", "1",
                *extra]
        if api_key:
            args += ["--api-key", api_key]
        self.log_path = f"/tmp/sglc-server-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))

    def headers(self):
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if requests.get(self.base + "/health", timeout=30).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready:\n" + self.logs())

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def get(self, path, **kw):
        return requests.get(self.base + path, headers=self.headers(), timeout=120, **kw)

    def post(self, path, **kw):
        return requests.post(self.base + path, headers=self.headers(), timeout=120, **kw)

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(sglc_bin, default_model):
    srv = Server(sglc_bin, default_model, extra=["--enable-metrics", "--enable-cache-report"])
    try:
        srv.wait_ready()
    except RuntimeError:
        srv.stop()
        raise
    yield srv
    rc = srv.stop()
    assert rc == 0, srv.logs()[-4000:]


@pytest.fixture(scope="session")
def client(server):
    openai = pytest.importorskip("openai")
    return openai.Client(base_url=server.base + "/v1", api_key=server.api_key, max_retries=0,
                         timeout=120)


def idle(server, timeout=60):
    """Waits until no request runs or waits; returns the load report."""
    deadline = time.time() + timeout
    while True:
        load = server.get("/get_load").json()[0]
        if load["num_reqs"] == 0 or time.time() > deadline:
            return load
        time.sleep(0.1)
