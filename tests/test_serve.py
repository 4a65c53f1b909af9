"""`charrnn serve`: the real server in a subprocess on a free port, spoken to over HTTP with the
standard library, and its page driven in a real headless browser."""

import http.client
import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from charrnn.serve import limits

from .conftest import TINY_OPTIONS, a_stop_some_streams_meet, first_stop, under_ci


def _require(module: str):
    """Imports a test dependency; under CI a missing one fails the test instead of skipping it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if under_ci():
            pytest.fail(f"CI must have {module} (pip install -e '.[serve,test]')")
        pytest.skip(f"{module} is not installed")


class Server:
    """A `charrnn serve` subprocess; `url` once it listens."""

    def __init__(self, run, *options, launcher=("-m", "charrnn"), env=None):
        _require("starlette"), _require("uvicorn")
        self.process = subprocess.Popen([sys.executable, *launcher, "serve", str(run), "--port", "0", *options],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            found = re.search(r"on http://127\.0\.0\.1:(\d+) ", line)
            if found:
                self.port = int(found.group(1))
                threading.Thread(target=self._drain, daemon=True).start()
                return
        self.process.kill()
        raise AssertionError(f"the server did not start: {''.join(self.lines)}")

    def _drain(self):
        for line in self.process.stderr:
            self.lines.append(line)

    def request(self, method, path, body=None, raw=None, timeout=60):
        """(status, parsed JSON or text) of one request."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        answer = connection.getresponse()
        text = answer.read().decode()
        connection.close()
        kind = answer.getheader("Content-Type", "")
        return answer.status, json.loads(text) if kind.startswith("application/json") else text

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


@pytest.fixture(scope="module")
def server(tiny_run):
    server = Server(tiny_run, "--max-streams", "8")
    yield server
    assert server.stop() == 0, "".join(server.lines)


def _events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = [line for line in block.split("\n") if not line.startswith(":")]
        if not lines:
            continue
        name = next((line[7:] for line in lines if line.startswith("event: ")), "message")
        data = next(json.loads(line[6:]) for line in lines if line.startswith("data: "))
        events.append((name, data))
    return events


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_generate_gives_charrnn_samples_text(server, tiny_run):
    options = dict(prime="All:", length=120, temperature=0.9, top_k=6, seed=5, num_samples=3)
    status, answer = server.request("POST", "/generate", options)
    assert status == 200 and answer["seed"] == 5 and len(answer["texts"]) == 3
    assert all(text.startswith("All:") and len(text) == 124 for text in answer["texts"])
    printed = subprocess.run([sys.executable, "-m", "charrnn", "sample", str(tiny_run), "--prime", "All:",
                              "--length", "120", "--temperature", "0.9", "--top-k", "6", "--seed", "5",
                              "--num-samples", "3"], capture_output=True, text=True, check=True).stdout
    assert printed == "\n\n".join(answer["texts"]) + "\n"


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_each_precision_serves_charrnn_samples_text_for_it(server, tiny_run):
    """The default server says which loop it runs; a float32 server gives `charrnn sample
    --precision float32`'s text, so both of the sampler's loops stand behind the server."""
    from charrnn.generation.sampler import Sampler

    expected = Sampler(tiny_run)
    said = "".join(server.lines)
    assert f"({expected.precision} weights on the {expected.backend} loop;" in said, said
    exact = Server(tiny_run, "--max-streams", "4", "--precision", "float32")
    try:
        assert "(float32 weights on the xla-float32 loop;" in "".join(exact.lines)
        options = dict(prime="All:", length=80, temperature=0.8, top_p=0.9, seed=8, num_samples=2)
        status, answer = exact.request("POST", "/generate", options)
        assert status == 200
        assert answer["texts"] == Sampler(tiny_run, precision="float32").generate(**options)
    finally:
        assert exact.stop() == 0, "".join(exact.lines)


