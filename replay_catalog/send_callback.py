"""`replay-catalog send-callback`: post a callback body to a running service, signed
with CALLBACK_KEY as Tencent signs it, and say in one line how it was answered.

The body comes from a file, standard input (`-`) or a shipped sample by name; its times
are placed around now where it has none (all of them with `--now`), so that what is sent
today shows up today.
"""

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from tencent.sample_callbacks import SAMPLE_NAMES, load_sample, placed_at, signed

CALLBACK_PATH = "/callbacks/tencent"
# Tencent waits 20 seconds for an answer before it counts a delivery as failed.
ANSWER_TIMEOUT_SECONDS = 20
# The answer is printed on one line: enough of it to read a refusal's message.
MAX_ANSWER_CHARACTERS = 500

EXIT_ACCEPTED = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


class CallbackSourceError(Exception):
    """The FILE argument names nothing readable, or holds no JSON object."""


def read_body(source: str, stdin: TextIO) -> dict[str, Any]:
    """The body from `source`: `-` for standard input, a file path, or a sample's name."""
    if source == "-":
        text, origin = stdin.read(), "standard input"
    elif Path(source).is_file():
        try:
            text, origin = Path(source).read_text(encoding="utf-8"), source
        except (OSError, UnicodeDecodeError) as failure:
            raise CallbackSourceError(f"cannot read {source}: {failure}") from None
    elif source in SAMPLE_NAMES:
        return load_sample(source)
    else:
        raise CallbackSourceError(
            f"no such file or sample: {source!r} (samples: {', '.join(SAMPLE_NAMES)})"
        )
    try:
        body = json.loads(text)
    except ValueError as failure:
        raise CallbackSourceError(f"{origin} is not JSON: {failure}") from None
    if not isinstance(body, dict):
        raise CallbackSourceError(f"{origin} is not a JSON object")
    return body


def callback_url(url: str) -> str:
    """The service's callback route: `url` is the service's address, or the route itself."""
    url = url.rstrip("/")
    return url if url.endswith(CALLBACK_PATH) else url + CALLBACK_PATH


def send_callback(source: str, url: str, key: str | None, now_times: bool) -> int:
    """Send one callback and print `<status> <answer>`; the exit status of the command."""
    if key is None:
        print(
            "replay-catalog: CALLBACK_KEY is not set: set it to the key the service checks "
            "callbacks with (the same value as the service's CALLBACK_KEY)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        body = read_body(source, sys.stdin)
    except CallbackSourceError as failure:
        print(f"replay-catalog: {failure}", file=sys.stderr)
        return EXIT_USAGE
    now = int(time.time())
    payload = signed(placed_at(body, now, replace=now_times), key, now)
    target = callback_url(url)
    try:
        answer = httpx.post(target, json=payload, timeout=ANSWER_TIMEOUT_SECONDS)
    except (httpx.HTTPError, httpx.InvalidURL) as failure:
        print(f"replay-catalog: cannot send to {target}: {failure}", file=sys.stderr)
        return EXIT_REFUSED
    text = " ".join(answer.text.split())[:MAX_ANSWER_CHARACTERS]
    print(f"{answer.status_code} {text}")
    return EXIT_ACCEPTED if answer.status_code == 200 else EXIT_REFUSED
