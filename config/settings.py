"""ChatCRM settings: one frozen object, validated with one clear message per problem.

Secrets are `SecretStr`, so they never show in a repr, a log line or an error message.
"""
from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel.numbers import get_currency_name
from babel.core import Locale, UnknownLocaleError
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SOURCES = ("website", "referral", "ads", "event", "cold", "other")


class SettingsError(Exception):
    """Raised when the environment does not describe a runnable ChatCRM."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    database_url: str = Field("sqlite:///chatcrm.db", alias="DATABASE_URL")
    data_dir: Path = Field(Path("data"), alias="CRM_DATA_DIR")
    admins: str = Field("", alias="CRM_ADMINS")
    timezone: str = Field("UTC", alias="CRM_TIMEZONE")
    currency: str = Field("USD", alias="CRM_CURRENCY")
    phone_region: str = Field("US", alias="CRM_PHONE_REGION")
    language: str = Field("en", alias="CRM_LANGUAGE")
    sources: str = Field(",".join(DEFAULT_SOURCES), alias="CRM_SOURCES")

    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str | None = Field(None, alias="TELEGRAM_API_URL")
    telegram_bot_username: str | None = Field(None, alias="TELEGRAM_BOT_USERNAME")  # invite links
    telegram_webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_webhook_listen: str = Field("0.0.0.0", alias="TELEGRAM_WEBHOOK_LISTEN")
    telegram_webhook_port: int = Field(8443, alias="TELEGRAM_WEBHOOK_PORT")

    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str | None = Field(None, alias="SLACK_API_URL")
    slack_port: int = Field(3000, alias="SLACK_PORT")

    api_key: SecretStr | None = Field(None, alias="CRM_API_KEY")
    api_port: int = Field(8080, alias="CRM_API_PORT")

    log_level: str = Field("INFO", alias="CRM_LOG_LEVEL")

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Asia/Dubai")
        return value

    @field_validator("currency")
    @classmethod
    def _valid_currency(cls, value: str) -> str:
        code = value.strip().upper()
        if len(code) != 3 or get_currency_name(code) == code:
            raise ValueError(f"unknown currency {value!r}; use an ISO 4217 code like USD")
        return code

    @field_validator("phone_region")
    @classmethod
    def _valid_region(cls, value: str) -> str:
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r}; use a country code like AE or US")
        return region

    @field_validator("language")
    @classmethod
    def _valid_language(cls, value: str) -> str:
        try:
            Locale.parse(value)
        except (UnknownLocaleError, ValueError):
            raise ValueError(f"unknown language {value!r}; use a code like en or ar")
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_db(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("DATABASE_URL must be a sqlite:/// or postgresql:// URL")
        return value

    @property
    def admin_identities(self) -> tuple[str, ...]:
        """`CRM_ADMINS` split into identities like `telegram:123`."""
        return tuple(part.strip() for part in self.admins.split(",") if part.strip())

    @property
    def lead_sources(self) -> tuple[str, ...]:
        return tuple(s.strip().lower() for s in self.sources.split(",") if s.strip())

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_settings(**overrides) -> Settings:
    """Build the settings, turning pydantic's errors into one readable message per problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = err["loc"][0] if err["loc"] else "settings"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"- {name}: {msg}")
        raise SettingsError("ChatCRM cannot start:\n" + "\n".join(lines)) from None