def test_stream_sends_text_as_it_is_generated(server):
    status, text = server.request("GET", "/stream?prime=Speak&length=300&seed=9&temperature=0.8")
    assert status == 200
    events = _events(text)
    assert events[0] == ("start", {"seed": 9, "num_samples": 1}) and events[-1] == ("done", {"seed": 9})
    pieces = [data["texts"][0] for name, data in events if name == "message"]
    assert pieces[0] == "Speak" and len(pieces) >= 4  # the prime, then chunks of at most 64 characters
    _, whole = server.request("POST", "/generate", dict(prime="Speak", length=300, seed=9, temperature=0.8))
    assert "".join(pieces) == whole["texts"][0]


# mixed modes, knobs, sample counts and lengths (long enough that they overlap), 11 streams for 8
# slots, so streams join and leave between chunks and some requests wait for room
CROWD = [dict(prime="All:", length=3000, seed=1), dict(prime="Speak", length=900, seed=2, temperature=0.7),
         dict(length=5000, seed=3, top_k=4, num_samples=2), dict(prime="First", length=2000, seed=4, top_p=0.9),
         dict(prime="hear", length=2500, seed=5, top_k=8, temperature=1.3), dict(length=600, seed=6, argmax=True),
         dict(prime="All:", length=4000, seed=1, num_samples=3, temperature=0.5),
         dict(prime="me", length=1500, seed=7)]


def test_a_requests_text_does_not_depend_on_the_crowd(server):
    alone = [server.request("POST", "/generate", options)[1]["texts"] for options in CROWD]

    def ask(index):
        time.sleep(0.02 * (index % 3))  # some join while others are already running
        return server.request("POST", "/generate", CROWD[index])[1]["texts"]

    with ThreadPoolExecutor(len(CROWD)) as pool:
        crowd = list(pool.map(ask, range(len(CROWD))))
    assert crowd == alone
    assert server.request("GET", "/health")[1]["peak_streams"] > 3  # they did share chunks


BAD = [
    (b'{"length": 4', 400, None),
    (b"[1, 2]", 400, None),
    (b"null", 400, None),
    (b'"prime"', 400, None),
    (b"5", 400, None),
    (b"\xff\xfe", 400, None),
    ({"lenght": 5}, 400, "lenght"),
    ({"length": limits.MAX_LENGTH + 1}, 400, "length"),
    ({"length": -1}, 400, "length"),
    ({"length": "5"}, 400, "length"),
    ({"length": 5.5}, 400, "length"),
    ({"temperature": 0}, 400, "temperature"),
    ({"temperature": "hot"}, 400, "temperature"),
    ({"top_k": 0}, 400, "top_k"),
    ({"top_p": 1.5}, 400, "top_p"),
    ({"top_p": 0}, 400, "top_p"),
    ({"num_samples": 0}, 400, "num_samples"),
    ({"num_samples": 9}, 400, "num_samples"),  # over --max-streams 8
    ({"seed": 2 ** 70}, 400, "seed"),
    ({"argmax": "yes"}, 400, "argmax"),
    ({"argmax": True, "temperature": 0.5}, 400, "temperature"),
    ({"argmax": True, "top_k": 3}, 400, "top_k"),
    ({"prime": "All~\u00e9", "unknown": "error"}, 400, "prime"),  # without "unknown": "error", read by the one rule
    ({"unknown": "maybe"}, 400, "unknown"),
    ({"prime": "a" * (limits.MAX_PRIME + 1)}, 400, "prime"),
    (b'{"prime": "' + b"a" * limits.MAX_BODY_BYTES + b'"}', 413, None),
    ({"stop": ""}, 400, "stop"),
    ({"stop": 5}, 400, "stop"),
    ({"stop": ["a", 3]}, 400, "stop"),
    ({"stop": ["a", ""]}, 400, "stop"),
    ({"stop": ["a"] * (limits.MAX_STOPS + 1)}, 400, "stop"),
    ({"stop": "a" * (limits.MAX_STOP_LENGTH + 1)}, 400, "stop"),
    ({"stop": ["All", "Q~"]}, 400, "stop"),
]


@pytest.mark.parametrize("body,status,field", BAD, ids=lambda value: str(value)[:30])
def test_bad_requests_get_a_4xx_naming_the_field(server, body, status, field):
    raw = body if isinstance(body, bytes) else None
    got, answer = server.request("POST", "/generate", None if raw else body, raw=raw, timeout=20)
    assert (got, answer["field"]) == (status, field), answer
    assert answer["error"]
    if field == "prime" and "~" in str(body):
        assert "'~'" in answer["error"] and "'é'" in answer["error"]


