"""The data side of an items run: its items read, split and cut into training batches."""

from __future__ import annotations

import dataclasses

import numpy as np

from charrnn.data.vocab import Vocabulary
from charrnn.items.batches import ItemBatches
from charrnn.items.reading import Items, read_items
from charrnn.items.scoring import item_losses, losses_by_label
from charrnn.items.split import split_items, split_labelled_items


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

    @property
    def label_names(self) -> tuple[str, ...]:
        """The labels of a labelled corpus, in id order; () when unlabelled."""
        return self.items.label_names

    @property
    def labels(self):
        """Each item's label id (a labelled corpus's), else None."""
        return self.items.labels

    def relabel(self, label_names) -> None:
        """Gives the labels the run's ids (`label_names`: a fine-tune's parent's labels first)."""
        if self.items.labels is not None:
            self.items.relabel(label_names)

    def validation_losses(self, model, scorer=None) -> dict:
        """The validation loss (nats/char, end symbols counted) of each label, {None: loss} when
        unlabelled; a run's val_loss is their mean."""
        indices = self.split["validation"]
        losses, counts = item_losses(model, self.items, indices, scorer=scorer)
        if self.items.labels is None:
            return {None: float(losses.sum() / counts.sum())}
        return losses_by_label(losses, counts, self.items.labels[indices], self.items.label_names)

    def validation_loss(self, model, scorer=None) -> float:
        """The mean of `validation_losses` over the labels (the item loss when unlabelled)."""
        return float(np.mean(list(self.validation_losses(model, scorer).values())))


def training_items(sources, train_config, vocab: Vocabulary | None = None,
                   grow_from: Vocabulary | None = None) -> TrainingItems:
    """Reads the items, splits them (seeded; label by label in a labelled run) and builds the
    training batches.

    Args:
        sources: the corpus sources.
        train_config: the run's TrainConfig (items="lines"; `labels` None, "column", "files"
            or "folders").
        vocab: a resumed run's vocabulary. Defaults to None.
        grow_from: a fine-tune's parent vocabulary, grown by the items' symbols. Defaults to None.

    Returns:
        `TrainingItems`, whose train_config has seq_length set to the window.
    """
    if train_config.labels is not None:
        from charrnn.items.labelled import read_labelled_items

        items = read_labelled_items(sources, train_config.labels, train_config.encoding,
                                    train_config.max_item_length, vocab, grow_from, train_config.min_char_count)
        split = split_labelled_items(items.labels, items.label_names, train_config.seed, train_config.val_fraction)
    else:
        items = read_items(sources, train_config.encoding, train_config.max_item_length, vocab, grow_from,
                           train_config.min_char_count)
        split = split_items(len(items), train_config.seed, train_config.val_fraction)
    train_config = dataclasses.replace(train_config, seq_length=items.window)
    batches = ItemBatches(items, split["train"], items.window, train_config.batch_size, train_config.seed,
                          train_config.buckets)
    return TrainingItems(items, split, batches, train_config)
