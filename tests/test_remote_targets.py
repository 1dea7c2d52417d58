"""Remote targets against real servers: XRootD (Debian's xrootd-server) and WebDAV (wsgidav), see tests/storage.py."""

from __future__ import annotations

import http.server
import importlib.util
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

import b2box as b2luigi
from b2box.api.remote import RemoteError, RemoteFileSystem, listing_scope
from b2box.engine.graph import TaskGraph
from tests.conftest import run_python
from tests.storage import Server, docker_bridge_address, free_port, start_webdav

pytestmark = pytest.mark.remote
WORKFLOWS = Path(__file__).parent / "workflows"


def system_for(url: str) -> RemoteFileSystem:
    return b2luigi.XRootDSystem(url) if url.startswith("root") else b2luigi.WebDAVSystem(url)


@pytest.fixture(params=["xrootd", "webdav"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(f"{request.param}_server")


def on_server(server: Server, path: str) -> Path:
    return server.data / path.lstrip("/")


def test_file_system_operations(server: Server, tmp_path: Path) -> None:
    fs = system_for(server.url())
    folder = f"/ops-{tmp_path.name}"
    local = tmp_path / "hello.txt"
    local.write_text("hello")
    fs.copy_file_to_remote(str(local), f"{folder}/a/hello.txt")
    assert on_server(server, f"{folder}/a/hello.txt").read_text() == "hello"
    assert fs.exists(f"{folder}/a/hello.txt") and not fs.exists(f"{folder}/a/missing.txt")
    with pytest.raises(RemoteError, match="exists already"):
        fs.copy_file_to_remote(str(local), f"{folder}/a/hello.txt")
    fs.mkdir(f"{folder}/b/c")
    assert on_server(server, f"{folder}/b/c").is_dir()
    entries, _ = fs.listdir(folder)
    assert entries == {f"{folder}/a/": 1, f"{folder}/b/": 1}
    target = b2luigi.RemoteTarget(f"{folder}/a/hello.txt", fs)
    assert Path(target.get(str(tmp_path / "down"))).read_text() == "hello"
    with target.get_temporary_input() as copy:
        assert Path(copy).read_text() == "hello"
    assert not Path(copy).exists(), "the temporary copy is removed"
    fs.copy_dir_from_remote(f"{folder}/a", str(tmp_path / "whole"))
    assert (tmp_path / "whole" / "hello.txt").read_text() == "hello"
    with b2luigi.RemoteTarget(f"{folder}/b/new.txt", fs).temporary_path() as scratch:
        Path(scratch).write_text("written locally")
    assert on_server(server, f"{folder}/b/new.txt").read_text() == "written locally"
    fs.remove(f"{folder}/a/hello.txt")
    assert not on_server(server, f"{folder}/a/hello.txt").exists()
    fs.remove_dir(folder)
    assert not on_server(server, folder).exists()


def test_a_failed_upload_leaves_nothing_under_the_final_name(server: Server, tmp_path: Path) -> None:
    fs = system_for(server.url())
    final = f"/failing-{tmp_path.name}/result.txt"
    blocker = on_server(server, final)
    blocker.mkdir(parents=True)  # a folder in the way: the new file cannot be moved into place
    (blocker / "inside.txt").write_text("x")
    local = tmp_path / "result.txt"
    local.write_text("complete")
    with pytest.raises(RemoteError, match=r"result\.txt"):
        fs.put(str(local), final)
    assert blocker.is_dir(), "nothing replaced what was there"
    assert not [path.name for path in blocker.parent.iterdir() if path.name.startswith(".b2box-partial-")]


def test_a_look_up_asks_for_one_path_not_the_tree_below_it(webdav_server: Server, tmp_path: Path) -> None:
    """A PROPFIND without Depth is a listing of the whole tree (RFC 4918): slow on a large tree, refused by many
    doors, and answered with 500 by a server whose tree changes meanwhile (parallel uploads). Only the batched
    completeness check lists a tree; every other look-up asks for ``Depth: 0``."""
    fs = b2luigi.WebDAVSystem(webdav_server.url())
    sent: list[tuple[str, str, str]] = []
    fs.client.http.event_hooks["request"].append(
        lambda request: sent.append((request.method, request.url.path, request.headers.get("Depth", "infinity")))
    )
    local = tmp_path / "hello.txt"
    local.write_text("hello")
    folder = f"/depth-{tmp_path.name}"
    fs.put(str(local), f"{folder}/a/b/hello.txt")
    fs.put(str(local), f"{folder}/a/b/hello.txt")  # replaced: looks up whether the name is a folder
    assert fs.exists(f"{folder}/a/b/hello.txt") and not fs.exists(f"{folder}/a/b/missing.txt")
    with listing_scope():
        assert b2luigi.RemoteTarget(f"{folder}/a/b/hello.txt", fs).exists()  # no listing_root: a look-up
    lookups = [(path, depth) for method, path, depth in sent if method == "PROPFIND"]
    assert lookups and all(depth == "0" for _, depth in lookups), lookups


def test_unreachable_server_is_an_error_naming_the_url() -> None:
    for url in (f"root://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"):
        with pytest.raises(RemoteError, match=rf"{url}/+somewhere/file\.txt failed.*Check that the server answers"):
            system_for(url).exists("/somewhere/file.txt")


class Counted:
    """Counts the protocol requests a real file system makes, and makes them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, system: type[RemoteFileSystem]) -> None:
        self.calls: list[str] = []
        for name in ("_exists", "_list_tree"):
            original = getattr(system, name)
            monkeypatch.setattr(system, name, self._counting(name, original))

    def _counting(self, name: str, original: Any) -> Any:
        def call(fs: Any, *arguments: Any) -> Any:
            self.calls.append(name)
            return original(fs, *arguments)

        return call


def run_examples(server: Server, tmp_path: Path, url: str | None = None, **env: str) -> Any:
    script = tmp_path / "wf" / "remote_examples.py"
    if not script.exists():
        script.parent.mkdir()
        shutil.copy(WORKFLOWS / "remote_examples.py", script)
    environment = {"REMOTE_SERVER": url or server.url(), "REMOTE_RESULTS": str(tmp_path / "examples"), **env}
    return run_python(script, env=environment)


def test_b2luigi_examples_run_and_are_complete_on_the_second_run_with_one_listing_per_folder(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_examples(server, tmp_path, REMOTE_FAIL="1")
    assert first.returncode == 1, first.stderr
    examples = on_server(server, str(tmp_path / "examples"))
    assert (examples / "default" / "Hello_world.txt").read_text() == "Hello World"
    assert (examples / "on_server" / "index=0" / "Hello_world.txt").read_text() == "Hello World 0"
    assert not (examples / "on_server" / "index=1" / "Hello_world.txt").exists(), "the failed task uploaded nothing"
    assert (examples / "default" / "remote_file.txt").read_text() == "mixed"
    assert (tmp_path / "examples" / "default" / "local_file.txt").read_text() == "mixed"
    assert not list(examples.rglob(".b2box-partial-*")), "no partial uploads left"

    second = run_examples(server, tmp_path)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "examples/default/all.txt").read_text() == "Hello World 0\nHello World 1\nHello World 2"

    # a third run finds everything complete: one listing per result folder, no request per file
    monkeypatch.setenv("REMOTE_SERVER", server.url())
    monkeypatch.setenv("REMOTE_RESULTS", str(tmp_path / "examples"))
    spec = importlib.util.spec_from_file_location("remote_examples_inline", WORKFLOWS / "remote_examples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    counted = Counted(monkeypatch, type(module.file_system()))
    b2luigi.set_setting("result_dir", str(tmp_path / "examples" / "default"))
    graph = TaskGraph.build([module.All()])
    assert all(node.state.finished for node in graph.nodes.values())
    assert counted.calls == ["_list_tree", "_list_tree"], "one listing for each of the two result folders"


@pytest.mark.docker
def test_remote_outputs_of_jobs_in_docker_containers(
    xrootd_server: Server, analysis_image: str, tmp_path: Path
) -> None:
    """The job reaches the server from inside its container (through the Docker bridge's address)."""
    bridge = docker_bridge_address()
    webdav, process = start_webdav(bridge)
    try:
        for url in (xrootd_server.url(bridge), webdav.url()):
            folder = tmp_path / url.split(":")[0]
            folder.mkdir()
            settings = {"image": analysis_image, "pass_env": ["REMOTE_SERVER", "REMOTE_RESULTS", "REMOTE_TASKS"]}
            (folder / "settings.json").write_text(json.dumps(settings))
            done = run_examples(xrootd_server, folder, url=url, REMOTE_TASKS="2")
            assert done.returncode == 0, done.stderr
            served = xrootd_server.data if url.startswith("root") else webdav.data
            examples = served / str(folder / "examples").lstrip("/")
            assert (examples / "on_server" / "index=1" / "Hello_world.txt").read_text() == "Hello World 1"
            record = json.loads((folder / "wf/logs/index=1/MyDefaultTask/provenance.json").read_text())
            assert record["image"]["runtime"] == "docker", "the task ran in its container"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_bearer_token_is_sent_where_the_server_asks_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """WLCG token discovery: BEARER_TOKEN, else BEARER_TOKEN_FILE; sent as Authorization: Bearer (a loopback
    server records what arrives)."""
    seen: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_PROPFIND(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(401)
            self.end_headers()

        def log_message(self, *arguments: Any) -> None:
            pass

    recorder = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("BEARER_TOKEN", "secret-token-123")
        url = f"http://127.0.0.1:{recorder.server_address[1]}"
        with pytest.raises(RemoteError) as refused:
            b2luigi.WebDAVSystem(url).exists("/data/file.txt")
        assert seen == ["Bearer secret-token-123"]
        assert "secret-token-123" not in str(refused.value) and url in str(refused.value)
    finally:
        recorder.shutdown()


def test_a_missing_client_library_names_the_extra_to_install(tmp_path: Path) -> None:
    script = tmp_path / "missing.py"
    script.write_text(
        "import sys\nsys.modules['XRootD'] = None\nsys.modules['webdav4'] = None\n"
        "sys.modules['webdav4.client'] = None\n"
        "import b2box\n"
        "for make in (lambda: b2box.XRootDSystem('root://127.0.0.1:1'), lambda: b2box.WebDAVSystem('http://x')):\n"
        "    try:\n        make()\n    except b2box.api.remote.RemoteError as error:\n        print(error)\n"
    )
    shown = run_python(script)
    assert shown.returncode == 0, shown.stderr
    assert "pip install 'b2box[xrootd]'" in shown.stdout and "pip install 'b2box[webdav]'" in shown.stdout
