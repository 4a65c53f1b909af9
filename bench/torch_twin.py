"""A PyTorch nn.LSTM twin of charrnn's reference model, for side-by-side training speed.

    python bench/torch_twin.py STEPS EVAL_EVERY PRECISION DROPOUT

Run by bench/train_speed.py under an interpreter that has torch (`--torch-python`); prints one
JSON line with the chars/s of every interval of EVAL_EVERY steps. Same shape as charrnn's
reference config: embedding 64, 2 x LSTM(256) with DROPOUT on each layer's output (as charrnn),
seq 100, batch 64, Adam 2e-3, global-norm clipping 5, random ids over a 65-symbol vocabulary.
PRECISION "float32", or "mixed_bfloat16": the forward pass under
`torch.autocast("cpu", dtype=torch.bfloat16)` (float32 weights, as charrnn's mixed policy).
Training steps only: no evaluation between the intervals.
"""

import contextlib
import json
import sys
import time

import torch
from torch import nn

BATCH, STEPS_IN_WINDOW, VOCAB, EMBEDDING, UNITS = 64, 100, 65, 64, 256


class CharModel(nn.Module):
    def __init__(self, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBEDDING)
        self.lstm = nn.LSTM(EMBEDDING, UNITS, num_layers=2, batch_first=True, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(UNITS, VOCAB)

    def forward(self, ids):
        return self.head(self.dropout(self.lstm(self.embedding(ids))[0]))


def main():
    steps, eval_every = int(sys.argv[1]), int(sys.argv[2])
    precision, dropout = sys.argv[3], float(sys.argv[4])
    if precision not in ("float32", "mixed_bfloat16"):
        sys.exit(f"Error: precision must be float32 or mixed_bfloat16, not {precision!r}")
    torch.manual_seed(0)
    model = CharModel(dropout).train()
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    inputs = torch.randint(0, VOCAB, (BATCH, STEPS_IN_WINDOW))
    targets = torch.randint(0, VOCAB, (BATCH, STEPS_IN_WINDOW))

    def autocast():
        if precision == "float32":
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def step():
        optimizer.zero_grad()
        with autocast():
            logits = model(inputs)
        loss = nn.functional.cross_entropy(logits.float().reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    rates = []
    for start in range(0, steps, eval_every):
        count = min(eval_every, steps - start)
        started = time.perf_counter()
        for _ in range(count):
            step()
        rates.append(count * BATCH * STEPS_IN_WINDOW / (time.perf_counter() - started))
    print(json.dumps({"framework": f"torch {torch.__version__}", "threads": torch.get_num_threads(),
                      "precision": precision, "intervals": rates}))


if __name__ == "__main__":
    main()
