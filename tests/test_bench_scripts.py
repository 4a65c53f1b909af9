"""The benchmark scripts run and print their tables (tiny sizes; the sampling figures are not checked)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_script(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.bench
def test_sample_loop_variants_prints_every_variant():
    lines = run_script("sample_loop_variants.py", "--streams", "2", "--steps", "4", "--rounds", "1").splitlines()
    rows = [line.split() for line in lines if line.startswith(("rows ", "columns "))]
    assert len(rows) == 8 and {row[1] for row in rows} == {"stacked", "carried"}
    assert all(float(row[-1].replace(",", "")) > 0 for row in rows)


@pytest.mark.bench
def test_sample_speed_prints_its_table():
    output = run_script("sample_speed.py", "--length", "8")
    from charrnn.native import sampling

    assert output.count("Sampler, float32") == 4 and "keras-io" in output
    assert output.count("Sampler, bfloat16") == 8
    if sampling.variant() is not None:  # four rows on the native loop, four on XLA's bf16 one
        assert output.count(f"({sampling.backend_name()})") == 4 and output.count("(xla-bf16)") == 4
    else:  # no AMX tiles and no AVX512-BF16 (an AVX2 EPYC, say): all eight on XLA, and the script says why
        assert "the native loop is not used here: this CPU lacks" in output and output.count("(xla-bf16)") == 8


@pytest.mark.bench  # a bench script end to end: in make test-sweep
def test_eval_windows_scores_the_validation_split_as_evaluate_does(tiny_run, tiny_corpus, tmp_path):
    import charrnn
    from charrnn.data.corpus import load_corpus, split

    lines = run_script("eval_windows.py", str(tiny_run), "--windows", "20", "40").splitlines()
    row = lines[-1].split()
    losses = [float(value) for value in row[1:3]]
    run = charrnn.load(tiny_run)
    val = split(load_corpus([tiny_corpus]).ids, run.train_config.val_fraction)[1]
    path = tmp_path / "val.txt"
    path.write_text(run.vocab.decode(val), encoding="utf-8")
    for window, loss in zip((20, 40), losses):  # the script in the run's precision, evaluate in float32
        assert loss == pytest.approx(charrnn.evaluate(run, path, window=window)["loss"], abs=2e-2)


@pytest.mark.bench
def test_step_breakdown_prints_both_rows():
    output = run_script("step_breakdown.py", "--units", "32", "--seq-length", "10", "--batch-size", "4",
                        "--steps", "2", "--rounds", "1")
    rows = {line[:18].strip(): line[18:].split() for line in output.splitlines()
            if line.startswith(("training step", "LSTM stack only"))}
    assert set(rows) == {"training step", "LSTM stack only"}
    assert "2 x LSTM(32) on " in output and "mixed_bfloat16, batch 4 x 10" in output
    for row in rows.values():  # median ms, one figure per round, chars/s, the share
        assert float(row[0]) > 0 and len(row) >= 4 and int(row[2].replace(",", "")) > 0
    median, low, high = (int(value) for value in re.findall(r"(\d+)%", " ".join(rows["LSTM stack only"][3:])))
    assert 0 < low <= median <= high


def test_run_all_writes_a_page_that_names_its_machine_and_command(tmp_path):
    """`bench/run_all.py --write` on one script at tiny sizes: the header names the CPU (model and
    flags as /proc/cpuinfo gives them), the versions, the command and quick mode, and the script's
    table follows its command."""
    sys.path.insert(0, str(BENCH))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCH))
    page_path = tmp_path / "benchmarks.md"
    output = run_script("run_all.py", "--quick", "--only", "startup.py", "--write", str(page_path))
    page = page_path.read_text(encoding="utf-8")
    cpu = run_all.cpu_facts()
    assert f"| machine | {cpu['model']}, " in page
    flags = [f"{flag} {'yes' if present else 'no'}" for flag, present in cpu["flags"].items()]
    assert f"| CPU flags | {', '.join(flags)} |" in page and len(flags) == 4
    assert f"| command | `python bench/run_all.py --quick --only startup.py --write {page_path}` |" in page
    assert "**Quick mode" in page and "tensorflow " in page and "| date | 20" in page
    section = page.split("## startup.py", 1)[1]
    assert section.lstrip().startswith("`python bench/startup.py --repeats 1 --import-repeats 1` (")
    table = section.split("```text\n", 1)[1].split("```", 1)[0]
    assert "charrnn --help" in table and table.strip() in output  # the table the script printed
    assert "## Not run by this page" in page and "`bench/serve_load.py`" in page


def test_cpu_facts_reads_model_and_flags(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCH))
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: fpu avx2 avx512f amx_bf16\n")
    assert run_all.cpu_facts(str(cpuinfo)) == {
        "model": "Some CPU 9000", "flags": {"amx_bf16": True, "avx512_bf16": False, "avx512f": True, "avx2": True}}


def test_run_all_refuses_an_unknown_script():
    done = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--only", "nope.py"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("Error: no such script: nope.py (choose from startup.py")
    assert done.stderr.count("\n") == 1


def _labels_module():
    sys.path.insert(0, str(BENCH))
    try:
        import labels
    finally:
        sys.path.remove(str(BENCH))
    return labels


def test_labels_holds_out_whole_units_the_same_way_each_time():
    """bench/labels.py's split: held-out units are whole and never trained on, the training text
    stops at the cap, held-out texts with a character the training text lacks are dropped, and
    the same seed gives the same split."""
    import random

    labels = _labels_module()
    alphabet = "abcdefghijklmnopqrst" * 5
    units = [(f"f{index}", alphabet[index:] + alphabet[:index]) for index in range(40)]
    units += [(f"odd{index}", chr(0x100 + index) * 100) for index in range(10)]  # a character no other has
    train, test = labels.split_units(units, 1_000, 0.2, 5, seed=3, label="x")
    assert sum(len(text) for _, text in train) == 1_000 and len(train) == 10
    order = list(units)
    random.Random("3:x").shuffle(order)  # the seeded order; its first 20% (10) are held out
    assert {name for name, _ in order[:10]} & {f"odd{index}" for index in range(10)}  # some odd one is
    assert test == [unit for unit in order[:10] if not unit[0].startswith("odd")]  # whole, and scorable
    assert not {name for name, _ in train} & {name for name, _ in order[:10]}
    assert labels.split_units(units, 1_000, 0.2, 5, seed=3, label="x") == (train, test)
    assert labels.split_units(units, 1_000, 0.2, 5, seed=4, label="x") != (train, test)
    with pytest.raises(SystemExit, match="fewer than --chars"):
        labels.split_units(units, 10_000, 0.2, 5, seed=3, label="x")


def test_labels_reads_speeches_without_their_speaker_lines():
    labels = _labels_module()
    text = "First Citizen:\nBefore we proceed,\nhear me.\n\nALL:\nSpeak, speak.\n\nno name here\nat all\n"
    assert labels.speeches(text) == [("First Citizen", "Before we proceed,\nhear me.\n"), ("ALL", "Speak, speak.\n")]
    assert labels.is_common_text(b"int main(void)\n\treturn 0;\n") and not labels.is_common_text(b"caf\xc3\xa9")
    assert not labels.is_common_text(b"a\x0cb")


@pytest.mark.bench
def test_labels_prints_every_table_at_tiny_sizes(tmp_path):
    """bench/labels.py --quick end to end: the corpus laid out for --labels folders with equal
    training text per label, the separation matrix with each gap as the matrix gives it, the
    separate runs splitting the labelled run's steps, classify rows and both conditioning variants."""
    output = run_script("labels.py", "--quick", "--work", str(tmp_path))
    names = ["c", "python", "shell"]
    assert sorted(path.name for path in (tmp_path / "train").iterdir()) == names
    for name in names:
        trained = {path.read_text() for path in (tmp_path / "train" / name).iterdir()}
        assert sum(map(len, trained)) == 20_000
        assert not any(text in (tmp_path / "test" / f"{name}.txt").read_text() for text in trained if len(text) > 200)
    sections = {part.split("\n", 1)[0][:3]: {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
                                               for line in part.splitlines() if line.startswith("| ")}
                for part in output.split("\n## ")}
    assert set(sections) >= {"(a)", "(b)", "(c)", "(d)", "(e)"}
    rows = {key: row for section in sections.values() for key, row in section.items()}
    for name in names:
        losses = [float(cell) for cell in sections["(a)"][name][:3]]
        assert float(sections["(b)"][name][0]) == losses[names.index(name)]
        own = losses[names.index(name)]
        others = [loss for index, loss in enumerate(losses) if index != names.index(name)]
        assert float(sections["(a)"][name][3]) == pytest.approx(min(others) - own, abs=2e-4)
    steps = [int(rows[f"separate {name}"][1]) for name in names]
    assert rows["labelled"][1] == "12" and sum(steps) == 12
    assert rows["whole held-out files"][2].endswith("%") and rows["400-char snippets"][0] == "12"
    assert set(rows) >= {"every step", "first step only"} and "machine: " in output
    assert "command: `python bench/labels.py --quick --work " in output


def test_labels_refuses_a_bad_size_with_a_usage_error():
    for args, message in ((["--steps", "0"], "argument --steps: 0 is not an integer >= 1"),
                          (["--test-share", "1"], "argument --test-share: 1 is not between 0 and 1")):
        done = subprocess.run([sys.executable, str(BENCH / "labels.py"), *args], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
