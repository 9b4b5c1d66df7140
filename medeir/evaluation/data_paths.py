"""Default locations of the staged evaluation data, under the project's data folder (``MEDEIR_DATA_DIR``)."""

from __future__ import annotations

from medeir.tokenizer import DEFAULT_DATA_DIR

BEIR_DIRS = tuple(DEFAULT_DATA_DIR / "eval" / name for name in ("scifact", "medicalqa-approx", "nfcorpus-degraded"))
STS_FILE = DEFAULT_DATA_DIR / "eval" / "stsb" / "test.jsonl"
MQP_FILE = DEFAULT_DATA_DIR / "train" / "mqp_pairs.jsonl.gz"
MEDQUAD_FILE = DEFAULT_DATA_DIR / "train" / "medquad_pairs.jsonl.gz"
