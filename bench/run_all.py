"""Runs every benchmark in turn (about 20 minutes). Pass TORCH_PYTHON=/path/to/python in the
environment to include the PyTorch twin in the training-speed table."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
torch = ["--torch-python", os.environ["TORCH_PYTHON"]] if os.environ.get("TORCH_PYTHON") else []
for script, extra in (("startup.py", []), ("sample_speed.py", []), ("sample_loop_variants.py", []),
                      ("portable_speed.py", []), ("web_speed.py", []),
                      ("train_speed.py", torch), ("step_breakdown.py", []),
                      ("memory_scale.py", []), ("quality.py", [])):
    print(f"\n## {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *extra], check=True)
