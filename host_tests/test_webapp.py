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
    done = subprocess.run([_node(), *args], cwd=APP, env=env, capture_output=True, text=True,
                          timeout=timeout)
    out = done.stdout + done.stderr
    return done.returncode, out


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
    code, out = _run_node(["--test", "--test-concurrency=1", "e2e/"], env=env)
    print(out[-6000:])
    totals = _summary(out)
    assert code == 0 and totals.get("fail") == 0, out[-6000:]
    assert totals.get("skipped") == 0 and totals.get("pass", 0) >= 7, totals
    for name in ("04-courier-deposited", "07-recipient-open", "06-recipient-wrong-code",
                 "08-courier-link-dropped"):
        assert os.path.getsize(os.path.join(SCREENS, name + ".png")) > 2000, name
