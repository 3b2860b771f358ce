"""Validation while training: 10-fold pair verification of the backbone (src/eval/verify.py) on every target
(``val_targets``), the selection score (``val_select``: the mean accuracy or one
target's), the best score so far, and the early-stop count."""

import logging
import time

from src.eval.targets import load_target, selection_score, targets_from_config
from src.eval.verify import evaluate_network, summary

LOG = logging.getLogger("facerec.train")


class Validator:
    """Decodes and aligns the images of every target once; ``__call__`` embeds them with the backbone in
    inference mode and returns ({target label or None: flat ``summary`` or None}, the selection score or None)."""

    def __init__(self, backbone, cfg):
        self.backbone = backbone
        self.batch_size, self.fusion, self.select = cfg.eval_batch_size, cfg.fusion, cfg.val_select
        self.loaded = [load_target(target, cfg.image_size) for target in targets_from_config(cfg)]

    def _one(self, loaded):
        try:
            metrics, _ = evaluate_network(self.backbone, loaded.images, loaded.pair_set, self.batch_size, self.fusion)
        except ValueError as err:  # scikit-learn refuses NaN scores
            LOG.warning(
                "validation on %s failed (%s): the embeddings are not finite; counted as no improvement",
                loaded.target.label,
                err,
            )
            return None
        return summary(metrics)

    def __call__(self):
        start = time.time()
        self.backbone.set_train(False)
        try:
            results = {loaded.target.name: self._one(loaded) for loaded in self.loaded}
        finally:
            self.backbone.set_train(True)
        for name, result in results.items():
            if result is not None:
                LOG.info(
                    "validation%s: accuracy %.4f +- %.4f (10-fold), AUC %.4f",
                    f" {name}" if name else "",
                    result["accuracy"],
                    result["std"],
                    result["auc"],
                )
        score = selection_score({name: r and r["accuracy"] for name, r in results.items()}, self.select)
        if len(results) > 1 and score is not None:
            LOG.info("validation score (%s): %.4f, %.1f s", self.select, score, time.time() - start)
        return results, score


def track_best(state, accuracy, patience):
    """Update ``state`` (a ``RunState``) with a validation score ``accuracy`` at ``state.step`` (None: it failed).

    Returns (improved, stop): ``improved`` when the score beats the best so far; ``stop`` when ``patience``
    > 0 validations in a row have not improved on it (early stopping).
    """
    improved = accuracy is not None and accuracy > state.best_accuracy
    if improved:
        state.best_accuracy, state.best_step, state.evals_since_best = accuracy, state.step, 0
    else:
        state.evals_since_best += 1
    stop = patience > 0 and state.evals_since_best >= patience
    if stop:
        LOG.info(
            "early stop: no improvement on %.4f (step %d) in %d validations",
            state.best_accuracy,
            state.best_step,
            state.evals_since_best,
        )
    return improved, stop
