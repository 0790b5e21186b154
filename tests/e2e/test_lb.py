"""End-to-end tests of `sglc launch_lb` (SGLang's mini load balancer for PD disaggregation)
against small fake prefill and decode servers written here: each records the JSON it receives
and answers /generate (whole or as an SSE stream), /get_server_info, /get_load, /health and the
other routes the LB uses, so every rule of the protocol can be checked without a model."""
import json
import os
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

ROOM_MAX = 2**63 - 1
PREFILL_LP = [[-0.5, 11, None], [-1.5, 12, None]]
DECODE_LP = [[-2.5, 13, None]]


class Fake:
    """A fake SGLang server. Attributes steer its answers; `got` records (path, json)."""

    def __init__(self, name, mode=None, bootstrap_port=None, api_key=None):
        self.name, self.mode, self.bootstrap_port = name, mode, bootstrap_port
        self.api_key = api_key     # as `--api-key`: every route but /health needs it
        self.got = []
        self.headers = []          # (path, {name.lower(): value}) of every request
        self.health = 200
        self.info_status = 200
        self.load = 0
        self.flush_status = 200
        self.gen_status = 200
        self.hang = False          # /generate never answers (until the test ends)
        self.events = 3            # SSE events per stream
        self.event_gap = 0.0       # seconds between them
        self.sep = b"\n\n"          # what ends an SSE event
        self.disconnected = threading.Event()
        self.stop = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, obj, ctype="application/json"):
                body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def denied(self):
                fake.headers.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if not fake.api_key or self.path == "/health" or \
                        self.headers.get("Authorization") == f"Bearer {fake.api_key}":
                    return False
                self.reply(401, {"error": {"message": "Unauthorized", "code": 401}})
                return True

            def do_GET(self):
                fake.got.append((self.path, None))
                if self.denied():
                    return
                p = self.path
                if p in ("/health", "/health_generate"):
                    self.reply(fake.health, b"", "text/plain")
                elif p == "/get_server_info":
                    self.reply(fake.info_status, {
                        "name": fake.name, "disaggregation_mode": fake.mode or "null",
                        "disaggregation_bootstrap_port": fake.bootstrap_port,
                        "internal_states": [{"last_gen_throughput": 1.0, "who": fake.name}]})
                elif p == "/get_load":
                    self.reply(200, [{"dp_rank": 0, "num_reqs": fake.load,
                                      "num_waiting_reqs": 0, "num_tokens": 0}])
                elif p == "/v1/models":
                    self.reply(200, {"object": "list", "data": [{"id": fake.name}]})
                elif p.startswith("/v1/models/"):
                    mid = p[len("/v1/models/"):]
                    if mid == fake.name:
                        self.reply(200, {"id": mid, "object": "model", "owned_by": "sglang"})
                    else:
                        self.reply(404, {"error": {"message": f"no model {mid}"}})
                elif p == "/get_model_info":
                    self.reply(200, {"model_path": fake.name})
                else:
                    self.reply(404, {"error": "no"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n) or b"null")
                fake.got.append((self.path, body))
                if self.denied():
                    return
                if self.path == "/flush_cache":
                    self.reply(fake.flush_status, b"ok", "text/plain")
                    return
                while fake.hang and not fake.stop.wait(0.05):
                    pass
                if fake.gen_status != 200:
                    self.reply(fake.gen_status, {"error": {"message": "boom"}})
                elif body.get("stream"):
                    self.stream(body)
                else:
                    self.reply(200, fake.answer(body, self.path))

            def stream(self, body):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                lp = PREFILL_LP if fake.mode == "prefill" else DECODE_LP
                try:
                    for i in range(fake.events):
                        ev = {"text": f"{fake.name}-{i}", "index": 0,
                              "meta_info": {"input_token_logprobs": lp, "n": i}}
                        self.chunk(b"data: " + json.dumps(ev).encode() + fake.sep)
                        if fake.stop.wait(fake.event_gap):
                            return
                    self.chunk(b"data: [DONE]" + fake.sep)
                    self.chunk(b"")
                except (BrokenPipeError, ConnectionResetError):
                    fake.disconnected.set()

            def chunk(self, data):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, body, path):
        lp = PREFILL_LP if self.mode == "prefill" else DECODE_LP
        one = lambda i: {"text": f"{self.name}-out-{i}", "path": path,
                         "meta_info": {"input_token_logprobs": lp}}
        if isinstance(body.get("text"), list):
            return [one(i) for i in range(len(body["text"]))]
        return one(0)

    def gens(self, n=0):
        """The generation requests received; waits (up to 3 s) until there are n of them, as the
        LB may answer from decode before the prefill server has read its copy."""
        deadline = time.time() + 3
        while True:
            out = [b for p, b in self.got if b is not None and p != "/flush_cache"]
            if len(out) >= n or time.time() > deadline:
                return out
            time.sleep(0.02)

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LB:
    def __init__(self, sglc_bin, args, tmp_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp_path / "lb.log", "w+")
        self.p = subprocess.Popen([sglc_bin, "launch_lb", "--host", "127.0.0.1", "--port",
                                   str(self.port)] + args, stdout=self.log,
                                  stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            assert self.p.poll() is None, self.logtext()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("LB did not start: " + self.logtext())

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def post(self, path, body, **kw):
        return requests.post(self.url + path, json=body, timeout=kw.pop("timeout", 10), **kw)

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=10, **kw)

    def close(self):
        self.p.terminate()
        try:
            rc = self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise
        log = self.logtext()
        assert rc == 0, log  # a leak found by LeakSanitizer makes it 23
        assert "runtime error:" not in log and "Sanitizer" not in log, log


