"""``ledger serve`` as a real process (uvicorn on 127.0.0.1), and the console's static mount."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from web3 import Web3

from api.app import create_app
from api.deps import ApiOptions
from ledger.chain.anvil import Anvil
from ledger.settings import load_settings
from tests.api.world import EXECUTOR_KEY, make_api_world

ROOT = Path(__file__).resolve().parents[2]
_SERVER = (
    "import typer\n"
    "from api.cli import install\n"
    "app = typer.Typer(pretty_exceptions_enable=False)\n"
    "@app.callback()\n"
    "def main() -> None:\n"
    "    pass\n"
    "install(app)\n"
    "app()\n"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_and_follows_the_chain(anvil: Anvil, w3: Web3, tmp_path: Path) -> None:
    api = make_api_world(w3, anvil.url, tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    api.client.close()
    env = api.world.env()
    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200, server.stderr.read()  # type: ignore[union-attr]
        # The background indexer picks up the catalog dataset registered before start.
        while time.monotonic() < deadline:
            page = httpx.get(f"{base}/v1/datasets").json()
            if page["total"] == 1:
                break
            time.sleep(0.3)
        assert page["items"][0]["dataset_id"] == api.catalog_id
        assert httpx.get(f"{base}/healthz").json()["index"]["lag"] == 0
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}".encode() in out
    assert b"Traceback" not in err


def test_console_static_files_are_served_at_root(anvil: Anvil, w3: Web3, tmp_path: Path) -> None:
    api = make_api_world(w3, anvil.url, tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    api.client.close()
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<html>console</html>")
    settings = load_settings(
        data_dir=tmp_path,
        rpc_url=anvil.url,
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        executor_key=EXECUTOR_KEY,
    )
    app = create_app(settings, ApiOptions(static_dir=str(static)))
    with TestClient(app) as client:
        assert client.get("/").text == "<html>console</html>"
        assert client.get("/healthz").status_code == 200
        missing = client.get("/v1/nothing")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert 'route="static"' in client.get("/metrics").text
    app.state.services.close()
