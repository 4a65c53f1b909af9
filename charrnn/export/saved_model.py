"""`charrnn export`: a TF SavedModel that generates text with plain TensorFlow (no charrnn).

The serving signature is `generate(prime: string, length: int32, temperature: float32,
seed: int32) -> string` (the prime followed by `length` characters); a labelled run's also takes
`label: string` (one of its label names). It runs the same compiled recurrence and draws as
`Sampler`, so the same seed (and label) gives the same text as `charrnn sample --precision float32`.
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

        def generated(self, prime, length, temperature, seed, label=None):
            """The prime and `length` drawn characters (a labelled run's under label name `label`)."""
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

            # chunks of up to CHUNK_CAPACITY characters through the one compiled loop, as `charrnn sample` does
            def chunk(done, logits, states, text):
                size = tf.minimum(CHUNK_CAPACITY, length - done)
                # one stream, sample 0 of the seed: the key `charrnn sample --seed` gives its first text
                drawn, logits, states = sampler.draw_chunk(logits, states, done[None], size, seed[None],
                                                          tf.zeros([1], tf.int32), temperature[None],
                                                          tf.zeros([1], tf.int32), tf.ones([1]), "plain")
                return done + size, logits, states, tf.concat([text, drawn[0, :size]], axis=0)

            _, _, _, drawn = tf.while_loop(
                lambda done, *_: done < length, chunk, (tf.constant(0), logits, states, tf.zeros([0], tf.int32)),
                shape_invariants=(tf.TensorShape([]), logits.shape, tf.nest.map_structure(lambda t: t.shape, states),
                                  tf.TensorShape([None])))
            text = tf.gather(self.codepoints, drawn)
            return tf.strings.unicode_encode(tf.concat([given, text], axis=0), "UTF-8")

    signature = [tf.TensorSpec([], tf.string, name="prime"), tf.TensorSpec([], tf.int32, name="length"),
                 tf.TensorSpec([], tf.float32, name="temperature"), tf.TensorSpec([], tf.int32, name="seed")]
    if label_names:
        class Labelled(Generator):
            @tf.function(input_signature=[*signature, tf.TensorSpec([], tf.string, name="label")])
            def generate(self, prime, length, temperature, seed, label):
                return self.generated(prime, length, temperature, seed, label)

        generator = Labelled()
    else:
        class Unlabelled(Generator):
            @tf.function(input_signature=signature)
            def generate(self, prime, length, temperature, seed):
                return self.generated(prime, length, temperature, seed)

        generator = Unlabelled()
    try:
        tf.saved_model.save(generator, str(out), signatures={"generate": generator.generate})
    except (OSError, tf.errors.OpError) as error:
        shutil.rmtree(out, ignore_errors=True)  # it did not exist before: leave nothing half-written
        message = (getattr(error, "message", None) or str(error)).splitlines()[0]
        raise WriteError(f"could not write the SavedModel to {shown or out}: {message}") from None
    return out
