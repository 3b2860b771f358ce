"""The rules by which a deployable threshold is chosen (src/eval/thresholds.py computes them), apart from the
computation so that reading a threshold back (the predictor, infer.py) imports no scoring library."""

RULES = {"far1e-3": 1e-3, "far1e-4": 1e-4, "best_acc": None}
RULE_TEXT = (
    "'same' when cosine > threshold; far1e-3 / far1e-4: the (k+1)-th highest different-pair score, "
    "k = floor(FAR x different pairs) (null when the set has fewer than 1/FAR different pairs); best_acc: "
    "the threshold of best accuracy on all pairs (grid -1..1 step 0.005)"
)
