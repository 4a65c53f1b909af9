"""The design choices of Sampler's compiled loop, measured one at a time on a stand-alone loop.

    python bench/sample_loop_variants.py [--streams 64] [--steps 512] [--rounds 2]

A 2 x LSTM(256) recurrence over 65 symbols with random weights, written out here (not
charrnn.Sampler) so each choice can be switched alone:
- layout "rows" (states @ kernel) or "columns" (kernel.T @ states, what Sampler uses);
- "stacked": one product per layer over [input, hidden] (the earlier sampler), or "carried":
  each recurrent product computed as soon as its layer's output exists and carried to the next
  step (what Sampler uses);
- draw "categorical" (tf.random.stateless_categorical: Gumbel noise per symbol) or "inverse-cdf"
  (one uniform per stream: what Sampler uses).
Rounds alternate the variants, so a slow minute of the machine hits them all.
"""

import argparse
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import tensorflow as tf

    from charrnn.tools.bench import machine

    vocab, units, streams, steps = 65, 256, args.streams, args.steps
    rng = np.random.default_rng(0)
    weight = lambda *shape: rng.normal(0, 0.05, shape).astype(np.float32)
    table, hidden_1, kernel_2, bias_2, head, head_bias = (weight(vocab, 4 * units), weight(units, 4 * units),
                                                          weight(2 * units, 4 * units), weight(4 * units),
                                                          weight(units, vocab), weight(vocab))

    def draw(logits, position, how):
        key = tf.stack([tf.constant(1), position])
        if how == "categorical":
            return tf.cast(tf.random.stateless_categorical(logits, 1, seed=key)[:, 0], tf.int32)
        weights = tf.exp(logits - tf.reduce_max(logits, axis=-1, keepdims=True))
        cumulative = tf.cumsum(weights, axis=-1)
        target = tf.random.stateless_uniform((tf.shape(logits)[0], 1), seed=key) * cumulative[:, -1:]
        return tf.minimum(tf.reduce_sum(tf.cast(cumulative <= target, tf.int32), axis=-1), vocab - 1)

    def make(layout, recurrence, how):
        columns = layout == "columns"
        axis = 0 if columns else -1
        # every product is (states @ kernel) in rows or (kernel.T @ states) in columns
        constant = lambda array: tf.constant(np.ascontiguousarray(array.T) if columns else array)
        vector = lambda array: tf.constant(array.reshape(-1, 1) if columns else array)
        w1h, w2, w2x, w2h = (constant(hidden_1), constant(kernel_2), constant(kernel_2[:units]),
                             constant(kernel_2[units:]))
        w_head, b2, b_head = constant(head), vector(bias_2), vector(head_bias)
        product = (lambda kernel, states: tf.matmul(kernel, states) if columns else tf.matmul(states, kernel))

        def cell(gates, carry):
            gate_in, gate_forget, candidate, gate_out = tf.split(gates, 4, axis=axis)
            carry = tf.sigmoid(gate_forget) * carry + tf.sigmoid(gate_in) * tf.tanh(candidate)
            return tf.sigmoid(gate_out) * tf.tanh(carry), carry

        def body(step, h1, c1, h2, c2, logits, r1, r2, total):
            ids = draw(logits, step, how)
            total += ids
            from_table = tf.gather(table, ids)
            from_table = tf.transpose(from_table) if columns else from_table
            if recurrence == "carried":
                h1, c1 = cell(from_table + r1, c1)
                r1 = product(w1h, h1)
                h2, c2 = cell(product(w2x, h1) + r2 + b2, c2)
                r2 = product(w2h, h2)
            else:
                h1, c1 = cell(from_table + product(w1h, h1), c1)
                h2, c2 = cell(product(w2, tf.concat([h1, h2], axis=axis)) + b2, c2)
            logits = product(w_head, h2) + b_head
            logits = tf.transpose(logits) if columns else logits
            return step + 1, h1, c1, h2, c2, logits, r1, r2, total

        @tf.function(jit_compile=True)
        def loop():
            state = tf.zeros((units, streams) if columns else (streams, units))
            carried = tf.zeros((4 * units, streams) if columns else (streams, 4 * units))
            start = (tf.constant(0), state, state, state, state, tf.zeros((streams, vocab)), carried, carried,
                     tf.zeros((streams,), tf.int32))
            return tf.while_loop(lambda step, *_: step < steps, body, start)[-1]

        return loop

    variants = [(layout, recurrence, how) for layout in ("rows", "columns") for recurrence in ("stacked", "carried")
                for how in ("categorical", "inverse-cdf")]
    loops = {variant: make(*variant) for variant in variants}
    for loop in loops.values():
        loop().numpy()  # compile
    rates = {variant: [] for variant in variants}
    for _ in range(args.rounds):
        for variant, loop in loops.items():
            started = time.perf_counter()
            loop().numpy()
            rates[variant].append(streams * steps / (time.perf_counter() - started))
    print(f"machine: {machine()}; {streams} streams, {steps} steps, {args.rounds} alternating rounds")
    print(f"{'layout':<9}{'recurrence':<11}{'draw':<13}{'chars/s (median)':>18}")
    for variant in variants:
        print(f"{variant[0]:<9}{variant[1]:<11}{variant[2]:<13}{np.median(rates[variant]):>18,.0f}")


if __name__ == "__main__":
    main()
