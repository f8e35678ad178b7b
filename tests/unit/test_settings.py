"""chalicelib.settings: one Settings object, built lazily from the environment."""

from __future__ import annotations

import pytest

from chalicelib.errors import SettingsError
from chalicelib.settings import Settings, get_settings

REQUIRED = {
    "SLUICE_RULES_TABLE": "rules",
    "SLUICE_ARCHIVE_BUCKET": "archive",
    "SLUICE_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
}


def test_values_come_from_the_environment():
    """Every setting is read from its variable."""
    s = Settings.from_env(
        {
            **REQUIRED,
            "SLUICE_STATE_TABLE": "state",
            "SLUICE_SLACK_SECRET": "sluice/slack",
            "SLUICE_SLACK_API_URL": "http://127.0.0.1:9999/api/",
            "AWS_REGION": "eu-west-1",
            "SLUICE_RULES_TTL": "15.5",
            "SLUICE_ARCHIVE_GZIP_LEVEL": "6",
            "POWERTOOLS_METRICS_NAMESPACE": "Custom",
        }
    )
    assert (s.rules_table, s.state_table, s.archive_bucket, s.dlq_url) == (
        "rules",
        "state",
        "archive",
        REQUIRED["SLUICE_DLQ_URL"],
    )
    assert (s.slack_secret, s.slack_api_url, s.region) == (
        "sluice/slack",
        "http://127.0.0.1:9999/api/",
        "eu-west-1",
    )
    assert (s.rules_ttl_s, s.archive_gzip_level, s.metrics_namespace) == (15.5, 6, "Custom")


def test_defaults():
    """Only the three required variables: TTL 60 s, gzip level 1, no Slack URL, us-east-1."""
    s = Settings.from_env(dict(REQUIRED))
    assert (s.rules_ttl_s, s.archive_gzip_level, s.slack_api_url, s.region) == (
        60.0,
        1,
        None,
        "us-east-1",
    )
    assert (s.state_table, s.slack_secret, s.metrics_namespace) == ("", "", "Sluice")


@pytest.mark.parametrize(
    ("env", "region"),
    [
        pytest.param(
            {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"},
            "eu-west-1",
            id="AWS_REGION first",
        ),
        pytest.param({"AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2", id="AWS_DEFAULT_REGION"),
        pytest.param({"AWS_REGION": ""}, "us-east-1", id="empty falls back"),
    ],
)
def test_region(env, region):
    """Lambda's AWS_REGION wins, then AWS_DEFAULT_REGION, then us-east-1."""
    assert Settings.from_env({**REQUIRED, **env}).region == region


def test_all_missing_variables_are_named_at_once():
    """A missing required variable is an error that names every one missing."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"SLUICE_ARCHIVE_BUCKET": "archive", "SLUICE_DLQ_URL": ""})
    assert str(info.value) == "missing environment variable(s): SLUICE_RULES_TABLE, SLUICE_DLQ_URL"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("SLUICE_RULES_TTL", "a minute", id="TTL text"),
        pytest.param("SLUICE_ARCHIVE_GZIP_LEVEL", "fast", id="gzip text"),
        pytest.param("SLUICE_ARCHIVE_GZIP_LEVEL", "10", id="gzip above 9"),
        pytest.param("SLUICE_ARCHIVE_GZIP_LEVEL", "-1", id="gzip below 0"),
    ],
)
def test_malformed_numbers_are_refused(name, value):
    """Numeric settings that are not numbers, or out of range, are SettingsErrors."""
    with pytest.raises(SettingsError):
        Settings.from_env({**REQUIRED, name: value})


def test_empty_slack_url_means_none():
    """An empty SLUICE_SLACK_API_URL means Slack's own endpoint (None)."""
    assert Settings.from_env({**REQUIRED, "SLUICE_SLACK_API_URL": ""}).slack_api_url is None


def test_get_settings_is_cached_until_cleared(monkeypatch):
    """`get_settings()` reads the environment once; `cache_clear()` makes it read again."""
    first = get_settings()
    monkeypatch.setenv("SLUICE_ARCHIVE_BUCKET", "another-bucket")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().archive_bucket == "another-bucket"


def test_settings_are_immutable():
    """Settings cannot be changed after they are built."""
    s = Settings.from_env(dict(REQUIRED))
    with pytest.raises(AttributeError):
        s.archive_bucket = "x"  # type: ignore[misc]
