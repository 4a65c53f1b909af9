"""The options of an items run where they are not given (`ITEMS_DEFAULTS`), and the options an
items run refuses.
"""

from __future__ import annotations

from charrnn.errors import OptionError

# What an items run uses where the option is not given (the rest are a stream run's defaults),
# chosen by 10-minute runs on names (docs/experiments.md): unbucketed, dropout 0.1 overfit within 250 s and 0.3
# did best (test 1.9282); bucketed, a 256-wide LSTM sees 38 epochs in 10 minutes and overfits
# even at dropout 0.5 (test 1.9453 at 0.3, 1.9355 at 0.5), while 512 units with dropout 0.5 see
# 12 epochs and reach test 1.9070.
ITEMS_DEFAULTS = {"units": 512, "dropout": 0.5, "anneal_fraction": 0.5, "buckets": 4}
SHAPE_OPTIONS = {"cell", "layers", "units", "embedding_dim"}  # a fine-tuned run takes these from its parent


def with_defaults(model_options: dict, train_options: dict, fine_tuning: bool = False) -> tuple[dict, dict]:
    """The options of a new items run: `ITEMS_DEFAULTS` where an option was not given.

    Args:
        model_options: the `ModelConfig` options given.
        train_options: the `TrainConfig` options given.
        fine_tuning: the run starts from a parent (--init-from), whose shape it keeps: the shape
            defaults (units) are not applied. Defaults to False.

    Raises:
        OptionError: --seq-length given (an items run's window is its longest item + 1), or
            --distribute multi-worker.
    """
    if train_options.get("seq_length") is not None:
        raise OptionError("--seq-length does not apply to --items lines: each window is one item, padded "
                          "to the longest item + 1; cap items with --max-item-length instead")
    if train_options.get("distribute") == "multi-worker":
        raise OptionError("--items lines does not support --distribute multi-worker")
    if train_options.get("distribute") is not None:  # Keras fit under tf.distribute: one padded length
        if train_options.get("buckets", 1) != 1:
            raise OptionError(f"--buckets {train_options['buckets']} does not apply with --distribute "
                              f"{train_options['distribute']}: distributed items runs pad every row to "
                              "the longest item; drop --buckets")
        train_options = {**train_options, "buckets": 1}
    model_names = SHAPE_OPTIONS | {"dropout"}
    model_options, train_options = dict(model_options), dict(train_options)
    for name, value in ITEMS_DEFAULTS.items():
        if not (fine_tuning and name in SHAPE_OPTIONS):
            (model_options if name in model_names else train_options).setdefault(name, value)
    return model_options, train_options
