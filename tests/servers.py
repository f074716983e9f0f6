"""`replay-catalog serve` as a real process on loopback, for tests that need one."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from tests.catalog_client import ADMIN_TOKEN, CALLBACK_KEY

COMMAND = [sys.executable, "-m", "replay_catalog.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    @property
    def websocket_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/graphql"


@asynccontextmanager
async def serving(database_url: str, cwd: Path, **settings: str) -> AsyncIterator[Server]:
    """`replay-catalog serve` on a free loopback port, ready; killed on leaving if still up.

    `settings` are extra environment variables (LIVE_SILENCE_SECONDS="0", …).
    """
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CALLBACK_KEY": CALLBACK_KEY,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "WARNING",
        "RECONCILE_INTERVAL_SECONDS": "0",
        **settings,
    }
    log_path = cwd / f"serve-{port}.log"
    with log_path.open("wb") as log:
        server = await anyio.to_thread.run_sync(
            lambda: subprocess.Popen(  # noqa: S603 - our own command
                [*COMMAND, "serve", "--port", str(port)], env=env, cwd=cwd, stdout=log, stderr=log
            )
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base_url) as http:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert server.poll() is None, f"serve exited: {log_path.read_text()}"
                    assert time.monotonic() < deadline, "serve did not become ready"
                    await anyio.sleep(0.1)
            yield Server(server, base_url, log_path)
        finally:
            if server.poll() is None:
                server.kill()
            await anyio.to_thread.run_sync(server.wait)
