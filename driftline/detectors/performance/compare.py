"""Is a window's metric worse than the reference's by more than their sampling noise?

>>> w = {"accuracy": 0.80, "se": {"accuracy": 0.01}}
>>> r = {"accuracy": 0.85, "se": {"accuracy": 0.005}}
>>> c = compare(w, r, "accuracy", z=3.0); round(c["z"], 2), c["significant"]
(-4.47, True)
"""

from __future__ import annotations

import math

from driftline.detectors.performance._common import num

#: metrics where a larger value is worse; every other one is better when larger
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "mae", "mse", "rmse", "mape", "roc_auc_max_error"})
SIDES = ("worse", "either")


def compare(window: dict, reference: dict, metric: str, z: float = 3.0, side: str = "worse") -> dict:
    """``{"metric", "delta", "se", "z", "significant"}``: ``delta = window − reference``, ``se``
    the two samples' standard errors combined (independent windows), ``z = delta / se``.
    ``significant`` when ``|z| > z`` and, with ``side="worse"``, in the direction that makes the
    metric worse (lower accuracy, higher log loss). Undefined values give ``None`` and not
    significant; with both standard errors zero, any worsening is significant."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if not (isinstance(z, (int, float)) and z > 0):
        raise ValueError(f"z must be a positive number, got {z!r}")
    out = {"metric": metric, "delta": None, "se": None, "z": None, "significant": False}
    a, b = num(window.get(metric)), num(reference.get(metric))
    if a is None or b is None:
        return out
    sa, sb = num(window.get("se", {}).get(metric)), num(reference.get("se", {}).get(metric))
    out["delta"] = delta = a - b
    if sa is None or sb is None:
        return out
    out["se"] = se = math.hypot(sa, sb)
    worse = -delta if metric not in LOWER_IS_BETTER else delta  # > 0 when the window is worse
    out["z"] = num(delta / se) if se > 0 else None
    beyond = abs(delta) > z * se if se > 0 else delta != 0
    out["significant"] = bool(beyond and (side == "either" or worse > 0))
    return out
