"""Safe by default: loopback bind, Host/Origin checks, auth beyond loopback, SSRF-proof webhooks, masked secrets."""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts import AlertEngine, AlertRule, RuleError, WebhookSender
from alerts.destinations import DestinationError, check_destination, mask_url, post_json
from config import ConfigError, load_settings
from pairs import to_csv
from server.security import InsecureBindError, SecurityPolicy, policy_for
from storage.store import TickStore
from tests.serving import serve_app

TOKEN = "s3cret-token-0123456789abcdef"


# -- policy (unit) ------------------------------------------------------------------------


def test_loopback_needs_no_token_and_anything_else_does():
    p = policy_for("127.0.0.1", "")
    assert p.host_allowed("localhost:8501") and p.host_allowed("127.0.0.1:8501") and p.host_allowed("[::1]:8501")
    for bad in ("evil.example", "evil.example:8501", "127.0.0.1.nip.io", "localhost.evil.example", "", None, "a@b", "x/y"):
        assert not p.host_allowed(bad), bad
    for address in ("0.0.0.0", "::", "", "192.0.2.10"):
        with pytest.raises(InsecureBindError, match="ALPHASTREAM_AUTH_TOKEN"):
            policy_for(address, "")
    q = policy_for("192.0.2.10", TOKEN, ["dash.example.com", "*.corp.example"])
    assert q.host_allowed("192.0.2.10:8501") and q.host_allowed("dash.example.com") and q.host_allowed("a.corp.example")
    assert not q.host_allowed("corp.example.evil")


def test_token_checks():
    p = SecurityPolicy(frozenset({"localhost"}), TOKEN)
    basic = "Basic " + base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert p.authorised(basic) and p.authorised(f"Bearer {TOKEN}")
    for bad in (None, "", "Bearer nope", "Basic " + base64.b64encode(b"anyone:nope").decode(), "Basic %%%", f"Token {TOKEN}"):
        assert not p.authorised(bad), bad
    assert SecurityPolicy(frozenset({"localhost"})).authorised(None)  # no token configured


def test_secrets_are_never_echoed_by_configuration_errors():
    secret = "https://hooks.slack.com/services/T0/B0/super-secret-part"
    for name, value in (("ALPHASTREAM_WEBHOOK_URL", secret.replace("https", "htps")), ("ALPHASTREAM_AUTH_TOKEN", "short-secret")):
        with pytest.raises(ConfigError) as err:
            load_settings({name: value})
        assert name in str(err.value) and value not in str(err.value) and "super-secret" not in str(err.value)


# -- webhook destinations (SSRF) ---------------------------------------------------------------

INTERNAL = ["http://127.0.0.1:8501/x", "http://[::1]/x", "http://0x7f000001/x", "http://2130706433/x", "http://127.1/x",
            "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://10.1.2.3/hook", "http://192.168.0.5/",
            "http://172.16.0.1/", "http://100.64.0.1/", "http://[::ffff:127.0.0.1]/", "http://localhost:6379/", "http://0.0.0.0/"]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_destinations_are_refused_at_save(url):
    with pytest.raises(DestinationError, match="will not call|cannot resolve"):
        check_destination(url)


def test_a_name_that_resolves_inside_is_refused_and_rebinding_is_caught_at_send():
    answers = {"hooks.example.com": ["93.184.216.34"]}
    check_destination("https://hooks.example.com/x", resolver=lambda h, p: answers[h])  # public: fine
    answers["hooks.example.com"] = ["127.0.0.1"]  # DNS changed after the rule was saved
    with pytest.raises(DestinationError):
        post_json("https://hooks.example.com/x", b"{}", resolver=lambda h, p: answers[h])
    answers["hooks.example.com"] = ["93.184.216.34", "10.0.0.7"]  # one internal answer is enough to refuse
    with pytest.raises(DestinationError):
        check_destination("https://hooks.example.com/x", resolver=lambda h, p: answers[h])
    with pytest.raises(DestinationError, match="credentials"):
        check_destination("https://user:pw@hooks.example.com/x", resolver=lambda h, p: ["93.184.216.34"])


