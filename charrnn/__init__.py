"""charrnn: character-level recurrent text generation on TensorFlow/Keras 3.

The public API (TensorFlow is imported only when a function that needs it is called):

    charrnn.train(corpus, out, **options)  -> TrainResult   (see charrnn.training.train)
    charrnn.load(run_dir)                  -> Run
    charrnn.Sampler(run)                   -> .generate(...), .stream(...)
    charrnn.beam_search(run, width, ...)   -> [BeamResult] (see charrnn.generation.beam; also BeamSearcher)
    charrnn.evaluate(run, file)            -> {"loss", "bpc", ...}
    charrnn.score(run, texts)              -> [{"text", "chars", "log_prob", "nats_per_char", ...}]
    charrnn.Vocabulary, charrnn.load_corpus, charrnn.get_corpus
    charrnn.ModelConfig, charrnn.TrainConfig, charrnn.SampleConfig
"""

from charrnn._version import __version__
from charrnn.config import ModelConfig, SampleConfig, TrainConfig  # noqa: E402
from charrnn.data.corpus import get_corpus, load_corpus  # noqa: E402
from charrnn.errors import (CharRNNError, ConfigError, CorpusError, OptionError, RunError, TrainingError,  # noqa: E402
                            VocabularyError)
from charrnn.generation.evaluate import evaluate  # noqa: E402
from charrnn.runs import load  # noqa: E402
from charrnn.generation.score import score  # noqa: E402
from charrnn.training.train import TrainResult, train  # noqa: E402
from charrnn.data.vocab import Vocabulary  # noqa: E402


def __getattr__(name):
    if name == "Sampler":  # imports TensorFlow, so only on first use
        from charrnn.generation.sampler import Sampler

        return Sampler
    if name in ("beam_search", "BeamSearcher", "BeamResult"):
        from charrnn.generation import beam

        return getattr(beam, name)
    raise AttributeError(f"module 'charrnn' has no attribute {name!r}")


__all__ = ["BeamResult", "BeamSearcher", "CharRNNError", "ConfigError", "CorpusError", "ModelConfig", "OptionError",
           "RunError", "SampleConfig",
           "Sampler", "TrainConfig", "TrainResult", "TrainingError", "Vocabulary", "VocabularyError", "beam_search",
           "evaluate", "get_corpus", "load", "load_corpus", "score", "train", "__version__"]
