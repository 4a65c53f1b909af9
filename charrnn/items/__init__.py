"""One item per line (`--items lines`): names, titles, recipes trained and sampled as whole items.

Every non-empty line of the corpus is one item. Its line ending ("\\n" or "\\r\\n") is removed and
nothing else: other whitespace (leading or trailing spaces, tabs) stays part of the item. The
newline "\\n" is both the start symbol and the end-of-item symbol (as makemore's '.'): the item
"emma" is trained as the input "\\nemma" with the target "emma\\n", from a zero state, so the loss
covers every character and the end symbol. A line never holds "\\n", so no special token is needed.

The layers, each importing only those above it:

    reading.py   lines -> `Items` (ids, where each item starts, its length, the vocabulary)
    labelled.py  labelled items (--labels column: LABEL<TAB>ITEM lines; files, folders)
    split.py     training / validation / test items (label by label), and the run's `items.npz`
    options.py   an items run's defaults (`ITEMS_DEFAULTS`) and the options it refuses
    batches.py   padded rows in length buckets (`ItemBatches`), a function of (seed, step)
    scoring.py   log-probabilities of whole items (`item_losses`, `evaluate_items`, `item_log_probs`)
    sampling.py  whole items drawn with the compiled sampler (`sample_items`: --novel, --tag)
    training.py  the data side of an items run: read, split, batched (`training_items`)
"""

from charrnn.items.batches import ItemBatches, bucket_lengths, pad_items
from charrnn.items.options import ITEMS_DEFAULTS, SHAPE_OPTIONS, with_defaults
from charrnn.items.reading import END, Items, lines_as_items, read_items
from charrnn.items.sampling import SampledItems, sample_items
from charrnn.items.labelled import read_labelled_items
from charrnn.items.scoring import (evaluate_items, item_log_probs, item_losses, losses_by_label, make_item_scorer,
                                   mean_loss)
from charrnn.items.split import (ITEMS_FILE, StoredSplit, item_hash, load_split, save_split, split_items,
                                 split_labelled_items, split_sizes)
from charrnn.items.training import TrainingItems, training_items

__all__ = ["END", "ITEMS_DEFAULTS", "ITEMS_FILE", "ItemBatches", "Items", "SHAPE_OPTIONS", "SampledItems", "StoredSplit",
           "TrainingItems", "bucket_lengths", "evaluate_items", "item_hash", "item_log_probs", "item_losses",
           "lines_as_items", "load_split", "losses_by_label", "make_item_scorer", "mean_loss", "pad_items",
           "read_items", "read_labelled_items", "sample_items", "save_split", "split_items", "split_labelled_items",
           "split_sizes", "training_items", "with_defaults"]
