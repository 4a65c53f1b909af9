"""charrnn: character-level recurrent text generation on TensorFlow/Keras 3.

The public API (TensorFlow is imported only when a function that needs it is called):

    charrnn.train(corpus, out, **options)  -> TrainResult   (see charrnn.training.train)
    charrnn.load(run_dir)                  -> Run
    charrnn.Sampler(run)                   -> .generate(...), .stream(...)
    charrnn.beam_search(run, width, ...)   -> [BeamResult] (see charrnn.generation.beam; also BeamSearcher)
    charrnn.evaluate(run, file)            -> {"loss", "bpc", ...}
    charrnn.score(run, texts)              -> [{"text", "chars", "log_prob", "nats_per_char", ...}]
    charrnn.classify(run, texts)           -> [{"label", "margin", "scores", ...}]  (a labelled run)
    charrnn.Vocabulary, charrnn.load_corpus, charrnn.get_corpus
    charrnn.ModelConfig, charrnn.TrainConfig, charrnn.SampleConfig
"""

from charrnn._version import __version__

# Each public name and the module it lives in, imported on first use: `import charrnn` (and so the
# CLI, and `charrnn sample MODEL.onnx` through charrnn.portable) stays cheap.
_HOMES = {
    "ModelConfig": "charrnn.config", "SampleConfig": "charrnn.config", "TrainConfig": "charrnn.config",
    "get_corpus": "charrnn.data.corpus", "load_corpus": "charrnn.data.corpus",
    "CharRNNError": "charrnn.errors", "ConfigError": "charrnn.errors", "CorpusError": "charrnn.errors",
    "OptionError": "charrnn.errors", "RunError": "charrnn.errors", "TrainingError": "charrnn.errors",
    "VocabularyError": "charrnn.errors",
    "evaluate": "charrnn.generation.evaluate", "load": "charrnn.runs", "score": "charrnn.generation.score",
    "classify": "charrnn.generation.classify",
    "TrainResult": "charrnn.training.train", "train": "charrnn.training.train",
    "Vocabulary": "charrnn.data.vocab",
    "Sampler": "charrnn.generation.sampler",  # imports TensorFlow
    "beam_search": "charrnn.generation.beam", "BeamSearcher": "charrnn.generation.beam",
    "BeamResult": "charrnn.generation.beam",
}


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module 'charrnn' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOMES))


__all__ = ["BeamResult", "BeamSearcher", "CharRNNError", "ConfigError", "CorpusError", "ModelConfig", "OptionError",
           "RunError", "SampleConfig",
           "Sampler", "TrainConfig", "TrainResult", "TrainingError", "Vocabulary", "VocabularyError", "beam_search",
           "classify", "evaluate", "get_corpus", "load", "load_corpus", "score", "train", "__version__"]