class _Server:
    """A local HTTP endpoint (allow-listed explicitly, as a team posting to an internal host would)."""

    def __init__(self, status: int = 200, location: str = "") -> None:
        self.hits: list[str] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                outer.hits.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def test_redirects_are_not_followed_and_failures_say_nothing_about_the_network():
    inner = _Server()
    redirect = _Server(302, location=f"{inner.url}/internal-admin")
    sender = WebhookSender(attempts=1, timeout_s=1.0, allow_hosts=("127.0.0.1",))
    from alerts.engine import AlertEvent

    ev = AlertEvent(1, 1, "r", "info", 0.0, 0, 1.0, 1.0, "m")
    status = sender.deliver(f"{redirect.url}/hook", ev)
    assert status == "failed: HTTP 302 redirect not followed" and inner.hits == []
    # a closed port and an unknown host give the same generic status (no port-scan oracle)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    refused = sender.deliver(f"http://127.0.0.1:{closed}/x", ev)
    assert refused == "failed after 1 attempts: could not deliver" and "refused" not in refused.lower()
    # without the allow-list the same loopback endpoint is never contacted
    strict = WebhookSender(attempts=1, timeout_s=1.0)
    assert strict.deliver(f"{inner.url}/hook", ev) == "failed: destination not allowed" and inner.hits == []
    for s_ in (sender, strict):
        s_.stop()
    inner.close()
    redirect.close()


def test_rules_with_internal_webhooks_are_refused_one_by_one_and_in_bulk(tmp_path):
    store = TickStore(tmp_path / "a.sqlite")
    store.start()
    engine = AlertEngine(store)
    base = {"name": "z", "metric": "zscore", "comparison": "abs_gt", "threshold": 2.0, "symbol_y": "ETHUSDT", "symbol_x": "BTCUSDT"}
    for url in ("http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"):
        with pytest.raises(RuleError, match="webhook_url"):
            engine.rules.save(AlertRule(**base, webhook_url=url))
    bulk = json.dumps([{**base, "name": "ok"}, {**base, "name": "internal", "threshold": 3.0, "webhook_url": "http://10.0.0.1/hook"}])
    with pytest.raises(RuleError, match="rule #2: webhook_url"):
        engine.rules.import_json(bulk)
    assert engine.rules.list() == []  # all or nothing
    engine.stop()
    store.close()


def test_exports_mask_webhook_urls_and_masked_urls_cannot_be_saved(tmp_path):
    store = TickStore(tmp_path / "a.sqlite")
    store.start()
    engine = AlertEngine(store)
    secret = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    engine.rules.save(AlertRule(name="z", metric="zscore", comparison="abs_gt", threshold=2.0, symbol_y="ETHUSDT",
                                symbol_x="BTCUSDT", webhook_url=secret))
    exported = engine.rules.export_json()
    assert "secret" not in exported and "T000" not in exported
    assert json.loads(exported)[0]["webhook_url"] == "https://hooks.slack.com/***" == mask_url(secret)
    store2 = TickStore(tmp_path / "b.sqlite")
    store2.start()
    engine2 = AlertEngine(store2)
    added = engine2.rules.import_json(exported)
    assert added[0].webhook_url == "" and "masked webhook URL dropped" in engine2.rules.last_import_notes[0]
    with pytest.raises(RuleError, match="masked"):
        engine2.rules.save(AlertRule(name="y", metric="zscore", comparison="abs_gt", threshold=3.0, symbol_y="ETHUSDT",
                                     symbol_x="BTCUSDT", webhook_url="https://hooks.slack.com/***"))
    for e, s in ((engine, store), (engine2, store2)):
        e.stop()
        s.close()


def test_csv_exports_neutralise_formula_cells_but_not_numbers():
    import pandas as pd

    noisy = to_csv(pd.DataFrame({"p": [0.1 + 0.2, 61806.1, 1e-9 / 3], "held": pd.to_timedelta([90, 3600, 0], unit="s")}), "i")
    assert "0.3," in noisy and "61806.1," in noisy and "3.333333333e-10" in noisy and "P0DT0H1M30S" in noisy
    df = pd.DataFrame({"rule_name": ["=HYPERLINK(\"http://evil\")", "+1+1", "@SUM(A1)", "-2+3", "plain"], "value": [-1.5, 2.0, -3.0, 0.0, 1.0]})
    text = to_csv(df, "i")
    assert "'=HYPERLINK" in text and "'+1+1" in text and "'@SUM" in text and "'-2+3" in text
    assert ",-1.5" in text and ",-3\n" in text and "plain" in text  # numbers stay numbers (10 significant digits)