def test_stop_ends_each_sample_before_its_first_stop(server):
    """`"stop"` (a string or a list) cuts each sample as `charrnn sample --stop` does: the same
    draws up to the stop, the others to `length`; the answer says which stop ended each and where."""
    options = dict(prime="All:", length=300, seed=6, temperature=0.9, num_samples=4)
    status, plain = server.request("POST", "/generate", options)
    assert status == 200 and "stopped" not in plain and "stop_at" not in plain
    stop = a_stop_some_streams_meet(plain["texts"], 4)
    status, answer = server.request("POST", "/generate", {**options, "stop": stop})
    assert status == 200, answer
    for text, cut, stopped, stop_at in zip(plain["texts"], answer["texts"], answer["stopped"], answer["stop_at"]):
        kept, found = first_stop(text[4:], [stop])  # the prime is not searched
        assert (cut, stopped, stop_at) == ("All:" + kept, found, len(cut) if found else None)
    assert answer["stopped"][0] == stop and None in answer["stopped"]
    # the stream's pieces, and its done event, say the same; `stop` repeats in a query
    query = urllib.parse.urlencode([*options.items(), ("stop", stop), ("stop", "zzz")])
    status, text = server.request("GET", f"/stream?{query}")
    events = _events(text)
    pieces = ["".join(parts) for parts in zip(*(data["texts"] for name, data in events if name == "message"))]
    expected = [first_stop(text[4:], [stop, "zzz"]) for text in plain["texts"]]
    assert pieces == ["All:" + kept for kept, _ in expected]
    assert events[-1] == ("done", {"seed": 6, "stopped": [found for _, found in expected],
                                   "stop_at": [len(piece) if found else None for piece, (_, found) in zip(pieces, expected)]})


