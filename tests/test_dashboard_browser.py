"""The running dashboard in a real browser: headless Chromium screenshots every page.

``marl-arena dashboard`` serves the app on a free loopback port; Chromium (Debian's, which
``.ci/run`` installs where it can) opens each page through the DevTools protocol, waits
until the page has drawn what it should and stopped changing, saves a screenshot and
checks the page: the leaderboard's table is there, and no page shows an exception or an
error. Waiting on the page itself, not on a fixed ``--virtual-time-budget``, is what makes
this reliable: Streamlit draws over a websocket, which virtual time does not wait for.
The screenshots stay in pytest's temporary directory (the path is printed).
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from dashboard_league import build_league

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1"]
PAGES = {  # url path: (title, what the page draws once its data is in: the leaderboard, its table)
    "": ("Leaderboard", "stDataFrame"),
    "ratings": ("Ratings and training", "stVegaLiteChart"),
    "payoff": ("Payoff", "stVegaLiteChart"),
    "graph": ("League graph", "stGraphVizChart"),
    "matches": ("Matches", "stDataFrame"),
    "play": ("Play against an agent", "stButton"),
}
ERROR_BLOCKS = ('data-testid="stException"', 'data-testid="stAlertContentError"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}.")


def _stop(process: subprocess.Popen) -> None:
    """End ``process`` and everything it started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"No Chromium at {CHROMIUM}: .ci/run installs Debian's chromium when it runs as root with "
                    "apt; install it (apt-get install chromium) to run the browser test.")
    try:
        from websockets.sync.client import connect
    except ImportError:
        pytest.skip("The websockets package (a Streamlit dependency) is missing; it drives Chromium.")
    return connect


@pytest.fixture(scope="module")
def league_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("league")
    build_league(directory)
    return directory


@pytest.fixture(scope="module")
def app_url(chromium, league_dir, tmp_path_factory):
    """``marl-arena dashboard`` on a short real league, served headless on a free loopback port."""
    directory = league_dir
    port = _free_port()
    env = {**os.environ, "STREAMLIT_SERVER_HEADLESS": "true", "STREAMLIT_SERVER_ADDRESS": "127.0.0.1"}
    log = open(tmp_path_factory.mktemp("server") / "streamlit.log", "w+")
    server = subprocess.Popen([sys.executable, "-m", "marl_arena.cli", "dashboard", str(directory), "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if server.poll() is not None:
            log.seek(0)
            pytest.fail(f"The dashboard exited with {server.returncode}:\n{log.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                return response.read().strip() == b"ok"
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    try:
        _wait(healthy, 60, "the dashboard server to answer")
        yield url
    finally:
        _stop(server)
        log.close()


class DevTools:
    """Just enough of the Chrome DevTools protocol: navigate, evaluate, screenshot."""

    def __init__(self, connection):
        self._connection = connection
        self._next_id = 0

    def call(self, method: str, **params):
        self._next_id += 1
        self._connection.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._connection.recv(timeout=30))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium")
    process = subprocess.Popen([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        _wait(lambda: port_file.exists() and port_file.read_text().strip(), 30, "Chromium to start")
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        with chromium(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as connection:
            yield DevTools(connection)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    directory = tmp_path_factory.mktemp("screenshots")
    print(f"dashboard screenshots in {directory}")
    return directory


@pytest.mark.parametrize("path", list(PAGES), ids=[path or "leaderboard" for path in PAGES])
def test_every_page_in_a_browser(browser, app_url, screenshots, path):
    title, drawn = PAGES[path]
    browser.call("Page.navigate", url=f"{app_url}/{path}?live=off")
    last = {"text": None, "same": 0}

    def settled() -> str | None:
        """The page's HTML once it shows its content and its text has not changed for three polls."""
        html = browser.evaluate("document.documentElement.outerHTML") or ""
        text = browser.evaluate("document.body ? document.body.innerText : ''")
        done = f'data-testid="{drawn}"' in html or any(block in html for block in ERROR_BLOCKS)
        last["same"] = last["same"] + 1 if done and text == last["text"] else 0
        last["text"] = text
        return html if last["same"] >= 3 else None

    html = _wait(settled, 60, f"the {title} page to draw")
    png = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    (screenshots / f"{path or 'leaderboard'}.png").write_bytes(png)
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert not [block for block in ERROR_BLOCKS if block in html], f"{title} shows an error"
    assert title in last["text"]
    assert f'data-testid="{drawn}"' in html  # on the leaderboard page: its table


WRITER = textwrap.dedent(
    """
    import sys, time
    from marl_arena.league.store import LeagueStore, MatchRecord
    store = LeagueStore(sys.argv[1])
    for _ in range(200):  # a league's iterations: a few matches every half second, for 100 s at most
        store.record_matches([(MatchRecord("open_spiel:tic_tac_toe", ("random", "greedy"), (0.0, 0.0), 9), {})] * 5)
        time.sleep(0.5)
    """
)


def test_the_leaderboard_refreshes_while_the_league_writes(browser, app_url, league_dir, tmp_path):
    browser.call("Page.navigate", url=app_url)  # live refresh is on by default

    def shown_matches() -> int | None:
        """The leaderboard's "Matches" figure (its second metric), once it is drawn."""
        values = browser.evaluate("[...document.querySelectorAll('[data-testid=stMetricValue]')].map(m => m.innerText)")
        return int(values[1].replace(",", "")) if values and len(values) > 1 else None

    first = _wait(shown_matches, 60, "the leaderboard's metrics")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), str(league_dir)])
    try:
        _wait(lambda: (shown_matches() or first) > first, 30, "the match count to move without a reload")
    finally:
        writer.kill()
        writer.wait()
    html = browser.evaluate("document.documentElement.outerHTML")
    assert not [block for block in ERROR_BLOCKS if block in html]
