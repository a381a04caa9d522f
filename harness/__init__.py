"""embedding-harness: conformance and benchmarks for embedding layers across frameworks."""

from harness.adapter import Declared, Deviates, EmbeddingAdapter
from harness.checks import CHECKS, CheckResult, check_adapter, run_check
from harness.errors import FrameworkUnavailable, HarnessError, UnknownAdapter
from harness.registry import load_adapter, select

__all__ = [
    "CHECKS", "CheckResult", "Declared", "Deviates", "EmbeddingAdapter", "FrameworkUnavailable", "HarnessError",
    "UnknownAdapter", "check_adapter", "load_adapter", "run_check", "select",
]
