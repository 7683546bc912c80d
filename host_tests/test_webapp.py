"""The phone web app (tools/webapp): its JS protocol code against the vectors (node --test),
and the app in headless Chromium over emulated Web Bluetooth against the real firmware on the
MicroPython unix port (tools/webapp/e2e/browser.test.mjs; how the bridge works is told there).

Needs Node.js, the npm packages (`make webapp` runs `npm ci`) and Debian's chromium
(/usr/bin/chromium, or $CHROMIUM). Without the browser the browser test is skipped with the
reason; everything else here runs."""
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess

import mp_runner
import pytest
from lockerctl import cli, sim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "tools", "webapp")
SCREENS = os.path.join(ROOT, "build", "webapp-screens")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _node():
    node = shutil.which("node")
    if not node:
        pytest.skip("no Node.js: install it (Debian: apt-get install nodejs npm)")
    if not os.path.isdir(os.path.join(APP, "node_modules", "@noble", "hashes")):
        pytest.skip("npm packages missing: run `make webapp` (npm ci in tools/webapp)")
    return node


def _run_node(args, env=None, timeout=600):
    """Run node in its own process group: on a timeout the whole group (node and the Chromium
    that puppeteer started) is killed, so no browser outlives the test."""
    proc = subprocess.Popen([_node(), *args], cwd=APP, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("node %s did not finish in %d s:\n%s" % (" ".join(args), timeout,
                                                            out[-4000:]))
    return proc.returncode, out


def _summary(out):
    """node --test TAP totals: {'pass': n, 'fail': n, 'skipped': n}."""
    totals = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "#" and parts[1] in ("pass", "fail", "skipped"):
            totals[parts[1]] = int(parts[2])
    return totals


@pytest.fixture(scope="module")
def built_app(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("webapp"))
    code, log = _run_node(["build.mjs", out])
    assert code == 0, log
    for name in ("index.html", "app.js", "sw.js", "app.css", "manifest.webmanifest"):
        assert os.path.exists(os.path.join(out, name)), name
    return out


def test_built_app_is_self_contained(built_app):
    """No CDN: nothing in the bundle or the page is fetched from another origin."""
    for name in ("index.html", "app.js", "sw.js"):
        text = open(os.path.join(built_app, name)).read()
        assert "https://" not in text.replace("https://github.com", ""), name
        assert "__CACHE__" not in text and "__SHELL__" not in text, name
    sw = open(os.path.join(built_app, "sw.js")).read()
    assert '"app.js"' in sw and '"index.html"' in sw


@pytest.fixture
def web_locker(tmp_path, monkeypatch):
    mp_runner.micropython()                   # skips when there is no unix port
    monkeypatch.setenv("LOCKERCTL_HOME", str(tmp_path / "keys"))
    state = str(tmp_path / "state")

    def run(*args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = cli.main([str(a) for a in args] + ["--json", "--state", state])
        data = json.loads(out.getvalue())
        assert code == 0, (args, data)
        return data

    run("provision", "--layout", "S*2,M*2,L")
    started = run("sim", "start", "--port", "0")
    cred = str(tmp_path / "courier-web.cred.json")
    run("credential", "issue", "--courier", "courier-web", "--out", cred)
    yield {"port": started["port"], "control_port": started["control_port"], "cred": cred}
    with contextlib.suppress(sim.SimError):
        sim.stop(state)


def test_browser_deposit_pickup_wrong_code_dropped_link(built_app, web_locker):
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium at %s: `apt-get install chromium` (as root; .ci/run does it)"
                    % CHROMIUM)
    os.makedirs(SCREENS, exist_ok=True)
    env = dict(os.environ, SIM_PORT=str(web_locker["port"]),
               SIM_CONTROL_PORT=str(web_locker["control_port"]), CRED_FILE=web_locker["cred"],
               WEBAPP_DIR=built_app, SCREENS_DIR=SCREENS, CHROMIUM=CHROMIUM)
    code, out = _run_node(["--test", "e2e/browser.test.mjs"], env=env)
    print(out[-6000:])
    totals = _summary(out)
    assert code == 0 and totals.get("fail") == 0, out[-6000:]
    assert totals.get("skipped") == 0 and totals.get("pass", 0) >= 9, totals
    for name in ("04-courier-deposited", "07-recipient-open", "06-recipient-wrong-code",
                 "08-courier-link-dropped", "10-recipient-expired", "11-recipient-locked-out"):
        assert os.path.getsize(os.path.join(SCREENS, name + ".png")) > 2000, name


# ---- lockerctl sim web: static files and the WebSocket relay to the simulator ---------------

def _serve_in_thread(app_dir, sim_port):
    """Run webrelay.serve_web on a free port in a thread; returns (port, stop)."""
    import asyncio
    import threading

    from lockerctl import webrelay
    loop = asyncio.new_event_loop()
    got = threading.Event()
    box = {}

    def ready(port):
        box["port"] = port
        got.set()

    task = loop.create_task(webrelay.serve_web(app_dir, sim_port, "127.0.0.1", 0, ready))
    t = threading.Thread(target=lambda: loop.run_until_complete(
        asyncio.wait([task])), daemon=True)
    t.start()
    assert got.wait(10), "relay did not start"

    def stop():
        loop.call_soon_threadsafe(task.cancel)
        t.join(10)
    return box["port"], stop


def test_sim_web_serves_the_app_and_relays_fragments(built_app, web_locker):
    import urllib.error
    import urllib.request

    from core import fragment, phone
    from core import protocol as P
    from websockets.sync.client import connect
    port, stop = _serve_in_thread(built_app, web_locker["port"])
    try:
        base = "http://127.0.0.1:%d/" % port
        page = urllib.request.urlopen(base).read().decode()
        assert '<script type="module" src="app.js">' in page
        assert json.loads(urllib.request.urlopen(base + "relay.json").read()) == {"relay": "relay"}
        for bad in ("../pyproject.toml", "%2e%2e/pyproject.toml", "nothing.js"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(base + bad)
            assert e.value.code == 404, bad
        with connect("ws://127.0.0.1:%d/relay" % port) as ws:
            link = ws.recv(timeout=10)
            assert link == bytes((244,))          # the simulator agreed the largest payload
            for piece in fragment.split(P.request(P.HELLO), 244):
                ws.send(piece)
            reasm = fragment.Reassembler(P.MAX_RESPONSE)
            answer = None
            while answer is None:
                answer = reasm.feed(ws.recv(timeout=10))
            rtype, status, challenge, body = phone.parse_response(answer)
            assert (rtype, status, len(challenge), len(body)) == (P.HELLO, P.OK, 16, 23)
            ws.send("not a fragment")             # text frames are refused: the relay closes
            with pytest.raises(Exception):
                ws.recv(timeout=10)
    finally:
        stop()


def test_sim_web_refuses_without_a_built_app(tmp_path):
    import asyncio

    from lockerctl import webrelay
    with pytest.raises(webrelay.WebAppMissing, match="make webapp"):
        asyncio.run(webrelay.serve_web(str(tmp_path), 1, "127.0.0.1", 0))


def test_browser_through_sim_web_relay(built_app, web_locker):
    """The `make demo` path: no Bluetooth, the app talks to the simulator through the relay."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium at %s: `apt-get install chromium` (as root; .ci/run does it)"
                    % CHROMIUM)
    port, stop = _serve_in_thread(built_app, web_locker["port"])
    try:
        env = dict(os.environ, RELAY_BASE="http://127.0.0.1:%d/" % port,
                   SIM_CONTROL_PORT=str(web_locker["control_port"]),
                   CRED_FILE=web_locker["cred"], CHROMIUM=CHROMIUM)
        code, out = _run_node(["--test", "e2e/relay.test.mjs"], env=env)
    finally:
        stop()
    totals = _summary(out)
    assert code == 0 and totals.get("pass") == 1 and totals.get("skipped") == 0, out[-4000:]
