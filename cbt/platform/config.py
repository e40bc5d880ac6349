"""Settings: environment variables `CBT_*`, then an optional `cbt.toml`, then defaults.

`Settings` is a plain frozen value. `load_settings()` does the I/O (reading the
environment, the TOML file, and the secret key file in the data dir);
`create_app(settings)` never does.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cbt import times


class ConfigError(Exception):
    """A setting is wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    # Where the embedded PostgreSQL and generated secrets live.
    data_dir: Path = Path("cbt-data")
    # An external PostgreSQL (>= 15); empty means "start the embedded one".
    database_url: str = ""
    # Signs session cookies' CSRF tokens and derives form seeds; generated on
    # first run into data_dir/secret_key when not given.
    secret_key: str = ""
    # The address students and proctors type; SEB hashes and links use it.
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0  # 0 = one per core
    pool_min: int = 2
    pool_max: int = 10
    session_hours: int = 12
    # Failed sign-ins allowed per window, per client address and per account.
    login_max_per_ip: int = 20
    login_max_per_account: int = 5
    login_window_minutes: int = 15
    # Wrong candidate tickets allowed per window (login_window_minutes) from
    # one address, which a whole lab behind one NAT shares, and for one exact
    # ticket typed; and wrong room access codes per address and per candidate.
    ticket_max_per_ip: int = 200
    ticket_max_per_ticket: int = 10
    access_code_max_per_ip: int = 200
    access_code_max_per_candidate: int = 10
    # Proxies whose X-Forwarded-For is believed (CIDR list).
    trusted_proxies: tuple[str, ...] = ()
    # Bearer token for /metrics from non-loopback addresses; empty = loopback only.
    metrics_token: str = ""
    log_level: str = "INFO"
    # How often each worker submits attempts whose deadline has passed.
    sweep_seconds: int = 5
    # The time zone pages and exports show times in (an IANA name), and the
    # zone of an exam whose file names none.
    time_zone: str = times.DEFAULT_ZONE
    # Migrate the schema when the app starts (the CLI turns it off for
    # commands that must not change the database, e.g. `cbt db status`).
    migrate_on_start: bool = True

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None


def _bool(name: str, value: str) -> bool:
    v = str(value).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _list(name: str, value) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


# Field name -> parser(source, raw value); the environment variable is
# CBT_ and the name in capitals. The README documents every one of these.
_FIELDS = {
    "data_dir": lambda n, v: Path(v),
    "database_url": lambda n, v: str(v),
    "secret_key": lambda n, v: str(v),
    "public_url": lambda n, v: str(v).rstrip("/"),
    "host": lambda n, v: str(v),
    "port": _int,
    "workers": _int,
    "pool_min": _int,
    "pool_max": _int,
    "session_hours": _int,
    "login_max_per_ip": _int,
    "login_max_per_account": _int,
    "login_window_minutes": _int,
    "ticket_max_per_ip": _int,
    "ticket_max_per_ticket": _int,
    "access_code_max_per_ip": _int,
    "access_code_max_per_candidate": _int,
    "trusted_proxies": _list,
    "metrics_token": lambda n, v: str(v),
    "log_level": lambda n, v: str(v).upper(),
    "sweep_seconds": _int,
    "time_zone": lambda n, v: str(v).strip(),
}


def settings_from(env: dict[str, str], toml_path: Path | None = None) -> Settings:
    """Build Settings from an environment mapping and an optional TOML file.

    Pure apart from reading the TOML file; no secret is generated here.
    """
    values: dict = {}
    if toml_path is not None and toml_path.exists():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{toml_path}: not valid TOML ({e}); fix the file or remove it") from None
        for key, raw in data.items():
            if key not in _FIELDS:
                raise ConfigError(f"{toml_path}: unknown setting {key!r}; known settings: {', '.join(sorted(_FIELDS))}")
            values[key] = _FIELDS[key](f"{key} in {toml_path}", raw)
    for key, parse in _FIELDS.items():
        env_name = "CBT_" + key.upper()
        if env.get(env_name, "") != "":
            values[key] = parse(env_name, env[env_name])
    settings = Settings(**values)
    check(settings)
    return settings


def check(s: Settings) -> None:
    if s.database_url:
        parts = urlsplit(s.database_url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigError(
                "CBT_DATABASE_URL must look like postgresql://USER:PASSWORD@HOST:PORT/DBNAME "
                f"(got scheme {parts.scheme or 'none'!r})"
            )
    if s.public_url:
        parts = urlsplit(s.public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"CBT_PUBLIC_URL must be an absolute http(s) URL such as https://exam.school.edu.vn, "
                f"got {s.public_url!r}"
            )
    if not 1 <= s.port <= 65535:
        raise ConfigError(f"CBT_PORT must be between 1 and 65535, got {s.port}")
    if s.workers < 0:
        raise ConfigError(f"CBT_WORKERS must be 0 (one per core) or more, got {s.workers}")
    if s.pool_min < 1 or s.pool_max < s.pool_min:
        raise ConfigError("CBT_POOL_MIN must be >= 1 and CBT_POOL_MAX >= CBT_POOL_MIN")
    for name in (
        "ticket_max_per_ip",
        "ticket_max_per_ticket",
        "access_code_max_per_ip",
        "access_code_max_per_candidate",
    ):
        if getattr(s, name) < 1:
            raise ConfigError(f"CBT_{name.upper()} must be 1 or more (wrong tries allowed), got {getattr(s, name)}")
    if not times.is_zone(s.time_zone):
        raise ConfigError(
            f"CBT_TIME_ZONE: {s.time_zone!r} is not a time zone: give an IANA name such as Asia/Ho_Chi_Minh"
        )
    for cidr in s.trusted_proxies:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(
                f"CBT_TRUSTED_PROXIES: {cidr!r} is not an address or CIDR network (e.g. 10.0.0.0/8)"
            ) from None


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key, generating one into data_dir on first run."""
    if settings.secret_key:
        return settings
    path = settings.data_dir / "secret_key"
    if path.exists():
        key = path.read_text().strip()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Created with 0600 from the start so the key is never world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
    return settings.replace(secret_key=key)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    toml = Path(env.get("CBT_CONFIG", "cbt.toml"))
    return settings_from(env, toml)