@pytest.fixture
def env(sglc_bin, tmp_path):
    """env(prefills, decodes, args) starts an LB over Fake servers; all are stopped after."""
    made = []

    def start(prefill=1, decode=1, args=(), ports=None, modes=None):
        pre = [Fake(f"P{i}", "prefill", 6000 + i) for i in range(prefill)]
        dec = [Fake(f"D{i}", "decode") for i in range(decode)]
        made.extend(pre + dec)
        a = []
        for i, f in enumerate(pre):
            a += ["--prefill", f.url] + ([str(ports[i])] if ports and ports[i] else [])
        for f in dec:
            a += ["--decode", f.url]
        lb = LB(sglc_bin, a + list(args), tmp_path)
        made.append(lb)
        return lb, pre, dec

    yield start
    for m in reversed(made):
        m.close()


def check_bootstrap(body, port):
    assert body["bootstrap_host"] == "127.0.0.1"
    assert body["bootstrap_port"] == port
    assert isinstance(body["bootstrap_room"], int) and 0 <= body["bootstrap_room"] <= ROOM_MAX


# ---- command line ----

@pytest.mark.parametrize("args,needle", [
    (["--bogus"], "--bogus"),
    (["--prefill", "http://a:1", "--decode", "http://b:2", "--policy", "po2"], "po2"),
    (["--prefill", "http://a:1", "--decode", "http://b:2", "--policy", "fastest"], "--policy"),
    (["--prefill", "http://a:1", "--decode", "http://b:2", "--port", "x"], "--port"),
    (["--prefill", "http://a:1", "--decode", "http://b:2", "--timeout", "0"], "--timeout"),
    (["--prefill", "http://a:1", "70000", "--decode", "http://b:2"], "--prefill"),
    (["--prefill", "ftp://a:1", "--decode", "http://b:2"], "--prefill"),
    (["--prefill", "http://a:1", "--decode", "http://b:2", "--prefill-bootstrap-ports", "1", "2"],
     "--prefill-bootstrap-ports"),
    (["--prefill", "http://a:1", "5", "--decode", "http://b:2", "--prefill-bootstrap-ports",
      "6"], "--prefill-bootstrap-ports"),
    (["--decode", "http://b:2"], "--prefill"),
    (["--prefill", "http://a:1", "--decode"], "--decode"),
])
def test_bad_flags_exit_2(sglc_bin, args, needle):
    r = subprocess.run([sglc_bin, "launch_lb"] + args, capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr


def test_help_lists_flags(sglc_bin):
    r = subprocess.run([sglc_bin, "launch_lb", "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0
    for flag in ("--prefill", "--decode", "--prefill-bootstrap-ports", "--host", "--port",
                 "--policy", "--timeout"):
        assert flag in r.stdout


# ---- the protocol ----

def test_generate_injects_bootstrap_and_returns_decode(env):
    lb, (p,), (d,) = env(ports=[7777])
    r = lb.post("/generate", {"text": "hi", "sampling_params": {"max_new_tokens": 4}})
    assert r.status_code == 200
    assert r.json() == {"text": "D0-out-0", "path": "/generate",
                        "meta_info": {"input_token_logprobs": DECODE_LP}}
    (pb,), (db,) = p.gens(1), d.gens()
    assert pb == db  # the same JSON to both
    check_bootstrap(db, 7777)
    assert db["text"] == "hi" and db["sampling_params"] == {"max_new_tokens": 4}


def test_openai_routes_forwarded(env):
    lb, (p,), (d,) = env(ports=[7777])
    for path in ("/v1/completions", "/v1/chat/completions"):
        r = lb.post(path, {"model": "m", "prompt": "x"})
        assert r.status_code == 200 and r.json()["path"] == path
    assert [b["bootstrap_port"] for b in p.gens(2)] == [7777, 7777]
    rooms = [b["bootstrap_room"] for b in d.gens()]
    assert rooms == [b["bootstrap_room"] for b in p.gens()] and rooms[0] != rooms[1]


def test_bootstrap_port_discovered_from_server_info(env):
    lb, (p,), (d,) = env()  # no port on the command line: P0 reports 6000
    r = lb.post("/generate", {"text": "hi"})
    assert r.status_code == 200
    check_bootstrap(d.gens()[0], 6000)
    assert any(path == "/get_server_info" for path, _ in p.got)


def test_bootstrap_port_null_when_server_is_not_prefill(sglc_bin, tmp_path):
    q, d = Fake("Q", None, 8998), Fake("D", "decode")  # a server without PD mode
    lb = LB(sglc_bin, ["--prefill", q.url, "--decode", d.url], tmp_path)
    try:
        r = lb.post("/generate", {"text": "hi"})
        assert r.status_code == 200
        check_bootstrap(d.gens()[0], None)
        assert "bootstrap_port null" in lb.logtext()
    finally:
        lb.close(), q.close(), d.close()


def test_bootstrap_port_discovery_retried(sglc_bin, tmp_path):
    q, d = Fake("P", "prefill", 6657), Fake("D", "decode")
    q.info_status = 503  # not ready yet
    lb = LB(sglc_bin, ["--prefill", q.url, "--decode", d.url], tmp_path)
    try:
        r = lb.post("/generate", {"text": "hi"})
        assert r.status_code == 502 and "error" in r.json()  # no guess, a clean error
        assert d.gens() == []
        q.info_status = 200
        r = lb.post("/generate", {"text": "hi"})
        assert r.status_code == 200
        check_bootstrap(d.gens()[0], 6657)
    finally:
        lb.close(), q.close(), d.close()


def test_prefill_bootstrap_ports_list_by_position(env):
    lb, pre, (d,) = env(prefill=2, args=["--prefill-bootstrap-ports", "7001", "7002",
                                         "--policy", "round_robin"])
    for _ in range(2):
        assert lb.post("/generate", {"text": "x"}).status_code == 200
    assert pre[0].gens(1)[0]["bootstrap_port"] == 7001
    assert pre[1].gens(1)[0]["bootstrap_port"] == 7002


def test_return_logprob_merged(env):
    lb, (p,), (d,) = env(ports=[7777])
    r = lb.post("/generate", {"text": "hi", "return_logprob": True})
    assert r.json()["meta_info"]["input_token_logprobs"] == PREFILL_LP + DECODE_LP
    r = lb.post("/generate", {"text": "hi"})
    assert r.json()["meta_info"]["input_token_logprobs"] == DECODE_LP


def test_batch_gets_lists(env):
    lb, (p,), (d,) = env(ports=[7777])
    r = lb.post("/generate", {"text": ["a", "b", "c"], "return_logprob": True})
    assert r.status_code == 200
    out = r.json()
    assert [o["text"] for o in out] == ["D0-out-0", "D0-out-1", "D0-out-2"]
    assert all(o["meta_info"]["input_token_logprobs"] == PREFILL_LP + DECODE_LP for o in out)
    db = d.gens()[0]
    assert db == p.gens(1)[0]
    assert db["bootstrap_host"] == ["127.0.0.1"] * 3 and db["bootstrap_port"] == [7777] * 3
    assert len(set(db["bootstrap_room"])) == 3
    lb.post("/generate", {"input_ids": [[1, 2], [3]]})
    assert len(d.gens()[1]["bootstrap_room"]) == 2
    lb.post("/generate", {"input_ids": [1, 2]})
    assert isinstance(d.gens()[2]["bootstrap_room"], int)


def sse_events(resp):
    for line in resp.iter_lines():
        if line.startswith(b"data: "):
            yield line[6:].decode()


def test_stream_relayed_incrementally(env):
    lb, (p,), (d,) = env(ports=[7777])
    d.events, d.event_gap = 4, 0.4
    t0 = time.time()
    with requests.post(lb.url + "/generate", json={"text": "hi", "stream": True}, stream=True,
                       timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        got, first_at = [], None
        for ev in sse_events(r):
            first_at = first_at or time.time() - t0
            got.append(ev)
    assert first_at < 1.0  # the whole stream takes 1.6 s
    assert got[-1] == "[DONE]"
    assert [json.loads(e)["text"] for e in got[:-1]] == ["D0-0", "D0-1", "D0-2", "D0-3"]


def test_stream_logprobs_merged(env):
    lb, (p,), (d,) = env(ports=[7777])
    with requests.post(lb.url + "/generate", stream=True, timeout=10,
                       json={"text": "hi", "stream": True, "return_logprob": True}) as r:
        evs = list(sse_events(r))
    assert evs[-1] == "[DONE]"
    for e in evs[:-1]:
        assert json.loads(e)["meta_info"]["input_token_logprobs"] == PREFILL_LP + DECODE_LP
    assert len(evs) == 4


def test_round_robin_alternates(env):
    lb, pre, dec = env(prefill=2, decode=2, ports=[7001, 7002], args=["--policy", "round_robin"])
    for _ in range(4):
        assert lb.post("/generate", {"text": "x"}).status_code == 200
    assert [len(f.gens(2)) for f in pre + dec] == [2, 2, 2, 2]
    # each decode server met both prefill servers: the two sides rotate independently
    assert sorted(b["bootstrap_port"] for b in dec[0].gens() + dec[1].gens()) == [7001, 7001,
                                                                                 7002, 7002]


def test_least_load_picks_lighter(env):
    lb, pre, dec = env(prefill=2, decode=2, ports=[7001, 7002], args=["--policy", "least_load"])
    pre[0].load, dec[1].load = 9, 9
    for _ in range(3):
        assert lb.post("/generate", {"text": "x"}).status_code == 200
    assert [len(f.gens(n)) for f, n in zip(pre + dec, [0, 3, 3, 0])] == [0, 3, 3, 0]
    pre[0].load, pre[1].load = 0, 5
    time.sleep(0.3)  # the loads read for the requests above are no longer fresh
    assert lb.post("/generate", {"text": "x"}).status_code == 200
    assert len(pre[0].gens(1)) == 1


def test_fan_out_routes(env):
    lb, pre, dec = env(prefill=2, decode=1, ports=[7001, 7002])
    assert lb.get("/health_generate").status_code == 200
    assert lb.post("/flush_cache", {}).status_code == 200
    assert all(any(p == "/flush_cache" for p, _ in f.got) for f in pre + dec)
    dec[0].health = 503
    r = lb.get("/health_generate")
    assert r.status_code == 503 and dec[0].url in r.json()["error"]["message"]
    pre[1].flush_status = 400
    assert lb.post("/flush_cache", {}).status_code == 400
    info = lb.get("/get_server_info").json()
    assert [i["name"] for i in info["prefill"]] == ["P0", "P1"]
    assert [i["name"] for i in info["decode"]] == ["D0"]
    assert info["internal_states"] == [{"last_gen_throughput": 1.0, "who": "D0"}]
    assert lb.get("/v1/models").json()["data"][0]["id"] == "P0"
    assert lb.get("/get_model_info").json() == {"model_path": "P0"}
    load = lb.get("/get_load").json()
    assert len(load["prefill"]) == 2 and load["decode"][0]["load"][0]["num_reqs"] == 0


def test_health_needs_a_pair(env):
    lb, (p,), (d,) = env(ports=[7777])
    assert lb.get("/health").status_code == 200
    d.health = 503
    r = lb.get("/health")
    assert r.status_code == 503
    assert "no healthy prefill/decode pair" in r.json()["error"]["message"]
    d.health = 200
    assert lb.get("/health").status_code == 200
    p.close()
    assert lb.get("/health").status_code == 503


def test_prefill_down_clean_error(sglc_bin, tmp_path):
    d = Fake("D", "decode")
    d.hang = True  # decode would wait for a prefill that never comes
    lb = LB(sglc_bin, ["--prefill", f"http://127.0.0.1:{free_port()}", "7777", "--decode",
                       d.url], tmp_path)
    try:
        t0 = time.time()
        r = lb.post("/generate", {"text": "hi"})
        assert time.time() - t0 < 5
        assert r.status_code == 502
        err = r.json()["error"]
        assert "prefill" in err["message"] and err["code"] == 502
        r = lb.post("/v1/chat/completions", {"messages": [], "stream": True})
        assert r.status_code == 502
    finally:
        lb.close(), d.close()


def test_decode_hang_bounded_by_timeout(sglc_bin, tmp_path):
    p, d = Fake("P", "prefill", 6000), Fake("D", "decode")
    d.hang = True
    lb = LB(sglc_bin, ["--prefill", p.url, "--decode", d.url, "--timeout", "1.5"], tmp_path)
    try:
        t0 = time.time()
        r = lb.post("/generate", {"text": "hi"}, timeout=15)
        assert time.time() - t0 < 6
        assert r.status_code == 504 and "timeout" in r.json()["error"]["message"]
    finally:
        lb.close(), p.close(), d.close()


def test_client_disconnect_mid_stream(env):
    lb, (p,), (d,) = env(ports=[7777])
    d.events, d.event_gap = 50, 0.1
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    body = json.dumps({"text": "hi", "stream": True}).encode()
    s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert b"data: " in s.recv(4096)
    s.close()
    assert d.disconnected.wait(5)  # the LB cancelled its call to decode
    assert lb.post("/generate", {"text": "again"}).status_code == 200
    assert lb.p.poll() is None


def test_register_adds_server(env):
    lb, (p,), (d,) = env(ports=[7777], args=["--policy", "round_robin"])
    d2 = Fake("D9", "decode")
    try:
        r = lb.post("/register", {"mode": "decode", "registry_url": d2.url})
        assert r.status_code == 200
        for _ in range(2):
            lb.post("/generate", {"text": "x"})
        assert len(d2.gens()) == 1 and len(d.gens()) == 1
        assert lb.post("/register", {"mode": "both", "registry_url": d2.url}).status_code == 400
        assert lb.post("/register", {"mode": "decode", "registry_url": "x"}).status_code == 400
    finally:
        d2.close()


def test_decode_error_status_relayed(env):
    lb, (p,), (d,) = env(ports=[7777])
    d.gen_status = 400
    r = lb.post("/generate", {"text": "hi"})
    assert r.status_code == 400 and r.json() == {"error": {"message": "boom"}}
    # a refusal needs nothing from prefill (left waiting for a decode that will never come),
    # and a stream refused with JSON is answered whole
    p.hang = True
    for stream in (False, True):
        t0 = time.time()
        r = lb.post("/generate", {"text": "hi", "stream": stream, "return_logprob": True})
        assert time.time() - t0 < 2
        assert r.status_code == 400 and r.json() == {"error": {"message": "boom"}}
        assert r.headers["Content-Type"] == "application/json"


# ---- client headers ----

AUTH = {"Authorization": "Bearer sekrit"}


def test_headers_forwarded(env):
    lb, (p,), (d,) = env(ports=[7777])
    hdrs = {**AUTH, "X-Request-Id": "rid-42", "Accept": "application/json",
            "Connection": "keep-alive, X-Secret", "X-Secret": "hop", "Proxy-Authorization": "no"}
    for stream in (False, True):
        r = lb.post("/generate", {"text": "hi", "stream": stream}, headers=hdrs)
        assert r.status_code == 200
    for f in (p, d):
        # the LB answers with decode's reply; prefill's copy may still be on its way
        deadline = time.time() + 10
        while len([1 for path, _ in f.headers if path == "/generate"]) < 2 and \
                time.time() < deadline:
            time.sleep(0.05)
        got = [h for path, h in f.headers if path == "/generate"]
        assert len(got) == 2, f.headers
        for h in got:
            assert h["authorization"] == "Bearer sekrit" and h["x-request-id"] == "rid-42"
            assert h["accept"] == "application/json"
            assert h["host"] == f.url[len("http://"):]  # the upstream's, not the LB's
            assert "x-secret" not in h and "proxy-authorization" not in h
            assert "transfer-encoding" not in h and h.get("connection") != "keep-alive, X-Secret"


def test_api_key_backends_through_lb(sglc_bin, tmp_path):
    # no bootstrap port on the command line: the LB's own discovery (no credentials) is refused,
    # so the port is asked with the client's Authorization
    p = Fake("P0", "prefill", 6000, api_key="sekrit")
    d = Fake("D0", "decode", api_key="sekrit")
    lb = LB(sglc_bin, ["--prefill", p.url, "--decode", d.url, "--policy", "least_load"], tmp_path)
    try:
        assert lb.post("/generate", {"text": "hi"}).status_code == 401  # no key: refused
        r = lb.post("/generate", {"text": "hi"}, headers=AUTH)
        assert r.status_code == 200 and r.json()["text"] == "D0-out-0"
        check_bootstrap(d.gens()[-1], 6000)
        r = lb.post("/v1/chat/completions", {"messages": [], "stream": True}, headers=AUTH)
        assert r.status_code == 200 and b"D0-0" in r.content
        assert lb.get("/v1/models").status_code == 401
        assert lb.get("/v1/models", headers=AUTH).json()["data"][0]["id"] == "P0"
        assert lb.get("/get_model_info", headers=AUTH).json() == {"model_path": "P0"}
        assert lb.get("/get_model_info").status_code == 401
        assert lb.get("/v1/models/P0", headers=AUTH).json()["id"] == "P0"
        assert lb.get("/health_generate", headers=AUTH).status_code == 200
        assert lb.get("/health_generate").status_code == 503
        assert lb.post("/flush_cache", {}, headers=AUTH).status_code == 200
        info = lb.get("/get_server_info", headers=AUTH).json()
        assert [i.get("name") for i in info["prefill"] + info["decode"]] == ["P0", "D0"]
        time.sleep(0.3)  # least_load reads the loads again, with this request's credentials
        assert lb.post("/generate", {"text": "hi"}, headers=AUTH).status_code == 200
        for f in (p, d):
            loads = [h for path, h in f.headers if path == "/get_load"]
            assert loads[-1].get("authorization") == "Bearer sekrit"
    finally:
        lb.close(), p.close(), d.close()


# ---- routes ----

def test_model_by_id(env):
    lb, pre, (d,) = env(prefill=2, ports=[7001, 7002])
    r = lb.get("/v1/models/P0")
    assert r.status_code == 200 and r.json() == {"id": "P0", "object": "model",
                                                 "owned_by": "sglang"}
    r = lb.get("/v1/models/org%2Fname%20x")
    assert r.status_code == 404 and "no model" in r.json()["error"]["message"]
    assert ("/v1/models/org/name%20x", None) in pre[0].got  # escaped again, from P0 only
    assert not any(path.startswith("/v1/models") for path, _ in pre[1].got + d.got)


# ---- SSE framing ----

def test_stream_crlf_events_merged(env):
    lb, (p,), (d,) = env(ports=[7777])
    p.sep = d.sep = b"\r\n\r\n"
    with requests.post(lb.url + "/generate", stream=True, timeout=10,
                       json={"text": "hi", "stream": True, "return_logprob": True}) as r:
        raw = b"".join(r.iter_content(None))
    evs = [e for e in raw.split(b"\r\n\r\n") if e]
    assert evs[-1] == b"data: [DONE]" and len(evs) == 4, raw
    for e in evs[:-1]:
        assert e.startswith(b"data: ") and b"\n" not in e
        assert json.loads(e[6:])["meta_info"]["input_token_logprobs"] == PREFILL_LP + DECODE_LP


# ---- least_load's cached loads ----

def n_loads(f):
    return sum(path == "/get_load" for path, _ in f.got)


def test_least_load_burst_shares_load_reads(env):
    lb, pre, dec = env(prefill=2, decode=2, ports=[7001, 7002], args=["--policy", "least_load"])
    n = 12
    with ThreadPoolExecutor(n) as ex:
        codes = list(ex.map(lambda i: lb.post("/generate", {"text": f"x{i}"}).status_code,
                            range(n)))
    assert codes == [200] * n
    # asked afresh per request, each server would have seen 12 /get_load
    assert all(n_loads(f) <= 4 for f in pre + dec), [n_loads(f) for f in pre + dec]
    # the LB counts what it sent since the last read, so a burst does not pile onto one server
    assert all(len(f.gens(3)) >= 3 for f in pre + dec), [len(f.gens()) for f in pre + dec]
    before = [n_loads(f) for f in pre + dec]
    time.sleep(0.3)  # past the cache's lifetime: read again
    assert lb.post("/generate", {"text": "y"}).status_code == 200
    assert [n_loads(f) for f in pre + dec] == [b + 1 for b in before]


# ---- upstreams that misbehave ----

class Raw:
    """A server that reads a request and then answers as `mode` says, HTTP or not."""

    def __init__(self, mode="garbage"):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.closed = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            c.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                more = c.recv(65536)
                if not more:
                    return
                data += more
            head, body = data.split(b"\r\n\r\n", 1)
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    want = int(line.split(b":")[1])
                    while len(body) < want:
                        body += c.recv(65536)
            getattr(self, "mode_" + self.mode)(c)
        except OSError:
            pass
        finally:
            c.close()

    def mode_garbage(self, c):
        c.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\r\n{]")

    def mode_close(self, c):
        pass

    def mode_halfclose(self, c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"te")
        c.shutdown(socket.SHUT_WR)
        while c.recv(65536):
            pass

    def mode_huge(self, c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000000000\r\n\r\n" + b"x" * 65536)
        while c.recv(65536):
            pass

    def mode_huge_chunked(self, c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n%s\r\n" % (1 << 20, b"y" * (1 << 20))
        for _ in range(100):  # 100 MiB, past the LB's 64 MiB cap
            c.sendall(piece)

    def mode_slow_ok(self, c):
        time.sleep(1.0)  # answers well, after decode has begun its stream
        body = b'{"text": "ok", "meta_info": {}}'
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def mode_bad_chunk(self, c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        ev = b'data: {"text": "ok", "index": 0, "meta_info": {}}\n\n'
        c.sendall(b"%x\r\n%s\r\nzz-not-a-size\r\n" % (len(ev), ev))
        time.sleep(0.2)

    def close(self):
        self.closed = True
        self.sock.close()


def test_misbehaving_upstreams_get_clean_errors(sglc_bin, tmp_path):
    p, d = Raw(), Raw()
    lb = LB(sglc_bin, ["--prefill", p.url, "7777", "--decode", d.url, "--timeout", "5"],
            tmp_path)
    try:
        for mode in ("garbage", "close", "halfclose", "huge", "huge_chunked"):
            p.mode = d.mode = mode
            for path, body in (("/generate", {"text": "x"}),
                               ("/v1/completions", {"prompt": "x", "stream": True}),
                               ("/generate", {"text": "x", "return_logprob": True})):
                if body.get("stream") and mode.startswith("huge"):
                    continue  # a stream's body is relayed as it comes, not collected
                r = lb.post(path, body, timeout=20)
                assert r.status_code == 502, (mode, path, r.status_code, r.text[:200])
                err = r.json()["error"]
                assert err["code"] == 502 and err["message"], (mode, err)
            r = lb.get("/v1/models")
            assert r.status_code == 502 and r.json()["error"]["message"], (mode, r.text[:200])
            r = lb.get("/get_server_info")
            assert r.status_code == 200 and "error" in r.json()["decode"][0]
            assert lb.get("/health").status_code == 503
        # a stream that breaks after its first event ends with an error event
        p.mode, d.mode = "slow_ok", "bad_chunk"
        with requests.post(lb.url + "/generate", json={"text": "x", "stream": True},
                           stream=True, timeout=20) as r:
            assert r.status_code == 200
            evs = list(sse_events(r))
        assert json.loads(evs[0])["text"] == "ok"
        assert json.loads(evs[-1])["error"]["code"] == 502
        assert lb.p.poll() is None
    finally:
        lb.close(), p.close(), d.close()
