"""Where a training step's time goes: the whole step against the recurrent stack alone.

    python bench/step_breakdown.py [--units 384] [--layers 2] [--precision mixed_bfloat16]
                                   [--batch-size 64] [--seq-length 100] [--steps 40] [--rounds 3]
                                   [--no-split] [--chunk N]

Builds the model `charrnn train` builds on a CPU (the fused LSTM stack; under mixed_bfloat16 with
the compiled kernel, oneDNN's LSTM op) with the same optimizer
(`charrnn.training.train.build_optimizer` with the 600 s defaults: Adam 3e-3, global clip norm 5,
weight decay 0.1 but not on biases), then times, in interleaved rounds of `--steps` steps each:
  - "training step": `model.fit` on batches of random ids (embedding, LSTM stack, dropout, logits,
    loss, gradients, the optimizer update);
  - "LSTM stack only": the fused recurrent stack's forward and backward passes on random features,
    in one `tf.function`: the LSTM kernels with the stack's own casts, transposes and dropout, but
    no embedding, head, loss or update.
The share column is the stack's time over the step's, round by round (median, then the range):
what the stack costs, and so what any change outside it could win at most. The header says
whether oneDNN's op ran (else TensorFlow's chunked path did; CHARRNN_LSTM_FLOAT32=onednn|chunked
picks the float32 kernel) and whether it split the batch into one part per core (the default;
`--no-split` runs one part). Random ids cost the same arithmetic
as text, so no corpus is needed.
"""

import argparse
import statistics
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=384)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="mixed_bfloat16")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-length", type=int, default=100)
    parser.add_argument("--steps", type=int, default=40, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-split", action="store_true",
                        help="run oneDNN's op on the whole batch instead of one part per core "
                             "(charrnn.models.fused_lstm.batch_parts)")
    parser.add_argument("--chunk", type=int, help="steps per compiled call of the chunked path "
                                                  "[default: charrnn.models.fused_lstm.CHUNK]")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from charrnn.config import ModelConfig, TrainConfig
    from charrnn.models import fused_lstm
    from charrnn.models.char_model import build_char_model, configure_cpu_threads
    from charrnn.training.train import build_optimizer

    configure_cpu_threads(args.layers)
    if args.chunk:
        fused_lstm.CHUNK = args.chunk
    if args.no_split:
        fused_lstm.MIN_PART_ROWS = args.batch_size + 1  # no part can be that big: one part
    vocab, batch, length = 65, args.batch_size, args.seq_length
    config = ModelConfig(vocab_size=vocab, units=args.units, layers=args.layers, dropout=0.2)
    model = build_char_model(config, length, fused=True, precision=args.precision)
    optimizer = build_optimizer(TrainConfig(learning_rate=3e-3, weight_decay=0.1))  # the 600 s defaults'
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, (batch * 8, length + 1)).astype("int32")
    batches = tf.data.Dataset.from_tensor_slices((ids[:, :-1], ids[:, 1:])).batch(batch, drop_remainder=True).repeat()  # a static batch, as `charrnn train` feeds
    options = tf.data.Options()
    options.autotune.enabled = False  # as charrnn.data.windows: with it, each fit ended at a multiple of 5.1 s
    batches = batches.with_options(options)

    stack = model.get_layer("rnn")
    features = tf.constant(rng.standard_normal((batch, length, config.embedding_dim)), tf.float32)

    @tf.function
    def stack_only(features):
        with tf.GradientTape() as tape:
            hidden = stack(features, training=True)
            loss = tf.reduce_sum(hidden * hidden)
        return tape.gradient(loss, stack.trainable_variables)

    def full_steps():
        model.fit(batches, steps_per_epoch=args.steps, epochs=1, verbose=0)

    def stack_steps():
        for _ in range(args.steps):
            gradients = stack_only(features)
        [gradient.numpy() for gradient in gradients]

    model.fit(batches, steps_per_epoch=2, epochs=1, verbose=0)  # build the graphs before timing
    stack_steps()
    times = {"training step": [], "LSTM stack only": []}
    for _ in range(args.rounds):
        for label, run in (("training step", full_steps), ("LSTM stack only", stack_steps)):
            started = time.perf_counter()
            run()
            times[label].append((time.perf_counter() - started) / args.steps)

    native = stack._native_ops() is not None
    kernel = (f"oneDNN's LSTM op ({'whole batch' if args.no_split else 'batch split into one part per core'})"
              if native else "TensorFlow's chunked LSTM")
    from charrnn.hardware import describe

    print(f"# {describe()}, TensorFlow {tf.__version__}; "
          f"{args.layers} x LSTM({args.units}) on {kernel}, {args.precision}, batch {batch} x {length}, "
          f"dropout 0.2, {args.rounds} rounds of {args.steps} steps, chunks of {stack.chunk}")
    shares = [part / whole for part, whole in zip(times["LSTM stack only"], times["training step"])]
    print(f"{'what':<18}{'ms/step (median)':>18}  {'rounds, ms':<26}{'chars/s':>10}  share (range)")
    for label, samples in times.items():
        median = statistics.median(samples)
        rounds = " ".join(f"{sample * 1000:.0f}" for sample in samples)
        share = ("100%" if label == "training step" else
                 f"{statistics.median(shares):.0%} ({min(shares):.0%}-{max(shares):.0%})")
        print(f"{label:<18}{median * 1000:>18.1f}  {rounds:<26}{batch * length / median:>10,.0f}  {share}")


if __name__ == "__main__":
    main()