# -- the real server -------------------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _ws_handshake(port: int, host: str, origin: str, path: str = "/_stcore/stream", extra: str = "") -> str:
    """The HTTP status line the server answers a WebSocket upgrade with."""
    key = base64.b64encode(b"0123456789abcdef").decode()
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req.encode())
        return s.recv(4096).decode("latin-1").split("\r\n", 1)[0]


def _other_ip() -> str | None:
    """An address of this machine that is not loopback (None if it has none)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            ip = s.getsockname()[0]
        return None if ip.startswith("127.") else ip
    except OSError:
        return None


OFFLINE = {"ALPHASTREAM_WS_URL": "ws://127.0.0.1:9/market", "ALPHASTREAM_REST_URL": "http://127.0.0.1:9"}


@pytest.mark.timeout(240)
def test_the_default_server_is_loopback_only_and_refuses_foreign_hosts(tmp_path):
    env = {**OFFLINE, "ALPHASTREAM_DB_PATH": str(tmp_path / "s.sqlite")}
    with serve_app(env, tmp_path / "server.log") as srv:
        log = srv.log()
        assert "Network URL" not in log and "External URL" not in log and f"http://127.0.0.1:{srv.port}" in log
        ip = _other_ip()
        if ip is not None:  # nothing listens on the machine's other addresses
            with pytest.raises(OSError):
                socket.create_connection((ip, srv.port), timeout=2).close()
        status, headers, _ = _get(srv.url + "/")
        assert status == 200
        assert "frame-ancestors 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "SAMEORIGIN"
        assert headers["x-content-type-options"] == "nosniff"
        for path in ("/", "/healthz", "/api/v1/bars?symbol=BTCUSDT&timeframe=1m", "/_stcore/health"):
            assert _get(srv.url + path, {"Host": "evil.example"})[0] == 403, path
        # DNS rebinding: a page on evil.example that resolves to 127.0.0.1 opens the app's sockets
        assert " 403 " in _ws_handshake(srv.port, "evil.example", "http://evil.example") + " "
        assert " 403 " in _ws_handshake(srv.port, f"127.0.0.1:{srv.port}", "http://evil.example") + " "
        assert " 101 " in _ws_handshake(srv.port, f"127.0.0.1:{srv.port}", f"http://127.0.0.1:{srv.port}") + " "


@pytest.mark.timeout(240)
def test_serving_beyond_loopback_requires_a_token(tmp_path):
    env = {**OFFLINE, "ALPHASTREAM_DB_PATH": str(tmp_path / "s.sqlite")}
    with serve_app(env, tmp_path / "refused.log", args=("--server.address", "0.0.0.0"), wait=False) as srv:
        code = srv.proc.wait(90)
        assert code != 0 and "refusing to serve on 0.0.0.0 without authentication" in srv.log()
    auth = {"Authorization": "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode()}
    with serve_app({**env, "ALPHASTREAM_AUTH_TOKEN": TOKEN}, tmp_path / "token.log", args=("--server.address", "0.0.0.0"),
                   headers=auth) as srv:
        status, headers, _ = _get(srv.url + "/")
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert _get(srv.url + "/", {"Authorization": "Basic " + base64.b64encode(b"me:wrong").decode()})[0] == 401
        assert _get(srv.url + "/", auth)[0] == 200
        assert _get(srv.url + "/healthz", {"Authorization": f"Bearer {TOKEN}"})[0] in (200, 503)
        assert " 403 " in _ws_handshake(srv.port, f"127.0.0.1:{srv.port}", f"http://127.0.0.1:{srv.port}") + " "
        assert " 101 " in _ws_handshake(srv.port, f"127.0.0.1:{srv.port}", f"http://127.0.0.1:{srv.port}",
                                        extra=f"Authorization: {auth['Authorization']}\r\n") + " "
