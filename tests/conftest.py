"""Shared fixtures: an isolated cache, the shared corpora, one tiny trained run, `require`, and a
brute-force stop-sequence search to check the samplers against."""

import importlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
if SHARED.is_dir() and not os.environ.get("CHARRNN_CORPUS_PATH"):
    os.environ["CHARRNN_CORPUS_PATH"] = str(SHARED)

# The bf16 LSTM op (charrnn/native) compiles once per machine for the whole suite, not once per
# test's isolated cache (the folder is keyed by a hash of the source, TensorFlow and oneDNN)
os.environ.setdefault("CHARRNN_NATIVE_CACHE", str(Path(tempfile.gettempdir()) / "charrnn-tests-native"))
# A --time-budget's defaults follow the compute a second buys (charrnn.training.budget): pinned to
# the tuned CPUs' here, so a test's budget defaults are the same on every CPU class (tests of the
# probe itself unset it)
os.environ.setdefault("CHARRNN_BUDGET_SCALE", "1")

TINY_TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
             "All:\nSpeak, speak.\n\n") * 40


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own id cache, so none sees another's files."""
    monkeypatch.setenv("CHARRNN_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "tiny.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path


TINY_OPTIONS = dict(layers=1, units=32, embedding_dim=16, seq_length=20, batch_size=8, eval_every=10)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_corpus) -> Path:
    """A run trained for 20 steps on a tiny corpus (shared by the sample/eval/info/CLI tests)."""
    import charrnn

    os.environ["CHARRNN_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "cache")
    out = tmp_path_factory.mktemp("runs") / "tiny"
    charrnn.train(tiny_corpus, out, max_steps=20, progress=False, log=lambda line: None, **TINY_OPTIONS)
    return out


def first_stop(generated: str, stops) -> tuple:
    """Brute force, to check the samplers' stop sequences against: (the text before the stop
    completed first, that stop), the longest of those completed at the same position; (the whole
    text, None) if no stop is in it."""
    for end in range(1, len(generated) + 1):
        complete = [stop for stop in stops if generated[:end].endswith(stop)]
        if complete:
            stop = max(complete, key=len)
            return generated[:end - len(stop)], stop
    return generated, None


def a_stop_some_streams_meet(texts: list[str], skip: int) -> str:
    """Three characters from the first text's generated part (after `skip` characters of prime)
    that another text never generates: so some streams stop and some run to --length."""
    generated = [text[skip:] for text in texts]
    for start in range(20, len(generated[0]) - 3):
        stop = generated[0][start:start + 3]
        if any(stop not in other for other in generated[1:]) and "\n" not in stop:
            return stop
    raise AssertionError(f"no such stop in {texts}")


def under_ci() -> bool:
    """The one rule for "this is CI" across the suite: CI set to 1, true or yes (any case). Under CI
    a missing test dependency fails a test instead of skipping it."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def native_blocker_is_hardware(reason: str | None) -> bool:
    """Whether a native kernel's blocker is the machine's hardware or platform (a skip anywhere),
    not a missing install step (g++, the oneDNN wheels), which fails under CI."""
    if reason is None:
        return False
    return not any(word in reason for word in ("g++", "compiler", "wheels are not installed"))


def shakespeare_or_skip() -> Path:
    """The shared Tiny Shakespeare; skipped only when it is absent and CI is not set."""
    for folder in filter(None, os.environ.get("CHARRNN_CORPUS_PATH", "").split(os.pathsep)):
        path = Path(folder) / "tinyshakespeare.txt"
        if path.is_file():
            return path
    if os.environ.get("CI"):
        pytest.fail("CI must find tinyshakespeare.txt through CHARRNN_CORPUS_PATH")
    pytest.skip("tinyshakespeare.txt not found through CHARRNN_CORPUS_PATH")


def _missing(what: str):
    """Skips the test where a test dependency is missing, except under CI, where that fails it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must provide {what}")
    pytest.skip(f"{what} is not available")


def require(module: str):
    """Imports and returns a test dependency; a missing one skips locally and fails under CI=true."""
    try:
        return importlib.import_module(module)
    except ImportError:
        _missing(f"the Python module {module!r}")


def require_program(*names: str) -> str:
    """The path of the first of `names` on PATH; none skips locally and fails under CI=true."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    _missing(f"a program named {' or '.join(names)}")


# The system's chromium, driven by Playwright: the serve page and the exported web page are tested in it
BROWSER = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """A headless chromium for a module's page tests; under CI a missing one fails them."""
    sync_api = require("playwright.sync_api")
    if not os.path.exists(BROWSER):
        if os.environ.get("CI"):
            pytest.fail(f"CI must have {BROWSER} (apt-get install chromium)")
        pytest.skip(f"{BROWSER} is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=BROWSER, args=BROWSER_ARGS)
        yield launched
        launched.close()
