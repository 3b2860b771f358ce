"""IJB metrics from template embeddings: 1:1 verification (ROC; TAR at FAR 1e-6 .. 1e-1) and 1:N open-set
identification (CMC rank-1/5/10; TPIR at FPIR 0.01 and 0.1), per gallery and their mean."""

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from src.eval.ijb_templates import lookup
from src.eval.metrics import tar_at_far
from src.eval.thresholds import threshold_at_far

VERIFICATION_FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
RANKS = (1, 5, 10)
FPIRS = (0.01, 0.1)
PROTOCOLS = {
    "1:1": "cosine of the two template embeddings per pair; TAR at FAR = the highest true accept rate whose false "
    "accept rate is <= FAR on the ROC (scikit-learn), null when the pairs hold fewer than 1/FAR different "
    "pairs",
    "1:N": "each probe template searched against one gallery at a time (IJB-C G1 and G2, IJB-B S1 and S2; "
    "insightface's layout); a probe is mated when its subject is in the gallery. rank-k: fraction of mated "
    "probes with a template of their subject among the k best-scoring gallery templates (ties counted "
    "against). TPIR at FPIR f: threshold t such that at most floor(f x non-mated probes) non-mated probes "
    "have a top score > t; TPIR = fraction of mated probes whose mate is rank 1 with score > t (null "
    "without enough non-mated probes). 'mean' averages the galleries",
}


def verification(ids, feats, pairs, fars=VERIFICATION_FARS):
    """{'scores', 'auc', 'tar@far=...', 'roc': (fpr, tpr)} of template pairs (rows ``t1 t2 label``)."""
    scores = np.sum(lookup(ids, feats, pairs[:, 0]) * lookup(ids, feats, pairs[:, 1]), axis=1)
    labels = pairs[:, 2].astype(bool)
    fpr, tpr, _ = roc_curve(labels, scores)
    negatives = int((~labels).sum())
    out = {"pairs": len(pairs), "same": int(labels.sum()), "auc": float(roc_auc_score(labels, scores))}
    for far in fars:
        out[f"tar@far={far:g}"] = tar_at_far(fpr, tpr, far) if negatives * far >= 1 else None
    return out, scores, (fpr, tpr)


def identification(probe_feats, probe_subjects, gallery_feats, gallery_subjects, ranks=RANKS, fpirs=FPIRS):
    """Open-set identification of probes against one gallery: {'probes', 'mated', 'rank-k', 'tpir@fpir=...'}."""
    similarity = probe_feats @ gallery_feats.T
    mates = probe_subjects[:, None] == gallery_subjects[None, :]
    mated = mates.any(axis=1)
    out = {"probes": len(probe_subjects), "mated": int(mated.sum()), "gallery_templates": len(gallery_subjects)}
    mate_score = np.where(mates, similarity, -np.inf).max(axis=1)
    # rank of the best mate: 1 + non-mates scoring at least as high (ties counted against)
    rank = 1 + np.sum(np.where(mates, False, similarity >= mate_score[:, None]), axis=1)
    for k in ranks:
        out[f"rank-{k}"] = float(np.mean(rank[mated] <= k)) if mated.any() else None
    top_score = similarity.max(axis=1)
    for fpir in fpirs:
        threshold = threshold_at_far(top_score, mated, fpir)
        out[f"tpir@fpir={fpir:g}"] = (
            None
            if threshold is None or not mated.any()
            else float(np.mean((rank[mated] == 1) & (mate_score[mated] > threshold)))
        )
    return out


def identification_all(ids, feats, galleries, probes):
    """``identification`` of the probes against each gallery ({name: (template ids, subject ids)}) and 'mean'."""
    probe_ids, probe_subjects = probes
    probe_feats = lookup(ids, feats, probe_ids)
    results = {
        name: identification(probe_feats, probe_subjects, lookup(ids, feats, gallery_ids), subjects)
        for name, (gallery_ids, subjects) in galleries.items()
    }
    keys = [k for k in next(iter(results.values())) if k.startswith(("rank-", "tpir@"))]
    results["mean"] = {
        k: (None if any(r[k] is None for r in results.values()) else float(np.mean([r[k] for r in results.values()])))
        for k in keys
    }
    return results
