"""synthmix: how much self-generated training data can a language model take before it degrades?"""

import os

# The built-in study never needs a hub; never wait on a network time-out looking for one.
# A user who runs the paper-scale profile online sets these to 0 explicitly.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
# OMP_WAIT_POLICY is left to the user: PASSIVE helps two torch processes sharing two cores (one
# evaluate stage 4.8 s -> 1.3 s) but halves a lone run's training speed (11.5 s -> 21.1 s per
# task). Parallel runs should use `threads: 1` instead (see README).

__version__ = "0.1.0"
