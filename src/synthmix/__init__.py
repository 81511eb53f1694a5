"""synthmix: how much self-generated training data can a language model take before it degrades?"""

import os

# The built-in study never needs a hub; never wait on a network time-out looking for one.
# A user who runs the paper-scale profile online sets these to 0 explicitly.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Idle OpenMP threads sleep instead of spinning: with two stages sharing the cores (`dvc queue
# start -j 2`) spinning threads starve each other; measured 4.8 s -> 1.3 s for one evaluate stage
# beside another torch process on 2 cores. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
