"""`charrnn export`: a TF SavedModel that generates text with plain TensorFlow (no charrnn).

Two signatures: `generate(prime: string, length: int32, temperature: float32, seed: int32) ->
string` (the prime followed by `length` characters), and `sample(prime, length, temperature,
top_k: int32, top_p: float32, seed, sample: int32)`, which adds top-k (0 = off), top-p (1.0 =
off) and the sample index (text `sample` of the seed, as `charrnn sample --num-samples`
numbers them; an items run's draw d). A labelled run's both also take `label: string` (one of
its label names). They run the same compiled recurrence and draws as `Sampler`, so the same
seed, options (and label) give the same text as `charrnn sample --precision float32`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from charrnn.errors import CharRNNError, WriteError


def export_saved_model(run, out: str | Path, shown: str | Path | None = None) -> Path:
    """Writes `run` as a SavedModel folder at `out` and returns its path.

    Args:
        run: a `charrnn.runs.Run`.
        out: the folder to create.
        shown: the path error messages name (`charrnn.export.export` writes into a temporary
            folder that becomes `shown`). Defaults to `out`.

    Raises:
        CharRNNError: `out` already exists.
    """
    import tensorflow as tf

    from charrnn.generation.sampler import CHUNK_CAPACITY, Sampler

    out = Path(out)
    if out.exists():
        raise CharRNNError(f"{out} already exists; choose another --out or remove it")
    sampler = Sampler(run, precision="float32")  # the exported graph is XLA's loop
    codes = np.array([ord(symbol) for symbol in sampler.vocab.symbols], np.int32)
    start = sampler.default_prime
    label_names = list(sampler.label_names)

    class Generator(tf.Module):
        def __init__(self):
            super().__init__()
            self.weights = list(sampler.variables)  # tracked, so the SavedModel holds them
            self.codepoints = tf.constant(codes)
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(codes, np.arange(len(codes), dtype=np.int32)),
                default_value=-1 if sampler.vocab.unknown is None else sampler.vocab.unknown_id)
            if label_names:
                self.labels = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(tf.constant(label_names),
                                                        np.arange(len(label_names), dtype=np.int32)), default_value=-1)

        def generated(self, prime, length, temperature, seed, label=None, top_k=None, top_p=None, sample=None):
            """The prime and `length` drawn characters (a labelled run's under label name `label`),
            as sample `sample` (None: 0) of the seed, with top-k / top-p (None: off)."""
            # the prime read by the one rule (docs/unknown-characters.md): a character outside the
            # vocabulary is the unknown symbol where the run has one, else skipped
            given = tf.strings.unicode_decode(prime, "UTF-8")  # returned as typed, before the drawn text
            read = self.table.lookup(given)
            read = tf.boolean_mask(read, read >= 0)
            ids = tf.cond(tf.size(read) > 0, lambda: read, lambda: self.table.lookup(tf.constant([ord(start)], tf.int32)))
            checks = []
            label_ids = None
            if label is not None:
                label_ids = self.labels.lookup(label)[None]
                checks.append(tf.debugging.assert_non_negative(
                    label_ids, message=f"unknown label; the labels are: {', '.join(label_names)}"))
            with tf.control_dependencies(checks):
                logits, states = sampler.feed(ids[None, :], sampler.zero_states(1, label_ids))

            samples = tf.zeros([1], tf.int32) if sample is None else sample[None]
            ks = tf.zeros([1], tf.int32) if top_k is None else tf.maximum(top_k, 0)[None]
            ps = tf.ones([1]) if top_p is None else top_p[None]

            # chunks of up to CHUNK_CAPACITY characters through the one compiled loop, as `charrnn sample` does
            def chunk(done, logits, states, text):
                size = tf.minimum(CHUNK_CAPACITY, length - done)
                # one stream, sample `samples` of the seed: the key `charrnn sample --seed` gives that text
                draw = lambda mode: sampler.draw_chunk(logits, states, done[None], size, seed[None], samples,
                                                       temperature[None], ks, ps, mode)
                if top_k is None:
                    drawn, new_logits, new_states = draw("plain")
                else:  # the truncated loop only where top-k or top-p is on, as `charrnn sample` picks
                    drawn, new_logits, new_states = tf.cond(tf.logical_or(ks[0] > 0, ps[0] < 1.0),
                                                            lambda: draw("truncated"), lambda: draw("plain"))
                return done + size, new_logits, new_states, tf.concat([text, drawn[0, :size]], axis=0)

            _, _, _, drawn = tf.while_loop(
                lambda done, *_: done < length, chunk, (tf.constant(0), logits, states, tf.zeros([0], tf.int32)),
                shape_invariants=(tf.TensorShape([]), logits.shape, tf.nest.map_structure(lambda t: t.shape, states),
                                  tf.TensorShape([None])))
            text = tf.gather(self.codepoints, drawn)
            return tf.strings.unicode_encode(tf.concat([given, text], axis=0), "UTF-8")

    spec = lambda dtype, name: tf.TensorSpec([], dtype, name=name)
    signature = [spec(tf.string, "prime"), spec(tf.int32, "length"), spec(tf.float32, "temperature"),
                 spec(tf.int32, "seed")]
    sample_signature = [*signature[:3], spec(tf.int32, "top_k"), spec(tf.float32, "top_p"), spec(tf.int32, "seed"),
                        spec(tf.int32, "sample")]
    if label_names:
        class Labelled(Generator):
            @tf.function(input_signature=[*signature, spec(tf.string, "label")])
            def generate(self, prime, length, temperature, seed, label):
                return self.generated(prime, length, temperature, seed, label)

            @tf.function(input_signature=[*sample_signature, spec(tf.string, "label")])
            def sample(self, prime, length, temperature, top_k, top_p, seed, sample, label):
                return self.generated(prime, length, temperature, seed, label, top_k, top_p, sample)

        generator = Labelled()
    else:
        class Unlabelled(Generator):
            @tf.function(input_signature=signature)
            def generate(self, prime, length, temperature, seed):
                return self.generated(prime, length, temperature, seed)

            @tf.function(input_signature=sample_signature)
            def sample(self, prime, length, temperature, top_k, top_p, seed, sample):
                return self.generated(prime, length, temperature, seed, None, top_k, top_p, sample)

        generator = Unlabelled()
    try:
        tf.saved_model.save(generator, str(out), signatures={"generate": generator.generate,
                                                              "sample": generator.sample})
    except (OSError, tf.errors.OpError) as error:
        shutil.rmtree(out, ignore_errors=True)  # it did not exist before: leave nothing half-written
        message = (getattr(error, "message", None) or str(error)).splitlines()[0]
        raise WriteError(f"could not write the SavedModel to {shown or out}: {message}") from None
    return out
