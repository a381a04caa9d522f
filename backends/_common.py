"""Shared wording of declared deviations, so every backend states them the same way."""

SATURATES = (
    "accumulates duplicate-id gradients in the weight dtype, so a float16 row stops growing at "
    "2048 and a bfloat16 row at 256 unit contributions, where adding 1 no longer changes the sum "
    "(the same saturation as apache/mxnet#17703)"
)
NAN_POISON = "0 * inf = nan: one NaN/Inf anywhere in W poisons that column of every output row"
LOSES_NEG_ZERO = "-0.0 + 0 * w = +0.0: the matmul loses the sign of zero"
FLUSHES_SUBNORMALS = "the float32 matmul flushes subnormal inputs to zero (FTZ/DAZ)"
# Observed with a uint8 (uint16) id array and a table of more than 256 (65536) rows; from
# jax.nn.one_hot's implementation, which compares x with lax.broadcasted_iota(x.dtype, ...).
JAX_ONEHOT_NARROW_IOTA = {
    "index_dtypes": "jax.nn.one_hot builds its iota in the ids' dtype: with uint8/uint16 ids and a table of "
                    "more rows than that dtype holds the iota wraps, so rows 256.. (65536..) also match ids "
                    "0.. and their rows are added to the output",
}
SATURATION_CHECKS = ("low_precision_accumulation[float16]", "low_precision_accumulation[bfloat16]")
ONEHOT_SPECIALS = {"nan_inf_isolated": NAN_POISON, "negative_zero_preserved": LOSES_NEG_ZERO}


def saturation_deviations(weight_dtypes) -> dict[str, str]:
    return {f"low_precision_accumulation[{d}]": SATURATES for d in ("float16", "bfloat16")
            if d in weight_dtypes}


def onehot_deviations(flushing_dtypes=()) -> dict[str, str]:
    """What every one-hot matmul does differently from a gather, plus the dtypes whose
    matmul flushes subnormals on this device."""
    return {**ONEHOT_SPECIALS, **{f"subnormals_preserved[{d}]": FLUSHES_SUBNORMALS for d in flushing_dtypes}}
