"""The shared compile cache: ccache's *remote storage* URL, checked before any build.

The setting ``ccache_remote`` (``--ccache-remote URL`` on ``invoke build``,
``MPFORGE_CCACHE_REMOTE``, ``mpforge: ccache_remote:`` in ``invoke.yaml``; see
:mod:`mpforge.cli.options`) is handed to ccache unchanged as its ``remote_storage``
option (``CCACHE_REMOTE_STORAGE``). ccache 4.7 (Debian bookworm) takes, separated by
spaces, one or more of::

    redis://[[USER:]PASSWORD@]HOST[:PORT][/DB]     redis+unix:/PATH/TO/SOCKET
    http://HOST[:PORT]/PATH/                       file:/PATH  (file:///PATH)

each optionally followed by ``|attribute`` or ``|attribute=value`` (``|read-only``,
``|connect-timeout=500``, ``|operation-timeout=MS``, ``|layout=...``, ...). ccache
itself only warns about a URL it cannot use and then builds without it, so a typo
would silently cost every hit: :func:`check_remote` refuses it first, in one line.
There is no TLS in ccache 4.7's backends (``https://``, ``rediss://`` are refused).
"""

from __future__ import annotations

import http.client
import os
import re
import socket
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mpforge.core.errors import ConfigError

#: the URL schemes ccache 4.7 has backends for
SCHEMES = ("redis", "redis+unix", "http", "file")

#: the attributes ccache 4.7 knows (common ones and each backend's own); ``True``:
#: it takes a value (``name=value``), ``False``: a bare flag
ATTRIBUTES: dict[str, bool] = {
    "read-only": False, "shards": True,
    "connect-timeout": True, "operation-timeout": True,  # http and redis
    "bearer-token": True, "keep-alive": True, "layout": True,  # http (layout also file)
    "umask": True, "update-mtime": True,  # file
}

#: attributes whose value is a number of milliseconds
_MILLISECONDS = {"connect-timeout", "operation-timeout"}

_HINT = ("write it as ccache's remote_storage, e.g. redis://HOST:6379, redis+unix:/PATH, "
         "http://HOST:PORT/cache/ or file:/PATH, optionally with |read-only or |connect-timeout=MS")


def check_remote(value: str, source: str) -> str:
    """``value`` stripped when every entry is a URL ccache 4.7 can use; else a ConfigError
    naming ``source`` (``MPFORGE_CCACHE_REMOTE``, ``--ccache-remote``, ...) and the entry."""
    entries = value.split()
    if not entries:
        raise ConfigError(f"{source}: the ccache remote is empty", _HINT)
    for entry in entries:
        _check_entry(entry, source)
    return " ".join(entries)


def _check_entry(entry: str, source: str) -> None:
    url, *attributes = entry.split("|")
    scheme = url.partition(":")[0].lower()
    if scheme in ("https", "rediss"):
        raise ConfigError(f"{source}: '{url}': ccache 4.7 has no TLS for remote storage",
                          "keep the cache server on the runners' network and use http:// or redis://")
    if scheme not in SCHEMES or ":" not in url:
        raise ConfigError(f"{source}: '{url}' is not a ccache remote storage URL "
                          f"(schemes: {', '.join(SCHEMES)})", _HINT)
    parts = urlsplit(url)
    if scheme in ("redis", "http") and not parts.hostname:
        raise ConfigError(f"{source}: '{url}' names no host", _HINT)
    if scheme in ("redis", "http"):
        try:
            parts.port  # noqa: B018  (urllib checks the port when it is read)
        except ValueError:
            raise ConfigError(f"{source}: '{url}' has a port that is not a number from 0 to 65535",
                              _HINT) from None
    if scheme in ("redis+unix", "file") and not (parts.path or "").startswith("/"):
        raise ConfigError(f"{source}: '{url}' must name an absolute path ({scheme}:/PATH)", _HINT)
    for attribute in attributes:
        name, has_value, text = attribute.partition("=")
        if name not in ATTRIBUTES:
            raise ConfigError(f"{source}: unknown ccache remote attribute '|{name}' in '{entry}'",
                              f"ccache 4.7 knows: {', '.join(sorted(ATTRIBUTES))}")
        if ATTRIBUTES[name] != bool(has_value) or (has_value and not text):
            form = f"|{name}=VALUE" if ATTRIBUTES[name] else f"|{name} (no value)"
            raise ConfigError(f"{source}: '|{attribute}' in '{entry}' must be written {form}", _HINT)
        if name in _MILLISECONDS and not re.fullmatch(r"\d+", text):
            raise ConfigError(f"{source}: '|{attribute}' must be a whole number of milliseconds", _HINT)


def read_only(value: str) -> str:
    """``value`` with ``|read-only`` on every entry that lacks it (pull/merge requests' jobs)."""
    return " ".join(e if "read-only" in e.split("|")[1:] else f"{e}|read-only" for e in value.split())


def shown(value: str) -> str:
    """``value`` with any password (``redis://:SECRET@host``) and bearer token masked, for output."""
    masked = re.sub(r"(//[^/@|]*:)[^/@|]*@", r"\1***@", value)
    return re.sub(r"(\|bearer-token=)[^|\s]*", r"\1***", masked)


#: how long :func:`probe` waits for a server (seconds): longer than ccache's own 100 ms
#: connect timeout, so that doctor's answer is about the server, not a loaded machine
PROBE_TIMEOUT = 3.0


def probe(entry: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Ask the server of one remote ``entry`` (checked by :func:`check_remote`) whether it
    answers, the way ccache reaches it: None when it does, else why not (one line).

    ``redis://`` and ``redis+unix:`` get a ``PING`` (any reply, ``NOAUTH`` included, is an
    answer: ccache sends the password itself); ``http://`` a ``HEAD`` of the base URL (any
    HTTP status is an answer); ``file:`` must be a folder this user can write."""
    url = entry.split("|")[0]
    scheme = url.partition(":")[0].lower()
    parts = urlsplit(url)
    try:
        if scheme == "file":
            folder = Path(unquote(parts.path))
            if not folder.is_dir():
                return f"{folder} is not a folder"
            return None if os.access(folder, os.W_OK | os.X_OK) else f"{folder} is not writable"
        if scheme == "http":
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
            try:
                conn.request("HEAD", parts.path or "/")
                conn.getresponse()
            finally:
                conn.close()
            return None
        if scheme == "redis+unix":
            sock = socket.socket(socket.AF_UNIX)
            address: str | tuple[str, int] = unquote(parts.path)
        else:
            sock = socket.socket(socket.AF_INET6 if ":" in (parts.hostname or "") else socket.AF_INET)
            address = (parts.hostname or "", parts.port or 6379)
        with sock:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
        return None if reply[:1] in (b"+", b"-") else "the reply is not Redis's"
    except (OSError, http.client.HTTPException) as exc:
        return str(exc) or type(exc).__name__
