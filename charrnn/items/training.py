"""The data side of an items run: its items read, split and cut into training batches."""

from __future__ import annotations

import dataclasses

import numpy as np

from charrnn.data.vocab import Vocabulary
from charrnn.items.batches import ItemBatches
from charrnn.items.reading import Items, read_items
from charrnn.items.scoring import mean_loss
from charrnn.items.split import split_items


@dataclasses.dataclass
class TrainingItems:
    """The data side of an items run: the items, their split and the training batches."""

    items: Items
    split: dict[str, np.ndarray]
    batches: "ItemBatches"
    train_config: object  # the TrainConfig with seq_length = the window

    @property
    def corpus(self):
        """The corpus as training describes it: the items' ids and vocabulary."""
        return dataclasses.replace(self.items.corpus, ids=self.items.ids, vocab=self.items.vocab)

    def validation_loss(self, model, scorer=None) -> float:
        return mean_loss(model, self.items, self.split["validation"], scorer=scorer)


def training_items(sources, train_config, vocab: Vocabulary | None = None) -> TrainingItems:
    """Reads the items, splits them (seeded) and builds the training batches.

    Args:
        sources: the corpus sources.
        train_config: the run's TrainConfig (items="lines").
        vocab: a resumed run's vocabulary. Defaults to None.

    Returns:
        `TrainingItems`, whose train_config has seq_length set to the window.
    """
    items = read_items(sources, train_config.encoding, train_config.max_item_length, vocab)
    split = split_items(len(items), train_config.seed, train_config.val_fraction)
    train_config = dataclasses.replace(train_config, seq_length=items.window)
    batches = ItemBatches(items, split["train"], items.window, train_config.batch_size, train_config.seed,
                          train_config.buckets)
    return TrainingItems(items, split, batches, train_config)
