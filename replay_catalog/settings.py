"""Configuration, read from the environment (and an optional `.env` file)."""

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from replay_catalog.tencent.filelist import DEFAULT_API_URL

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./replay-catalog.db"


class Settings(BaseSettings):
    """Every knob of the service; the names are the environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = DEFAULT_DATABASE_URL
    callback_key: SecretStr | None = None
    admin_token: SecretStr | None = None
    # A push that resumes within this many seconds of the last sign of life
    # (cut-off, end of a file, screenshot) continues the same broadcast.
    reconnect_window_seconds: int = Field(default=300, ge=0, le=86_400)
    # Tencent's callbacks are a few hundred bytes; anything much larger is not one.
    callback_max_body_bytes: int = Field(default=64 * 1024, ge=64 * 1024)
    log_level: str = "INFO"

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

    @field_validator("callback_key", "admin_token", "tencent_api_key")
    @classmethod
    def blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value
