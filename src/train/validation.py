"""Validation while training: 10-fold pair verification of the backbone (src/eval/verify.py), the best
accuracy so far, and the early-stop count."""
import logging
import time

from src.eval.pairs import read_pairs
from src.eval.verify import evaluate_network, load_pair_images

LOG = logging.getLogger(__name__)


class Validator:
    """Decodes and aligns the images of ``cfg.val_pairs`` once; ``__call__`` embeds them with the backbone in
    inference mode and returns every metric of ``verification_metrics`` (``accuracy`` is the 10-fold one)."""

    def __init__(self, backbone, cfg):
        self.backbone = backbone
        self.batch_size, self.fusion = cfg.eval_batch_size, cfg.fusion
        self.pair_set = read_pairs(cfg.val_pairs, cfg.eval_root, cfg.eval_image_ext)
        self.images = load_pair_images(self.pair_set, cfg.image_size, cfg.eval_landmarks)
        LOG.info("validation: %d pairs of %d images from %s", len(self.pair_set.issame), len(self.images),
                 cfg.val_pairs)

    def __call__(self):
        """The metrics, or None when they cannot be computed (non-finite embeddings of a diverged network)."""
        start = time.time()
        self.backbone.set_train(False)
        try:
            result, _ = evaluate_network(self.backbone, self.images, self.pair_set, self.batch_size, self.fusion)
        except ValueError as err:  # scikit-learn refuses NaN scores
            LOG.warning("validation failed (%s): the embeddings are not finite; counted as no improvement", err)
            return None
        finally:
            self.backbone.set_train(True)
        LOG.info("validation: accuracy %.4f +- %.4f (10-fold), AUC %.4f, %.1f s", result["accuracy"],
                 result["std"], result["auc"], time.time() - start)
        return result


def track_best(state, accuracy, patience):
    """Update ``state`` (a ``RunState``) with a validation ``accuracy`` at ``state.step`` (None: it failed).

    Returns (improved, stop): ``improved`` when the accuracy beats the best so far; ``stop`` when ``patience``
    > 0 validations in a row have not improved on it (early stopping).
    """
    improved = accuracy is not None and accuracy > state.best_accuracy
    if improved:
        state.best_accuracy, state.best_step, state.evals_since_best = accuracy, state.step, 0
    else:
        state.evals_since_best += 1
    stop = patience > 0 and state.evals_since_best >= patience
    if stop:
        LOG.info("early stop: no improvement on %.4f (step %d) in %d validations", state.best_accuracy,
                 state.best_step, state.evals_since_best)
    return improved, stop
