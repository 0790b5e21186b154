"""A PD deployment for the end-to-end tests: a prefill server (with its bootstrap server), a
decode server and `sglc launch_lb` in front of them, started the way the seed's commands do
(the LB is not told the bootstrap port: it asks the prefill server). The timeouts are cut to
about 10 s (SGLANG_DISAGGREGATION_*), and the heartbeat to 1 s, so faults show quickly."""
import signal
import subprocess
import time

import requests

from test_server_fixture import Server, free_port

PD_ENV = {
    "SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT": "10",
    "SGLANG_DISAGGREGATION_WAITING_TIMEOUT": "10",
    "SGLANG_DISAGGREGATION_HEARTBEAT_INTERVAL": "1",
    "SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE": "2",
}


class EnvServer(Server):
    """A server with the PD timeouts cut; kill9 for the fault tests."""

    def __init__(self, binary, model, extra=(), env=None, prefix=(), host="127.0.0.1",
                 short_timeouts=True):
        base_env = PD_ENV if short_timeouts else {}
        super().__init__(binary, model, extra=extra, api_key=None,
                         env=dict(base_env, **(env or {})), prefix=prefix, host=host)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()


class LB:
    def __init__(self, binary, prefill_url, decode_url, extra=()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = f"/tmp/sglc-lb-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "launch_lb", "--prefill", prefill_url, "--decode", decode_url, "--host",
             "127.0.0.1", "--port", str(self.port), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"launch_lb exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if requests.get(self.base + "/health", timeout=10).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError("launch_lb did not become healthy:\n" + self.logs())

    def logs(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def post(self, path, **kw):
        kw.setdefault("timeout", 120)
        return requests.post(self.base + path, **kw)

    def get(self, path, **kw):
        kw.setdefault("timeout", 120)
        return requests.get(self.base + path, **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Cluster:
    """prefill + decode + LB. prefill_env: extra environment of the prefill server."""

    def __init__(self, binary, model, prefill_env=None, decode_env=None, prefill_prefix=(),
                 prefill_host="127.0.0.1", decode_prefix=(), decode_host="127.0.0.1",
                 extra=(), short_timeouts=True):
        """short_timeouts: the PD timeouts cut to 10 s (tests); False keeps SGLang's 300 s
        (benchmarks of prompts that take longer than that to prefill)."""
        self.bootstrap_port = free_port()
        self.prefill = EnvServer(binary, model, extra=[
            "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port",
            str(self.bootstrap_port), *extra], env=prefill_env, prefix=prefill_prefix,
            host=prefill_host, short_timeouts=short_timeouts)
        self.decode = EnvServer(binary, model, extra=[
            "--disaggregation-mode", "decode", *extra], env=decode_env, prefix=decode_prefix,
            host=decode_host, short_timeouts=short_timeouts)
        self.lb = None
        try:
            self.prefill.wait_ready()
            self.decode.wait_ready()
            self.lb = LB(binary, self.prefill.base, self.decode.base).wait_ready()
        except Exception:
            self.stop()
            raise

    def stop(self):
        rcs = {}
        if self.lb:
            rcs["lb"] = self.lb.stop()
        for name in ("decode", "prefill"):
            srv = getattr(self, name)
            if not srv.log.closed:
                rcs[name] = srv.stop()
        return rcs


def wait_idle(server, timeout=30):
    """Waits until a server has no request running or queued; returns its load report."""
    deadline = time.time() + timeout
    while True:
        load = requests.get(server.base + "/get_load", timeout=10).json()[0]
        if load["num_reqs"] == 0 or time.time() > deadline:
            return load
        time.sleep(0.1)


def used_tokens_after_flush(server):
    """KV slots still in use once the radix cache is emptied (0 when nothing leaked)."""
    wait_idle(server)
    r = requests.post(server.base + "/flush_cache", timeout=30)
    assert r.status_code == 200, r.text
    return requests.get(server.base + "/get_load", timeout=10).json()[0]["num_tokens"]
