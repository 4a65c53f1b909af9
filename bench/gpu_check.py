"""GPU check (run on a machine with an NVIDIA GPU): is the cuDNN LSTM kernel used, and how fast?

    python bench/gpu_check.py [--steps 300]

1. Builds the reference model as `charrnn train` does on a GPU (rolled LSTM, so Keras can pick
   cuDNN), traces one training step and searches the graph for CudnnRNN ops.
2. Trains 2 x LSTM(256) (emb 64, seq 100, batch 64) and 3 x LSTM(512) with `charrnn.train`
   (evaluations every 50 steps) and prints each one's median and every interval's chars/s.
Prints a table; exits 1 if no GPU is visible or the cuDNN op is missing.
"""

import argparse
import sys


def cudnn_ops(model) -> list[str]:
    import numpy as np
    import tensorflow as tf

    ids = np.zeros((64, 100), np.int32)

    @tf.function
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
        return tape.gradient(loss, model.trainable_variables)

    graph = step.get_concrete_function(ids, ids).graph.as_graph_def()
    names = {node.op for node in graph.node}
    for function in graph.library.function:
        names |= {node.op for node in function.node_def}
    return sorted(name for name in names if "Cudnn" in name)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300, help="training steps per config (intervals of 50)")
    args = parser.parse_args()
    import tensorflow as tf

    from charrnn.tools.bench import train_intervals
    from charrnn.config import ModelConfig
    from charrnn.models.char_model import build_char_model

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print("no GPU visible to TensorFlow")
        sys.exit(1)
    ops = cudnn_ops(build_char_model(ModelConfig(vocab_size=65), seq_length=100))
    print(f"GPU: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)}")
    print(f"cuDNN ops in the training step: {', '.join(ops) or 'NONE'}")
    print(f"{'config':<28}{'median train chars/s':>22}  every interval")
    for label, shape in (("2 x LSTM(256)", dict(layers=2, units=256)), ("3 x LSTM(512)", dict(layers=3, units=512))):
        result = train_intervals(steps=args.steps, eval_every=50, roof=False, **shape)
        print(f"{label:<28}{result['median_chars_per_s']:>22,.0f}  {', '.join(f'{r:,.0f}' for r in result['intervals'])}")
    sys.exit(0 if ops else 1)


if __name__ == "__main__":
    main()
