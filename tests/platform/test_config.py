"""Settings from the environment and cbt.toml, and the generated secret."""

import stat

import pytest

from cbt.platform.config import ConfigError, ensure_secret_key, settings_from


def test_defaults():
    s = settings_from({})
    assert s.port == 8080 and s.host == "127.0.0.1" and s.database_url == ""
    assert str(s.data_dir) == "cbt-data"
    assert not s.secure_cookies
    assert s.time_zone == "Asia/Ho_Chi_Minh"
    assert settings_from({"CBT_TIME_ZONE": "Asia/Tokyo"}).time_zone == "Asia/Tokyo"


def test_environment_beats_toml(tmp_path):
    toml = tmp_path / "cbt.toml"
    toml.write_text('port = 9000\nhost = "0.0.0.0"\ntrusted_proxies = ["10.0.0.0/8"]\n')
    s = settings_from({"CBT_PORT": "9100"}, toml)
    assert s.port == 9100 and s.host == "0.0.0.0"
    assert s.trusted_proxies == ("10.0.0.0/8",)


def test_https_public_url_means_secure_cookies():
    assert settings_from({"CBT_PUBLIC_URL": "https://thi.sgd.edu.vn/"}).secure_cookies


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CBT_PORT": "eighty"}, "CBT_PORT must be a whole number"),
        ({"CBT_PORT": "70000"}, "between 1 and 65535"),
        ({"CBT_DATABASE_URL": "mysql://x@y/z"}, "postgresql://USER:PASSWORD@HOST:PORT/DBNAME"),
        ({"CBT_PUBLIC_URL": "thi.example.vn"}, "absolute http(s) URL"),
        ({"CBT_TRUSTED_PROXIES": "10.0.0.0/8, nonsense"}, "'nonsense' is not an address"),
        ({"CBT_POOL_MIN": "5", "CBT_POOL_MAX": "2"}, "CBT_POOL_MAX"),
        ({"CBT_WORKERS": "-1"}, "CBT_WORKERS"),
        ({"CBT_TIME_ZONE": "GMT+7"}, "CBT_TIME_ZONE: 'GMT+7' is not a time zone: give an IANA name such as"),
        ({"CBT_TIME_ZONE": "../../etc/passwd"}, "CBT_TIME_ZONE"),
    ],
)
def test_bad_settings_say_what_to_fix(env, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        settings_from(env)
    assert fragment in str(info.value)


def test_bad_toml_is_named(tmp_path):
    toml = tmp_path / "cbt.toml"
    toml.write_text("port = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        settings_from({}, toml)
    toml.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        settings_from({}, toml)


def test_secret_is_generated_once_with_mode_0600(tmp_path):
    s = settings_from({"CBT_DATA_DIR": str(tmp_path / "d")})
    first = ensure_secret_key(s)
    assert len(first.secret_key) >= 48
    path = tmp_path / "d" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secret_key(s).secret_key == first.secret_key
    given = settings_from({"CBT_SECRET_KEY": "given-secret", "CBT_DATA_DIR": str(tmp_path / "e")})
    assert ensure_secret_key(given).secret_key == "given-secret"
    assert not (tmp_path / "e").exists()
