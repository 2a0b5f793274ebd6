import io
import json
import logging

import pytest

from celeris.runtime import logs
from celeris.runtime.settings import ServiceSettings, SettingsError, load_settings, parse_overrides


def test_env_and_flags_merge_with_flags_winning():
    s = load_settings(ServiceSettings, {"mode": "live"},
                      environ={"CELERIS_MODE": "simulation", "CELERIS_SYMBOLS": "btcusdt, ethusdt",
                               "CELERIS_GRPC_PORT": "0", "UNRELATED": "x",
                               "CELERIS_OPERATOR_INTERVAL_S": "5"})  # the operator's own
    assert s.mode == "live" and s.symbols == ("BTCUSDT", "ETHUSDT") and s.grpc_port == 0


@pytest.mark.parametrize("environ,overrides,fragment", [
    ({"CELERIS_BOGUS": "1"}, {}, "unknown setting CELERIS_BOGUS"),
    ({}, {"nope": "1"}, "unknown setting 'nope'"),
    ({}, {"mode": "yolo"}, "mode"),
    ({}, {"grpc_port": "70000"}, "grpc_port"),
    ({}, {"symbols": "btc-usdt"}, "symbol"),
])
def test_bad_settings_are_refused_with_the_key(environ, overrides, fragment):
    with pytest.raises(SettingsError, match=fragment):
        load_settings(ServiceSettings, overrides, environ=environ)


def test_settings_are_frozen():
    s = load_settings(ServiceSettings, {}, environ={})
    with pytest.raises(Exception):
        s.mode = "live"


def test_secrets_are_redacted_when_printed_and_never_logged():
    key, secret = "AKIAVERYSECRETKEY123", "s3cr3t-signing-key-xyz"
    s = load_settings(ServiceSettings, {"venue_api_key": key, "venue_api_secret": secret,
                                        "postgres_url": "postgresql://bot:hunter2pw@db:5432/celeris"}, environ={})
    shown = json.dumps(s.redacted())
    assert key not in shown and secret not in shown and "hunter2pw" not in shown
    assert "AKIA" not in shown and shown.count("\"****\"") == 2 and "bot:****@db:5432" in shown  # not even a prefix
    assert key not in repr(s) and secret not in str(s)

    stream = io.StringIO()
    logs.setup("test", stream=stream)
    logging.getLogger("t").info("signing with %s and %s", key, secret, extra={"dsn": "x hunter2pw"})
    line = stream.getvalue()
    assert key not in line and secret not in line and "hunter2pw" not in line
    assert json.loads(line)["msg"] == "signing with **** and ****"


def test_json_logs_carry_correlation_id_and_extras():
    stream = io.StringIO()
    logs.setup("execution", stream=stream)
    token = logs.correlation_id.set("abc123")
    try:
        logging.getLogger("celeris.x").warning("order rejected", extra={"code": -4014})
    finally:
        logs.correlation_id.reset(token)
    record = json.loads(stream.getvalue())
    assert record["correlation_id"] == "abc123" and record["code"] == -4014
    assert record["component"] == "execution" and record["level"] == "WARNING"


def test_parse_overrides():
    assert parse_overrides(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(SettingsError):
        parse_overrides(["novalue"])