def test_a_stopped_stream_leaves_the_batch_at_once(server):
    """A stream that has met its stop draws no more: the request ends long before its length."""
    before = server.request("GET", "/health")[1]["served_chars"]
    options = dict(prime="All:", length=limits.MAX_LENGTH, seed=2, num_samples=3, stop=["\n", ":"])
    status, answer = server.request("POST", "/generate", options)
    assert status == 200 and None not in answer["stopped"], answer
    # each stream drew only the chunks (of 64) up to the one in which its stop ended
    drawn = sum(-(-(stop_at - 4 + len(stopped)) // 64) * 64 for stopped, stop_at in zip(answer["stopped"], answer["stop_at"]))
    assert server.request("GET", "/health")[1]["served_chars"] - before == drawn < 1000


@pytest.mark.parametrize("query,field", [("length=abc", "length"), ("bogus=1", "bogus"),
                                         ("top_p=2", "top_p"), ("length=5&length=6", "length")])
def test_bad_stream_queries_get_a_400(server, query, field):
    status, answer = server.request("GET", f"/stream?{query}", timeout=20)
    assert (status, answer["field"]) == (400, field)


def test_health_info_and_unknown_routes(server, tiny_run):
    status, health = server.request("GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["max_streams"] == 8
    status, info = server.request("GET", "/info")
    printed = subprocess.run([sys.executable, "-m", "charrnn", "info", str(tiny_run), "--json"],
                             capture_output=True, text=True, check=True).stdout
    assert status == 200 and info == json.loads(printed)
    assert server.request("GET", "/nowhere")[0] == 404
    assert server.request("GET", "/generate")[0] == 405


def test_score_gives_charrnn_scores_numbers(server, tiny_run):
    import charrnn

    texts = ["All:\nSpeak, speak.", "First Citizen:"]
    status, answer = server.request("POST", "/score", {"texts": texts})
    assert status == 200 and [row["text"] for row in answer["scores"]] == texts

    expected = charrnn.score(charrnn.load(tiny_run), texts)
    for got, want in zip(answer["scores"], expected):
        assert got["chars"] == want["chars"] and abs(got["log_prob"] - want["log_prob"]) < 1e-4
    for body, field in [({"texts": []}, "texts"), ({"texts": ["a", 3]}, "texts"), ({"text": ["a"]}, "text"),
                        ({"texts": ["caf\u00e9"], "unknown": "error"}, "texts"), ({"texts": ["a"], "unknown": 1}, "unknown")]:
        got, answer = server.request("POST", "/score", body, timeout=20)
        assert (got, answer["field"]) == (400, field), answer
    # a character the model never saw is skipped (and counted) by the one rule, as `charrnn score` does
    status, answer = server.request("POST", "/score", {"texts": ["Speak, sp\u00e9ak."]})
    [want] = charrnn.score(charrnn.load(tiny_run), ["Speak, sp\u00e9ak."])
    assert status == 200 and answer["scores"][0]["skipped"] == 1 == want["skipped"]
    assert abs(answer["scores"][0]["log_prob"] - want["log_prob"]) < 1e-4
    status, answer = server.request("POST", "/generate", {"prime": "All~\u00e9", "length": 5, "seed": 1})
    assert status == 200 and answer["texts"][0].startswith("All~\u00e9"), answer


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_a_bytes_run_takes_and_gives_text(tmp_path):
    """An `--encoding bytes` run's symbols are bytes; the server turns a prime into its UTF-8 bytes
    and the generated bytes back into text, as `charrnn sample` writes them."""
    import charrnn

    _require("starlette"), _require("uvicorn")
    corpus = tmp_path / "gruesse.txt"
    corpus.write_text("Grüße aus Köln, schöne Grüße! " * 100, encoding="utf-8")
    run = tmp_path / "bytes-run"
    charrnn.train(corpus, run, max_steps=30, encoding="bytes", progress=False, log=lambda line: None,
                  **{**TINY_OPTIONS, "eval_every": 30})
    server = Server(run)
    try:
        # 400 bytes: several chunks of 64 (the split characters are the next test's)
        status, answer = server.request("POST", "/generate", dict(prime="Grü", length=400, seed=3))
        assert status == 200 and answer["texts"][0].startswith("Grü"), answer
        printed = subprocess.run([sys.executable, "-m", "charrnn", "sample", str(run), "--prime", "Grü",
                                  "--length", "400", "--seed", "3"], capture_output=True, check=True).stdout
        assert answer["texts"][0] + "\n" == printed.decode("utf-8", "replace")

        status, answer = server.request("POST", "/generate", raw=b'{"prime": "\\ud83d"}')
        assert (status, answer["field"]) == (400, "prime")

        status, text = server.request("GET", "/stream?prime=K%C3%B6&length=40&seed=3")
        pieces = "".join(piece for kind, event in _events(text) if kind == "message" for piece in event["texts"])
        assert status == 200 and pieces.startswith("Kö") and "\u00c3" not in pieces

        status, answer = server.request("POST", "/score", {"texts": ["schöne"]})
        assert status == 200 and answer["scores"][0]["text"] == "schöne"
        assert answer["scores"][0]["chars"] == len("schöne".encode("utf-8"))  # symbols: bytes
    finally:
        assert server.stop() == 0, "".join(server.lines)


def test_a_bytes_runs_pieces_are_decoded_across_chunks():
    """Each stream's bytes are decoded as they come: a character whose bytes land in two chunks
    arrives whole with the second, and a byte left over at the end arrives as U+FFFD before done."""
    _require("starlette")
    import asyncio
    from types import SimpleNamespace

    from charrnn.serve.app import Service

    jobs = []
    engine = SimpleNamespace(sampler=SimpleNamespace(vocab=SimpleNamespace(symbols=[])), max_streams=8,
                             submit=jobs.append)
    run = SimpleNamespace(train_config=SimpleNamespace(encoding="bytes"))

    async def deliveries():
        job, queue = Service(engine, {}, False, run).submit(SimpleNamespace(num_samples=2, seed=1))
        job.deliver("piece", ["Gr\xc3", "K\xc3\xb6"])  # what the engine sends: one latin-1 symbol a byte
        job.deliver("piece", ["\xbc", "\xc3"])
        job.deliver("done", None)
        for _ in range(3):
            await asyncio.sleep(0)
        return [queue.get_nowait() for _ in range(queue.qsize())]

    assert asyncio.run(deliveries()) == [("piece", ["Gr", "Kö"]), ("piece", ["ü", ""]),
                                         ("piece", ["", "\ufffd"]), ("done", None)]
    assert [job.seed for job in jobs] == [1]


def test_a_client_gone_mid_stream_frees_its_slots(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as connection:
        connection.sendall(f"GET /stream?length={limits.MAX_LENGTH}&num_samples=8 HTTP/1.1\r\n"
                           "Host: test\r\n\r\n".encode())
        received = b""
        while received.count(b"data: ") < 3:  # start, the prime, a first chunk
            received += connection.recv(65536)
    deadline = time.monotonic() + 20
    while server.request("GET", "/health")[1]["active_streams"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.request("GET", "/health")[1]["active_streams"] == 0
    # all 8 slots are free again: a request for 8 streams runs at once
    status, answer = server.request("POST", "/generate", dict(length=20, num_samples=8, seed=1), timeout=20)
    assert status == 200 and len(answer["texts"]) == 8


@pytest.mark.slow
@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_sigterm_finishes_requests_in_flight_and_exits_0(tiny_run):
    server = Server(tiny_run)
    results = []
    asking = threading.Thread(target=lambda: results.append(server.request(
        "POST", "/generate", dict(length=limits.MAX_LENGTH, num_samples=16, seed=2))))
    asking.start()
    deadline = time.monotonic() + 30
    while server.request("GET", "/health")[1]["active_streams"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.stop(signal.SIGTERM) == 0, "".join(server.lines)
    asking.join(30)
    status, answer = results[0]
    assert status == 200 and [len(text) for text in answer["texts"]] == [limits.MAX_LENGTH] * 16  # no prime
    assert "stopped by SIGTERM" in "".join(server.lines)


def test_without_the_serve_extra_one_error_line(tiny_run):
    hide = "import sys; sys.modules['uvicorn'] = None; from charrnn.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", hide, "serve", str(tiny_run)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "Error: charrnn serve needs the serve extra: pip install 'charrnn[serve]'"


@pytest.mark.bench
def test_the_load_benchmark_prints_its_table(tiny_run):
    _require("uvicorn")
    script = os.path.join(os.path.dirname(__file__), "..", "bench", "serve_load.py")
    done = subprocess.run([sys.executable, script, str(tiny_run), "--clients", "3", "--length", "40"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "identical batched and one at a time (same seeds): 3 of 3" in done.stdout
    assert done.stdout.count("s ") >= 3 and "one at a time (--max-streams 1)" in done.stdout




def test_the_page_streams_text_in_a_real_browser(server, browser):
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{server.port}/")
        page.wait_for_function("document.getElementById('about').textContent !== ''", timeout=30_000)
        assert page.is_hidden("#label-choice")  # an unlabelled run has no label menu
        # note the output's length at each update, and whether the page still said "generating"
        page.evaluate("""() => { window.updates = []; const output = document.getElementById('output');
            new MutationObserver(() => window.updates.push([output.textContent.length,
                                                            document.getElementById('status').textContent]))
            .observe(output, {childList: true, characterData: true, subtree: true}); }""")
        page.fill("#prime", "All:")
        # the page's longest text (how many updates it takes depends on how the browser's reads
        # split the stream: 3,000 characters once came in 4 updates with other tests running)
        page.fill("#length", "10000")
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60_000)
        text = page.text_content("#output")
        assert text.startswith("All:") and len(text) == 10004
        # streamed: some of the text was on the page, and more came, before the stream ended
        updates = page.evaluate("window.updates")
        # (the prime, 4 characters, is sent on its own before any is generated)
        partial = [length for length, status in updates if 4 < length < 10004 and status.startswith("generating")]
        assert partial and updates[-1][0] == 10004, updates
    finally:
        page.close()


def test_the_pages_stop_field_ends_the_text_in_a_real_browser(server, browser):
    """The page reads its stop field as `charrnn sample --stop` does (\\n is a new line) and says
    which stop ended the text; a bad escape is shown as an error, not sent."""
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{server.port}/")
        page.fill("#prime", "All:")
        page.fill("#stop-text", "\\n")
        page.fill("#length", "10000")
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60_000)
        text = page.text_content("#output")
        assert text.startswith("All:") and "\n" not in text[4:] and len(text) < 10004, text
        assert page.text_content("#status").endswith('; ended at the stop "\\n")')
        page.fill("#stop-text", "a\\q")
        page.click("#generate")
        assert "unknown escape \\q in the stop" in page.text_content("#stop-error")
        assert page.text_content("#status") == "Error in stop: nothing generated"
    finally:
        page.close()


PROBES = ["0", "1", "-1", "7", "+3", " 12 ", "1_000", "1__0", "05", "1.5", "0.5", "-0.0", "1e-3", "1E2", ".5", "5.",
          "1e", "abc", "0x10", "inf", "nan", "1,5", "10000", "10001", "32", "33", "9223372036854775807",
          "9223372036854775808", "99999999999999999999"]


@pytest.mark.parametrize("field, option", [("length", "--length"), ("temperature", "--temperature"),
                                           ("top_k", "--top-k"), ("top_p", "--top-p"), ("seed", "--seed"),
                                           ("num_samples", "--num-samples")])
def test_the_servers_fields_take_what_the_cli_takes_within_its_limits(field, option):
    """The strings the page sends (GET /stream's query), through serve's checks and through the
    `charrnn sample` option's click type: the same accepted, the same values, except where serve's
    limits (length, samples, seed range) refuse more."""
    import click

    _require("starlette")
    from starlette.datastructures import QueryParams

    from charrnn.cli.main import main

    param = next(param for param in main.commands["sample"].params if option in getattr(param, "opts", ()))
    caps = {"length": lambda value: value <= limits.MAX_LENGTH, "num_samples": lambda value: value <= limits.MAX_SAMPLES,
            "seed": lambda value: -limits.SEED_LIMIT < value < limits.SEED_LIMIT}
    for probe in PROBES:
        try:
            expected = param.type.convert(probe, param, None)
        except click.BadParameter:
            expected = None
        try:
            config = limits.sample_config(limits.from_query(QueryParams([(field, probe)])), set("ab\n"), 64)
            served = getattr(config, field)
        except limits.RequestError as error:
            assert error.field == field, (probe, error)
            served = None
        if expected is not None and not caps.get(field, lambda value: True)(expected):
            expected = None  # beyond serve's limits
        assert served == expected, (field, probe, served, expected)


SERVE_FIELD_ERRORS = ("prime", "label", "length", "temperature", "topk", "topp", "seed", "stop")


@pytest.mark.parametrize("field, value, message", [
    ("prime", "a" * (limits.MAX_PRIME + 1), f"Expected a prime of at most {limits.MAX_PRIME} characters"),
    ("length", "-1", "Expected 0 <= length <= 10000. Received: length=-1"),
    ("length", "10001", "Expected 0 <= length <= 10000"),
    ("length", "2.5", "Expected length to be an integer. Received: length='2.5'"),
    ("temperature", "0", "Expected temperature > 0. Received: temperature=0.0"),
    ("temperature", "warm", "Expected temperature to be a number"),
    ("topk", "0", "Expected top_k >= 1. Received: top_k=0"),
    ("topp", "1.5", "Expected 0 < top_p <= 1. Received: top_p=1.5"),
    ("seed", "1.5", "Expected seed to be an integer"),
    ("stop-text", "\u20ac", "has characters not in the vocabulary"),
    ("stop-text", "a\\", "the stop ends in a lone backslash"),
], ids=lambda value: value[:20] if isinstance(value, str) else None)
def test_each_field_of_the_page_is_refused_beside_it(server, browser, field, value, message):
    """A value `charrnn sample` (or serve's limits) refuses is shown beside its field and nothing is
    generated; corrected, the same page generates (and the message goes)."""
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{server.port}/")
        page.fill("#prime", "All:")
        page.fill("#length", "20")
        page.fill(f"#{field}", value)
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').dataset.state === 'error'", timeout=30_000)
        name = "stop" if field == "stop-text" else field
        shown = {other: page.text_content(f"#{other}-error") for other in SERVE_FIELD_ERRORS}
        assert message in shown[name] and not [other for other, text in shown.items() if text and other != name], shown
        assert page.text_content("#output") == "" and page.get_attribute(f"#{field}", "aria-invalid") == "true"
        page.fill(f"#{field}", "All:" if field == "prime" else "")
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60_000)
        assert page.text_content("#output").startswith("All:") and page.text_content(f"#{name}-error") == ""
    finally:
        page.close()


def test_the_page_reads_an_unseen_prime_character_by_the_one_rule(server, browser):
    """A prime character the model never saw is skipped, as `charrnn sample` skips it: the page
    generates, showing the prime as typed, the text the server gives the prime without it."""
    status, answer = server.request("POST", "/generate", {"prime": "All:", "length": 30, "seed": 7})
    assert status == 200, answer
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{server.port}/")
        for field, value in (("prime", "All:\u20ac"), ("length", "30"), ("seed", "7")):
            page.fill(f"#{field}", value)
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60_000)
        assert page.text_content("#output") == "All:\u20ac" + answer["texts"][0][len("All:"):]
    finally:
        page.close()


# ---------------------------------------------------------------- a labelled run


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    """An items run of LABEL<TAB>ITEM lines (soft and hard made-up names), 20 steps."""
    import charrnn

    from .test_items import TINY_ITEMS, labelled_lines, write_lines

    os.environ["CHARRNN_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "cache")
    folder = tmp_path_factory.mktemp("labelled-serve")
    corpus = write_lines(folder / "styles.tsv", labelled_lines())
    charrnn.train(corpus, folder / "run", labels="column", max_steps=20, progress=False, log=lambda line: None,
                  **TINY_ITEMS)
    return folder / "run"


@pytest.fixture(scope="module")
def labelled_server(labelled_run):
    server = Server(labelled_run, "--max-streams", "20")  # the page asks for 20 items at once
    yield server
    assert server.stop() == 0, "".join(server.lines)


def test_a_labelled_run_serves_each_label(labelled_server, labelled_run):
    import charrnn
    from charrnn.generation.sampler import Sampler

    status, info = labelled_server.request("GET", "/info")
    assert status == 200 and info["model"]["label_names"] == ["soft", "hard"]
    options = dict(length=40, seed=4, num_samples=2, temperature=0.9)
    answers = {label: labelled_server.request("POST", "/generate", {**options, "label": label}) for label in ("soft", "hard")}
    sampler = Sampler(labelled_run)
    for label, (status, answer) in answers.items():
        assert status == 200 and answer["texts"] == sampler.generate(**options, label=label)
    assert answers["soft"][1]["texts"] != answers["hard"][1]["texts"]
    # one label per stream: each stream is the stream of a request in its label alone
    status, mixed = labelled_server.request("POST", "/generate", {**options, "label": ["soft", "hard"]})
    assert status == 200 and mixed["texts"] == [answers["soft"][1]["texts"][0], answers["hard"][1]["texts"][1]]
    status, text = labelled_server.request("GET", "/stream?length=40&seed=4&temperature=0.9&label=hard")
    pieces = "".join(event["texts"][0] for kind, event in _events(text) if kind == "message")
    assert status == 200 and pieces == sampler.generate(**{**options, "num_samples": 1}, label="hard")[0]
    status, scored = labelled_server.request("POST", "/score", {"texts": ["lame", "kato"], "label": "hard"})
    expected = charrnn.score(charrnn.load(labelled_run), ["lame", "kato"], label="hard")
    assert status == 200 and [row["log_prob"] for row in scored["scores"]] == pytest.approx(
        [row["log_prob"] for row in expected], rel=1e-4)


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_a_crowd_of_labels_keeps_each_streams_label(labelled_server):
    """Requests of different labels share the engine's chunks; each stream keeps its own label
    (its part of layer 1's state), so every text is the one it gets alone."""
    crowd = [dict(length=1500, seed=index, label=label, num_samples=1 + index % 2)
             for index, label in enumerate(["soft", "hard", "hard", "soft", "soft", "hard"])]
    crowd.append(dict(length=900, seed=9, label=["hard", "soft", "hard"], num_samples=3))
    alone = [labelled_server.request("POST", "/generate", options)[1]["texts"] for options in crowd]

    def ask(index):
        time.sleep(0.02 * (index % 3))
        return labelled_server.request("POST", "/generate", crowd[index])[1]["texts"]

    with ThreadPoolExecutor(len(crowd)) as pool:
        together = list(pool.map(ask, range(len(crowd))))
    assert together == alone
    assert labelled_server.request("GET", "/health")[1]["peak_streams"] > 3


@pytest.mark.parametrize("body,message", [
    ({}, 'this run is labelled: give "label", one of: soft, hard'),
    ({"label": None}, 'this run is labelled: give "label", one of: soft, hard'),
    ({"label": "loud"}, "this run has no label 'loud'; its labels are: soft, hard"),
    ({"label": ["soft", "loud"], "num_samples": 2}, "this run has no label 'loud'; its labels are: soft, hard"),
    ({"label": ["soft"], "num_samples": 2}, "1 labels for 2 samples"),
    ({"label": 3}, "Expected label to be a string or a list of strings"),
    ({"label": []}, "Expected label to be a string or a list of strings")], ids=str)
def test_a_bad_label_is_a_400_listing_the_labels(labelled_server, body, message):
    status, answer = labelled_server.request("POST", "/generate", {"length": 5, **body}, timeout=20)
    assert (status, answer["field"]) == (400, "label") and message in answer["error"], answer


def test_labels_on_the_wrong_run_or_route_are_400s(labelled_server, server):
    status, answer = labelled_server.request("GET", "/stream?length=5&label=loud", timeout=20)
    assert (status, answer["field"]) == (400, "label") and "its labels are: soft, hard" in answer["error"]
    status, answer = labelled_server.request("POST", "/score", {"texts": ["lame"]}, timeout=20)
    assert (status, answer["field"]) == (400, "label") and "one of: soft, hard" in answer["error"]
    for method, path, body in [("POST", "/generate", {"length": 5, "label": "soft"}),
                               ("GET", "/stream?length=5&label=soft", None),
                               ("POST", "/score", {"texts": ["All:"], "label": "soft"})]:
        status, answer = server.request(method, path, body, timeout=20)  # an unlabelled run
        assert (status, answer["field"]) == (400, "label"), answer
        assert answer["error"] == "this run was trained without labels, so it takes no label"


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_the_page_offers_a_labelled_runs_labels(labelled_server, browser):
    page = browser.new_page()
    try:
        sent = []
        page.on("request", lambda request: sent.append(request.url) if "/stream?" in request.url else None)
        page.goto(f"http://127.0.0.1:{labelled_server.port}/")
        page.wait_for_selector("#label-choice", state="visible", timeout=30_000)
        assert page.eval_on_selector_all("#label option", "options => options.map(option => option.value)") == \
            ["soft", "hard"]
        page.select_option("#label", "hard")
        page.click("#generate-items")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60_000)
        whole = int(re.search(r"; (\d+) whole items of 20 drawn", page.text_content("#status")).group(1))
        assert page.eval_on_selector_all("#items li", "items => items.length") == whole > 0
        asked = urllib.parse.parse_qs(urllib.parse.urlsplit(sent[-1]).query)
        assert asked["label"] == ["hard"] and asked["num_samples"] == ["20"] and asked["length"] == ["200"]
        page.click("#generate")  # the streaming button sends the label in its query
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60_000)
        assert page.text_content("#status").startswith("done")
    finally:
        page.close()


def test_a_label_the_run_lacks_is_shown_beside_the_label_menu(labelled_server, browser):
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{labelled_server.port}/")
        page.wait_for_selector("#label-choice", state="visible", timeout=30_000)
        page.evaluate("() => { const menu = document.getElementById('label'); menu.add(new Option('loud', 'loud')); menu.value = 'loud'; }")
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').dataset.state === 'error'", timeout=30_000)
        assert "this run has no label 'loud'; its labels are: soft, hard" in page.text_content("#label-error")
        assert page.text_content("#output") == "" and page.get_attribute("#label", "aria-invalid") == "true"
    finally:
        page.close()
