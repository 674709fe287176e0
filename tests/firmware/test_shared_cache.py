"""The shared compile cache against real servers, on the fixture tree (issue #29).

A real ``redis-server`` (Debian's, started here on a unix socket, nothing saved) and a
small HTTP server that takes PUT and GET, as ccache's ``http://`` backend needs; two
mpforge checkouts at different paths, each with its own fresh ``CCACHE_DIR``. ccache's own
counters (``ccache --print-stats`` with that ``CCACHE_DIR``) are the judge.
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Mirror, git, run_cli

needs_ccache = pytest.mark.skipif(shutil.which("ccache") is None,
                                  reason="ccache is not installed (Debian package ccache; .ci/run installs it)")
needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server is not installed (Debian package redis-server; "
                                        ".ci/run installs it)")


# --- the servers ----------------------------------------------------------------------

@pytest.fixture
def redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server on a unix socket in ``tmp_path``; yields its ``redis+unix:`` URL."""
    sock = tmp_path / "redis.sock"
    server = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _redis_answers(sock):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis+unix:{sock}"
    finally:
        server.terminate()
        server.wait(10)


def _redis_answers(sock: Path) -> bool:
    try:
        return _redis(sock, "PING") == "+PONG"
    except OSError:
        return False


def _redis(sock: Path, *command: str) -> str:
    """One command in Redis's protocol; the first line of the reply."""
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(str(sock))
        conn.sendall(f"*{len(command)}\r\n".encode() + b"".join(
            f"${len(c.encode())}\r\n{c}\r\n".encode() for c in command))
        return conn.recv(4096).split(b"\r\n")[0].decode()


def redis_keys(url: str) -> int:
    """How many keys the server behind ``url`` (``redis+unix:PATH``) holds."""
    return int(_redis(Path(url.split(":", 1)[1].split("|")[0]), "DBSIZE").lstrip(":"))


