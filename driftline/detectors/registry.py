"""Every detector driftline runs, in the order the window summary shows them.

Explicit dicts, not registration on import: the window summary is built by looping
over them (``detectors/window.py`` for window tests, ``monitor.py`` for sequence
tests), and a stored state names its detectors by these keys. Adding a test of a
whole window is its module and one line here; the key is its field in the window
summary (the JSON contract) and in :data:`driftline.summary.WINDOW_TESTS`, which the
alert rules, the store and the metrics read.
"""

from __future__ import annotations

from driftline.detectors.classifier import DomainClassifier
from driftline.detectors.multivariate import Multivariate
from driftline.detectors.online import AdwinTest
from driftline.detectors.trend import TrendTest
from driftline.summary import WINDOW_TESTS

#: tests of one window's rows: one per open window, mergeable
WINDOW = {"multivariate": Multivariate, "domain_classifier": DomainClassifier}

#: tests that follow a model version across windows (or events): one per version, sequential
SEQUENCE = {"trend": TrendTest, "prediction_adwin": AdwinTest}

assert tuple(WINDOW) == WINDOW_TESTS, "the window summary's test fields and the registry must agree"


def lookup(table: dict, name: str):
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(table)}") from None
