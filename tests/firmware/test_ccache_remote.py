"""ccache's remote storage URL: what is accepted as ccache 4.7 writes it, what is refused in one line."""

from __future__ import annotations

import pytest

from mpforge.core.errors import ConfigError
from mpforge.firmware.ccache import CcacheStats
from mpforge.firmware.ccache_remote import check_remote, read_only, shown


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379", "redis+unix:/run/redis.sock|connect-timeout=500",
                                 "http://cache.lan:8080/ccache/|read-only", "file:/srv/ccache|layout=flat",
                                 "redis://a redis://b|read-only"])
def test_ccache_urls_are_accepted_as_given(url):
    assert check_remote(f"  {url} ", "MPFORGE_CCACHE_REMOTE") == url


@pytest.mark.parametrize("url, said", [
    ("https://cache/", "no TLS"), ("redis://h:99999", "port"), ("redis+unix:relative", "absolute path"),
    ("http://h|read-only=1", "must be written |read-only"), ("http://h|bogus", "unknown ccache remote attribute"),
    ("ftp://h", "not a ccache remote storage URL"), ("redis://h|connect-timeout=soon", "milliseconds"),
    ("http:///path", "names no host")])
def test_malformed_urls_are_refused_naming_where_they_came_from(url, said):
    with pytest.raises(ConfigError, match=said) as caught:
        check_remote(url, "--ccache-remote")
    assert caught.value.one_line().startswith("--ccache-remote: ")


def test_read_only_is_added_once_and_secrets_are_masked():
    assert read_only("redis://a http://b|read-only") == "redis://a|read-only http://b|read-only"
    assert shown("redis://:hunter2@h|read-only http://h|bearer-token=abc") == \
        "redis://:***@h|read-only http://h|bearer-token=***"


def test_remote_hits_and_errors_come_from_ccaches_counters():
    before = {"direct_cache_hit": 1, "cache_miss": 2, "remote_storage_hit": 0}
    after = {"direct_cache_hit": 9, "preprocessed_cache_hit": 2, "cache_miss": 3, "remote_storage_hit": 6,
             "remote_storage_error": 1, "remote_storage_timeout": 1}
    stats = CcacheStats.between(before, after)
    assert (stats.hits, stats.local_hits, stats.remote_hits, stats.misses, stats.remote_errors) == (10, 4, 6, 1, 2)
    assert stats.describe() == "ccache: 10 hits (4 local, 6 remote), 1 misses, 2 remote errors (hit rate 91%)"
    assert stats.as_dict()["remote_hit_rate"] == 0.545
    assert "redis://:***@h did not answer 2 time(s)" in (stats.warning("redis://:pw@h") or "")
    assert CcacheStats(3, 0).warning("redis://h") is None