class _Store(http.server.BaseHTTPRequestHandler):
    """GET/HEAD/PUT/DELETE on an in-memory dict: the whole protocol ccache's http backend uses."""

    store: dict[str, bytes]
    puts: list[str]

    def do_GET(self) -> None:  # noqa: N802 (the standard library's names)
        body = self.store.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        if body is not None and self.command == "GET":
            self.wfile.write(body)

    do_HEAD = do_GET

    def do_PUT(self) -> None:  # noqa: N802
        self.store[self.path] = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.puts.append(self.path)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_DELETE(self) -> None:  # noqa: N802
        self.store.pop(self.path, None)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_store() -> Iterator[tuple[str, type[_Store]]]:
    """An HTTP server on a loopback port the OS chose; yields its URL and its handler class
    (``store``: what it holds, ``puts``: every PUT)."""
    handler = type("Store", (_Store,), {"store": {}, "puts": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ccache/", handler
    finally:
        server.shutdown()
        server.server_close()


# --- two checkouts ----------------------------------------------------------------------

def second_checkout(project: Path, where: Path) -> Path:
    """Another mpforge checkout of the same commit, at ``where`` (another path, deeper)."""
    where.parent.mkdir(parents=True)
    git(where.parent, "clone", "-q", str(project), str(where))
    (where / "micropython").mkdir(exist_ok=True)
    return where


def build(project: Path, mirror: Mirror, ccache_dir: Path, *extra: str):
    return run_cli(project, "build", "--mirror", str(mirror.base), *extra,
                   env={"CCACHE_DIR": str(ccache_dir), "MPFORGE_CCACHE": None, "MPFORGE_CCACHE_REMOTE": None})


def counters(ccache_dir: Path) -> dict[str, int]:
    """ccache's own counters for ``ccache_dir``."""
    out = subprocess.run(["ccache", "--print-stats"], env={"CCACHE_DIR": str(ccache_dir), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    pairs = (line.split("\t") for line in out.splitlines())
    return {name: int(value) for name, value in pairs if value.strip().isdigit()}


def artifacts(project: Path) -> dict[str, str]:
    manifest = json.loads((project / "dist" / "unix" / "manifest.json").read_text())
    return {a["name"]: a["sha256"] for a in manifest["artifacts"]}


def _remote_run(fixture_project: Path, fixture_mirror: Mirror, tmp_path: Path, url: str):
    first, second_dir = tmp_path / "cc-first", tmp_path / "cc-second"
    cold = build(fixture_project, fixture_mirror, first, "--ccache-remote", url)
    assert cold.returncode == 0, cold.stdout + cold.stderr
    written = counters(first)
    assert written["cache_miss"] >= 4 and written.get("remote_storage_hit", 0) == 0
    other = second_checkout(fixture_project, tmp_path / "elsewhere" / "a-longer-path" / "mpforge")
    warm = build(other, fixture_mirror, second_dir, "--ccache-remote", url)
    assert warm.returncode == 0, warm.stdout + warm.stderr
    got = counters(second_dir)
    # every object the first checkout compiled comes from the remote: none compiled again
    assert got["remote_storage_hit"] == written["cache_miss"], got
    assert got["cache_miss"] == 0, got
    assert f"{written['cache_miss']} remote" in warm.stdout
    assert artifacts(other) == artifacts(fixture_project)
    assert (other / "dist" / "unix" / "micropython").read_bytes() == \
        (fixture_project / "dist" / "unix" / "micropython").read_bytes()


@needs_redis
@needs_ccache
def test_a_second_checkout_elsewhere_gets_every_object_from_redis(fixture_project, fixture_mirror, tmp_path,
                                                                   redis):
    _remote_run(fixture_project, fixture_mirror, tmp_path, redis)


@needs_ccache
def test_a_second_checkout_elsewhere_gets_every_object_over_http(fixture_project, fixture_mirror, tmp_path,
                                                                  http_store):
    url, handler = http_store
    _remote_run(fixture_project, fixture_mirror, tmp_path, url)
    assert handler.puts  # the first checkout wrote them there


@needs_redis
@needs_ccache
def test_read_only_writes_nothing(fixture_project, fixture_mirror, tmp_path, redis, http_store):
    url, handler = http_store
    result = build(fixture_project, fixture_mirror, tmp_path / "cc", "--ccache-remote",
                   f"{redis}|read-only {url}|read-only")
    assert result.returncode == 0, result.stdout + result.stderr
    stats = counters(tmp_path / "cc")
    assert stats["cache_miss"] >= 4 and stats["remote_storage_miss"] >= 4  # it asked both...
    assert redis_keys(redis) == 0 and handler.puts == []  # ...and wrote to neither


@needs_ccache
def test_a_stopped_server_costs_one_warning_not_the_build(fixture_project, fixture_mirror, tmp_path):
    with socket.socket() as probe:  # a loopback port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ccache/"
    result = build(fixture_project, fixture_mirror, tmp_path / "cc", "--ccache-remote", url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (fixture_project / "dist" / "unix" / "micropython").is_file()
    assert counters(tmp_path / "cc")["remote_storage_error"] >= 1
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if url in line]
    assert len(warnings) == 1 and "did not answer" in warnings[0], warnings


def test_an_edited_header_rebuilds_every_object_that_includes_it(fixture_project, fixture_mirror, tmp_path):
    """The price ccache's base_dir would have cost (dependency files naming targets make
    never builds): with the make folder's relative paths, make still sees the header."""
    assert build(fixture_project, fixture_mirror, tmp_path / "cc").returncode == 0
    obj = fixture_project / "build" / "unix" / "obj"
    deps = (obj / "obj.d").read_text()
    assert "../py/obj.h" in deps and str(fixture_project) not in deps  # relative, as make got them
    before = {p.name: p.stat().st_mtime_ns for p in obj.glob("*.o")}
    time.sleep(0.01)
    header = fixture_project / "micropython" / "py" / "obj.h"
    header.write_text(header.read_text().replace("#define STATIC static", "#define STATIC static\n"
                                                 "#define FIXTURE_EDITED 1"))
    again = build(fixture_project, fixture_mirror, tmp_path / "cc")
    assert again.returncode == 0, again.stdout + again.stderr
    after = {p.name: p.stat().st_mtime_ns for p in obj.glob("*.o")}
    rebuilt = {name for name in before if after[name] != before[name]}
    # obj.c includes py/obj.h and nothing else that changed; gc.c and banner.c do not include it
    assert "obj.o" in rebuilt and "mini.o" in rebuilt
    assert not {"gc.o", "banner.o"} & rebuilt, rebuilt


# --- seen, not guessed -------------------------------------------------------------------

needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")


def _row(output: str, target: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(target + " "))


@needs_arm
@needs_ccache
def test_each_target_of_a_matrix_has_its_own_figures(fixture_project, fixture_mirror, tmp_path):
    """Two targets built at once into one ccache folder: each row has its own
    local/remote/miss figures (ccache's stats log per target), not the run's sum."""
    cache = tmp_path / "cc"
    cold = build(fixture_project, fixture_mirror, cache, "--port", "unix,bare-arm")
    assert cold.returncode == 0, cold.stdout + cold.stderr
    unix_misses = int(_row(cold.stdout, "unix").split("0/0/")[1].split()[0])
    bare_misses = int(_row(cold.stdout, "bare-arm").split("0/0/")[1].split()[0])
    assert unix_misses == 4 and bare_misses >= 1 and counters(cache)["cache_miss"] == unix_misses + bare_misses
    warm = build(fixture_project, fixture_mirror, cache, "--port", "unix,bare-arm", "--clean")
    assert f"{unix_misses}/0/0" in _row(warm.stdout, "unix")
    assert f"{bare_misses}/0/0" in _row(warm.stdout, "bare-arm")


def test_summary_json_carries_each_targets_figures():
    from mpforge.ci.run import CiReport
    from mpforge.cli.render.ci import _summary
    from mpforge.firmware.ccache import CcacheStats
    from mpforge.firmware.matrix import MatrixReport, Status, TargetResult
    from mpforge.firmware.target import BuildResult

    stats = CcacheStats.from_log("# a.c\ndirect_cache_hit\nremote_storage_hit\nremote_storage_read_hit\n"
                                 "remote_storage_read_hit\n# b.c\ncache_miss\nremote_storage_error\n"
                                 "# c.c\npreprocessed_cache_hit\n# d.c\ncalled_for_link\n")
    assert (stats.local_hits, stats.remote_hits, stats.misses, stats.remote_errors, stats.uncacheable) == \
        (1, 1, 1, 1, 1)
    done = TargetResult("unix", Status.OK, built=BuildResult("unix", Path("d"), {}, True, 1.0, ccache=stats))
    data = _summary(CiReport(matrix=MatrixReport([done, TargetResult("x", Status.SKIPPED)], 1.0, 2)))
    figures = {t["target"]: t["ccache"] for t in data["targets"]}
    assert figures["x"] is None
    unix = figures["unix"]
    assert (unix["local_hits"], unix["remote_hits"], unix["misses"], unix["remote_errors"]) == (1, 1, 1, 1)


@needs_redis
@needs_ccache
def test_doctor_names_the_remote_where_it_came_from_and_whether_it_answers(fixture_project, redis):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = f"http://127.0.0.1:{port}/cache/"
    result = run_cli(fixture_project, "doctor", env={"MPFORGE_CCACHE_REMOTE": f"{redis} {down}"})
    out = result.stdout + result.stderr
    assert f"ccache_remote: {redis} {down} (MPFORGE_CCACHE_REMOTE)" in out
    assert f"ccache remote {redis} answers" in out
    answers = [line for line in out.splitlines() if down in line and "does not answer" in line]
    assert len(answers) == 1 and "refused" in answers[0], out
    given = run_cli(fixture_project, "doctor", "--ccache-remote", redis)
    assert f"ccache_remote: {redis} (--ccache-remote)" in given.stdout + given.stderr
