"""The isolation-forest model over user-day deviations (pyod ``IForest``).

Input: for each model feature, how far today is above the person's own baseline and above the
peer group's, in standard deviations of ``log1p`` (only excess counts: doing less than usual is
not how data leaves). Higher score = more anomalous, as in pyod. The fitted state ends in ``_``.

pyod fits the forest; what is kept (and pickled in the store) is the scikit-learn forest pyod
wraps, scored the way pyod scores it (sklearn's score, sign flipped), so a day scored with a kept
model imports scikit-learn alone: pyod pulls in numba, 0.5 s of the daily run's model stage.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from schemas.features import MODEL_FEATURES

COLUMNS: tuple[str, ...] = tuple(
    f"{name}__{side}_z" for name in MODEL_FEATURES for side in ("own", "peer")
)


def deviation_matrix(frame: pl.DataFrame) -> np.ndarray:
    """The model's input for each row of an evidence frame: positive deviations only."""
    return (
        frame.select([pl.col(c).fill_null(0).clip(lower_bound=0) for c in COLUMNS])
        .to_numpy()
        .astype(np.float64)
    )


class DeviationForest:
    def __init__(self, n_estimators: int, max_samples: int, seed: int) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.seed = seed

    def fit(self, x: np.ndarray) -> DeviationForest:
        from pyod.models.iforest import IForest  # slow to import; only when a model is fitted

        model = IForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(x)),
            random_state=self.seed,
            n_jobs=1,
        ).fit(x)
        self.forest_ = model.detector_  # sklearn's IsolationForest
        # pyod keeps the training rows' scores (``decision_function`` of ``x``): not scored again.
        self.train_scores_ = np.sort(model.decision_scores_)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score per row; higher = more anomalous (pyod's ``IForest`` score: sklearn's,
        sign flipped)."""
        return self.forest_.decision_function(x) * -1

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Share of training days scoring strictly lower than each score (0–1)."""
        return np.searchsorted(self.train_scores_, scores, side="left") / len(self.train_scores_)

    def drivers(self, x: np.ndarray, k: int, only: np.ndarray | None = None) -> list[list[str]]:
        """The ``k`` features whose removal lowers each row's score most (a feature is
        removed by setting its own and peer deviations to zero); empty for rows not in
        ``only``. Names are model features, strongest first."""
        rows = np.flatnonzero(only) if only is not None else np.arange(len(x))
        out: list[list[str]] = [[] for _ in range(len(x))]
        if len(rows) == 0:
            return out
        base = self.decision_function(x[rows])
        n_feat = len(MODEL_FEATURES)
        probes = np.repeat(x[rows], n_feat, axis=0)
        for f in range(n_feat):
            probes[f::n_feat, 2 * f : 2 * f + 2] = 0.0
        drops = base[:, None] - self.decision_function(probes).reshape(len(rows), n_feat)
        for i, row in enumerate(rows):
            order = np.argsort(-drops[i], kind="stable")[:k]
            out[row] = [MODEL_FEATURES[j] for j in order if drops[i, j] > 0]
        return out
