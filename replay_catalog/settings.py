"""Configuration, read from the environment (and an optional `.env` file)."""

from datetime import timedelta
from typing import Annotated, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.grouping import GroupingRules
from replay_catalog.vod import (
    DEFAULT_MAX_PLAYLIST_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_VOD_ALLOWED_HOSTS,
)
from storage.database import DEFAULT_DATABASE_URL
from tencent.filelist import DEFAULT_API_URL

# Open HTTP connections per client address when MAX_CONNECTIONS_PER_CLIENT is unset: far more
# than a browser (6 per host) or Tencent's callback senders keep open.
DEFAULT_CONNECTIONS_PER_CLIENT = 64


class Settings(BaseSettings):
    """Every knob of the service; the names are the environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = DEFAULT_DATABASE_URL
    callback_key: SecretStr | None = None
    admin_token: SecretStr | None = None
    # GET /metrics answers only `Authorization: Bearer <token>` when set; unset: anyone.
    metrics_token: SecretStr | None = None
    # A push that resumes within this many seconds of the last sign of life
    # (cut-off, end of a file, screenshot) continues the same broadcast.
    reconnect_window_seconds: int = Field(default=300, ge=0, le=86_400)
    # Tencent's cut-off can be lost for good (its retries run out). A live room with no
    # sign of life (push, recording file, screenshot) for this many seconds stops being
    # live; 0: never. The default outlasts the longest record_interval (7200 s), so an
    # MP4/FLV recording keeps a long broadcast live; see docs/callbacks.md for HLS-only streams.
    live_silence_seconds: int = Field(default=10_800, ge=0)
    # How often `serve` looks for live rooms that have fallen silent.
    live_sweep_interval_seconds: float = Field(default=60, gt=0)
    # Connections to the database per process (SQLAlchemy's pool; PostgreSQL only): at most
    # DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW, plus one that listens for changes.
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    # Subscriptions (GraphQL over WebSocket, graphql-transport-ws).
    subscriptions_max: int = Field(default=10_000, ge=1)  # per process
    # Per client address: one address cannot take the whole process's share. Strawberry
    # allows 100 operations per WebSocket, so this is one full WebSocket by default.
    subscriptions_per_client: int = Field(default=100, ge=1)
    # Changes waiting for one subscriber; one that falls further behind is ended.
    subscription_queue_size: int = Field(default=256, ge=1)
    # A WebSocket must send connection_init this soon after opening.
    websocket_init_timeout_seconds: float = Field(default=10, gt=0)
    # uvicorn pings every WebSocket this often and closes it if no pong comes in time.
    websocket_ping_interval_seconds: float = Field(default=20, gt=0)
    websocket_ping_timeout_seconds: float = Field(default=20, gt=0)
    # Open HTTP connections and WebSockets `serve` accepts at once (503 beyond); unset: no limit.
    max_connections: int | None = Field(default=None, ge=1)
    # Open HTTP connections one client address (an IPv6 /64) may hold; more are answered 503
    # and closed. Unset: 64, and at most half of MAX_CONNECTIONS; 0: no cap (behind a proxy,
    # where every connection comes from the proxy's address).
    max_connections_per_client: int | None = Field(default=None, ge=0)
    # The HTTP edge of `serve`: headers (request line included) larger than this get 431;
    # headers not complete this long after the connection opened (or the request's first
    # byte) get 408, and so does a body not complete this long after its headers; all closed.
    http_max_header_bytes: int = Field(default=64 * 1024, ge=4096)
    http_header_timeout_seconds: float = Field(default=10, gt=0)
    http_body_timeout_seconds: float = Field(default=30, gt=0)
    # Request bodies larger than this (as sent: chunk framing and trailers included) get 413
    # and are closed; never below CALLBACK_MAX_BODY_BYTES.
    http_max_body_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
    # Answers of anonymous GraphQL queries kept per process, keyed by the catalog version
    # (0: no response cache), and the bytes they may take together.
    response_cache_entries: int = Field(default=512, ge=0)
    response_cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Cache-Control max-age of GET /graphql answers, for CDNs and browsers; 0: `no-cache`
    # (they revalidate with the ETag every time, and get 304 while nothing changed).
    graphql_cache_max_age_seconds: int = Field(default=0, ge=0)
    # Tencent's callbacks are a few hundred bytes; anything much larger is not one.
    callback_max_body_bytes: int = Field(default=64 * 1024, ge=64 * 1024)
    # While callbacks keep coming, the least time between the starts of two write
    # transactions (they wait and share the next one): each commit makes the cached
    # answers that showed what it changed stale (docs/configuration.md).
    commit_interval_seconds: float = Field(default=0.2, ge=0, le=1)
    # How long an anonymous GraphQL query that arrives while this process writes waits for
    # the write to end (what it would compute goes stale as the write commits, and the
    # callbacks waiting on the write would share the CPU with it); 0: reads never wait.
    reads_wait_for_writes_seconds: float = Field(default=0.02, ge=0, le=1)
    log_level: str = "INFO"
    # uvicorn's line per HTTP request; off when a proxy in front logs requests anyway.
    access_log: bool = True
    # `json`: one JSON object per log line, for log collectors.
    log_format: Literal["text", "json"] = "text"

    # Limits that refuse a hostile GraphQL document before it runs.
    graphql_max_depth: int = Field(default=12, ge=1)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=100)
    # Fields one document selects, counting each fragment spread in full (the size it
    # expands to, measured without expanding it).
    graphql_max_fields: int = Field(default=2000, ge=1)
    # Introspection feeds GraphiQL; switch it off to hide the schema from strangers.
    graphql_introspection: bool = True
    # Browser origins allowed to call the API (CORS), comma-separated; none by default.
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A client whose callbacks are refused (bad sign, bad body) more often than this
    # per minute gets 429 without further work until it slows down.
    refused_callbacks_per_minute: int = Field(default=30, ge=1)
    # Authentic callbacks one client address may have quarantined (values out of range,
    # what the database cannot hold) per minute; past it, more that would be are answered
    # 429 and not stored (Tencent retries them), while its valid callbacks go on.
    quarantined_callbacks_per_minute: int = Field(default=120, ge=1)
    # A callback answered 429 by either limit above is answered after this wait, which
    # holds the flooding connection instead of inviting its next request at once (Tencent
    # retries a minute later either way).
    callback_refusal_wait_seconds: float = Field(default=1.0, ge=0, le=10)
    # GraphQL requests one client address (an IPv6 /64) may have computed per second
    # (bursts of twice that; an answer from the response cache counts as a tenth, one
    # computed as one per KB of its body); beyond it a request waits for its turn, or 1 s
    # and then 429. 0: no limit (behind a proxy, where every request comes from the
    # proxy's address). 10: at 20, one address flooding with the cheapest documents cost
    # PostgreSQL ingestion a fifth on a slow 2-core machine (bench/ATTACK.md).
    graphql_computations_per_client_per_second: float = Field(default=10, ge=0)

    # The address apps reach this service at, for links to stitched replays
    # (e.g. https://catalog.example.com); unset: taken from each request.
    public_base_url: str | None = None

    # Push and play addresses (createPushUrl, live rooms' play URLs).
    push_domain: str | None = None
    push_key: SecretStr | None = None
    play_domain: str | None = None
    push_url_expiry_seconds: int = Field(default=86_400, gt=0, le=90 * 86_400)
    # The recording policy a push URL gets when the caller names none.
    default_record_formats: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_record_interval_seconds: int | None = Field(default=None, gt=0, le=7200)

    # Live_Tape_GetFilelist, the safety net for lost callbacks (`reconcile`).
    tencent_appid: int | None = None
    tencent_api_key: SecretStr | None = None
    tencent_api_url: str = DEFAULT_API_URL
    # At most one file-list request this often: the interface is slow on Tencent's side.
    tencent_api_min_interval_seconds: float = Field(default=0.2, ge=0)
    # `serve` reconciles streams whose broadcast ended within the last
    # RECONCILE_ENDED_WITHIN_SECONDS, every RECONCILE_INTERVAL_SECONDS (0: never),
    # when TENCENT_APPID and TENCENT_API_KEY are set.
    reconcile_interval_seconds: int = Field(default=900, ge=0)
    reconcile_ended_within_seconds: int = Field(default=7200, gt=0)

    # Stitched replays (/replays/{id}.m3u8) fetch HLS playlists server-side, from URLs
    # that callbacks carry: only from these hosts (exact names, or `.suffix` for any
    # subdomain; comma-separated), and never from private or loopback addresses
    # unless VOD_ALLOW_PRIVATE_ADDRESSES is true.
    vod_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_VOD_ALLOWED_HOSTS)
    )
    vod_allow_private_addresses: bool = False
    vod_fetch_timeout_seconds: float = Field(default=DEFAULT_TIMEOUT_SECONDS, gt=0, le=120)
    vod_max_playlist_bytes: int = Field(default=DEFAULT_MAX_PLAYLIST_BYTES, ge=1024)

    def connections_per_client(self) -> int | None:
        """The per-address connection cap `serve` enforces (None: none), so that one address
        cannot take every MAX_CONNECTIONS slot by default."""
        if self.max_connections_per_client is not None:
            return self.max_connections_per_client or None
        if self.max_connections is None:
            return DEFAULT_CONNECTIONS_PER_CLIENT
        return min(DEFAULT_CONNECTIONS_PER_CLIENT, max(1, self.max_connections // 2))

    def switched_off(self) -> list[str]:
        """What this configuration leaves switched off, one sentence each, for `serve` to
        say at start (a newcomer's callbacks get 401 otherwise without a word why)."""
        off = []
        if self.callback_key is None:
            off.append("CALLBACK_KEY is not set: every Tencent callback is refused with 401")
        if self.admin_token is None:
            off.append("ADMIN_TOKEN is not set: admin mutations are refused")
        unset = [
            name
            for name, value in (("PUSH_DOMAIN", self.push_domain), ("PUSH_KEY", self.push_key))
            if value is None
        ]
        if unset:
            off.append(f"{' and '.join(unset)} not set: createPushUrl is refused")
        if self.play_domain is None:
            off.append("PLAY_DOMAIN is not set: live rooms have no play URLs")
        return off

    def grouping_rules(self) -> GroupingRules:
        silence = self.live_silence_seconds
        return GroupingRules(
            reconnect_window=timedelta(seconds=self.reconnect_window_seconds),
            live_silence=timedelta(seconds=silence) if silence else None,
        )

    @field_validator("database_url")
    @classmethod
    def use_async_driver(cls, url: str) -> str:
        """Accept plain `postgresql://` and `sqlite://` URLs and pick the async driver."""
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        return url

    @field_validator(
        "cors_allowed_origins", "default_record_formats", "vod_allowed_hosts", mode="before"
    )
    @classmethod
    def comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("callback_key", "admin_token", "metrics_token", "tencent_api_key", "push_key")
    @classmethod
    def blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value


def invalid_settings(error: ValidationError) -> list[str]:
    """One line per bad setting, named as its environment variable, with pydantic's reason
    and the value given (never a secret's)."""
    lines: dict[str, str] = {}
    for problem in error.errors(include_url=False):
        name = str(problem["loc"][0]) if problem["loc"] else "settings"
        if name in lines:
            continue
        field = Settings.model_fields.get(name)
        secret = field is not None and SecretStr in get_args(field.annotation)
        given = "" if secret else f"={problem['input']!r}"
        lines[name] = (
            f"{name.upper()}{given} is not valid: {problem['msg']}; set it right or unset it"
        )
    return list(lines.values())
