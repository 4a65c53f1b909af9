"""A PyTorch nn.LSTM twin of charrnn's reference model, for side-by-side training speed.

Run by bench/train_speed.py under an interpreter that has torch (`--torch-python`); prints one
JSON line. Same shape as charrnn's reference config: embedding 64, 2 x LSTM(256), seq 100,
batch 64, Adam 2e-3, global-norm clipping 5, fp32, random ids over a 65-symbol vocabulary.
"""

import json
import sys
import time

import torch
from torch import nn

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
BATCH, STEPS_IN_WINDOW, VOCAB, EMBEDDING, UNITS = 64, 100, 65, 64, 256


class CharModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBEDDING)
        self.lstm = nn.LSTM(EMBEDDING, UNITS, num_layers=2, batch_first=True)
        self.head = nn.Linear(UNITS, VOCAB)

    def forward(self, ids):
        return self.head(self.lstm(self.embedding(ids))[0])


def main():
    torch.manual_seed(0)
    model = CharModel()
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    inputs = torch.randint(0, VOCAB, (BATCH, STEPS_IN_WINDOW))
    targets = torch.randint(0, VOCAB, (BATCH, STEPS_IN_WINDOW))

    def step():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs).reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    for _ in range(5):
        step()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < SECONDS:
        step()
        steps += 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"framework": f"torch {torch.__version__}", "threads": torch.get_num_threads(),
                      "steps": steps, "chars_per_s": steps * BATCH * STEPS_IN_WINDOW / elapsed}))


if __name__ == "__main__":
    main()
