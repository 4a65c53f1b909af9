"""Validation loss of trained runs scored in windows of several lengths.

    python bench/eval_windows.py RUN [RUN ...] [--windows 100 200 1024 2048 4096]

For each run: its validation split (the tail of its corpus that training held out, capped at
--max-val-chars as training caps it), scored in windows of each length, each window starting from
a zero state, with the state carried inside the window. The model is built as training scores it:
the fused LSTM stack in the run's precision where it can be, else Keras's rolled layers. A longer
window gives each character more of the context a sampler gives it; the table shows where the
loss stops changing (how `EVAL_WINDOW` in charrnn/config.py was chosen).
"""

import argparse
import time

import charrnn
from charrnn.data.corpus import load_corpus, split
from charrnn.generation.evaluate import score_ids


def build(run, window: int):
    from charrnn.models.char_model import build_char_model, fused_available

    fused = fused_available(run.model_config, window)
    model = build_char_model(run.model_config, seq_length=window, fused=fused, unroll=None if fused else False,
                             precision=run.train_config.precision)
    model.set_weights(run.model().get_weights())
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--windows", type=int, nargs="+", default=[100, 200, 1024, 2048, 4096])
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    from charrnn.tensorflow_setup import import_tensorflow

    import_tensorflow()  # TensorFlow's start-up lines stay off stderr, as in the CLI
    from charrnn.models.char_model import configure_cpu_threads

    configure_cpu_threads(2)
    from charrnn.hardware import describe

    print(f"# {describe()}, charrnn {charrnn.__version__}")
    print(f"{'run':<28}" + "".join(f"{'window ' + str(window):>14}" for window in args.windows) + f"{'seconds':>10}")
    for path in args.runs:
        run = charrnn.load(path)
        config = run.train_config
        corpus = load_corpus(run.config["corpus"]["files"], config.encoding, vocab=run.vocab)
        if corpus.sha256 != run.config["corpus"]["sha256"]:
            raise SystemExit(f"{path}: its corpus files changed since it trained")
        ids = split(corpus.ids, config.val_fraction)[1][: config.max_val_chars + 1]
        started = time.perf_counter()
        losses = [score_ids(build(run, window), ids, window, args.batch_size) for window in args.windows]
        print(f"{str(path)[-28:]:<28}" + "".join(f"{loss:>14.4f}" for loss in losses)
              + f"{time.perf_counter() - started:>10.1f}")


if __name__ == "__main__":
    main()
