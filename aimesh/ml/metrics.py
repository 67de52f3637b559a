"""Evaluation figures for binary classifiers and anomaly scores (scikit-learn metrics)."""

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)


def ranking_metrics(y_true: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """Threshold-free quality of a score that should rank positives first.

    Args:
        y_true: Labels, shape (n,), 1 = positive.
        score: Scores, shape (n,), higher = more likely positive.

    Returns:
        ``roc_auc`` (area under the ROC curve) and ``average_precision`` (area under the
        precision-recall curve, step-wise as in scikit-learn).
    """
    return {
        "roc_auc": float(roc_auc_score(y_true, score)),
        "average_precision": float(average_precision_score(y_true, score)),
    }


def probability_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Ranking and calibration quality of predicted probabilities.

    Args:
        y_true: Labels, shape (n,), 1 = positive.
        proba: Predicted probabilities of the positive class, shape (n,).

    Returns:
        :func:`ranking_metrics` plus ``brier`` (mean squared error of the probability) and
        ``log_loss`` (mean negative log-likelihood, nats).
    """
    return {
        **ranking_metrics(y_true, proba),
        "brier": float(brier_score_loss(y_true, proba)),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
    }


def best_f1(y_true: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """The highest F1 over all decision thresholds, and that threshold.

    Args:
        y_true: Labels, shape (n,), 1 = positive.
        proba: Predicted probabilities, shape (n,).

    Returns:
        ``(f1, threshold)``: predict positive when ``proba >= threshold``.
    """
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, where=denominator > 0, out=np.zeros_like(denominator)
    )
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])
