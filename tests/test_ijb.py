"""IJB-B / IJB-C evaluation: every step against hand-computed values (template pooling, 1:1 TAR at FAR, 1:N rank
and TPIR at FPIR on tiny hand-made embeddings), and the whole pipeline on a synthetic set written in the official
file layout from four LFW subjects (images_150 + their 5-point landmarks): eval.py --ijb end to end with a tiny
network, with hand-made image embeddings (--ijb_features), and the bad-input messages."""

import json
import os
import shutil

import mindspore as ms
import numpy as np
import pytest
from face_data import LFW_IMAGES, lfw_landmarks
from tiny_training import TINY_EVAL

from src.eval.evaluation import evaluate
from src.eval.ijb_meta import IJBFormatError, read_meta
from src.eval.ijb_metrics import identification, verification
from src.eval.ijb_templates import image_features, template_features
from src.model_utils.config import load_config
from src.network import build_backbone

SUBJECTS = ("Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder")
TINY = TINY_EVAL + ["--eval_batch_size=16"]


# ---------------------------------------------------------------- each step by hand


def test_image_features_flip_and_detector_score():
    orig, flip = np.array([[1.0, 2.0], [3.0, 0.0]]), np.array([[1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(image_features(orig, flip, [0.5, 2.0]), [[1.0, 1.0], [8.0, 2.0]])
    np.testing.assert_allclose(image_features(orig, flip, [0.5, 2.0], use_flip=False), [[0.5, 1.0], [6.0, 0.0]])
    np.testing.assert_allclose(image_features(orig, flip, [0.5, 2.0], use_detector_score=False), orig + flip)


def test_template_pooling_by_hand():
    """Template 7: media 1 holds [2, 0] and [0, 2] (mean [1, 1]), media 2 holds [3, 0]: sum [4, 1] / sqrt(17).
    Template 3: one image [0, -5] -> [0, -1]. Norms matter: the media mean, not the unit vectors, is summed."""
    features = np.array([[2.0, 0.0], [0.0, -5.0], [0.0, 2.0], [3.0, 0.0]])
    ids, feats = template_features(features, np.array([7, 3, 7, 7]), np.array([1, 5, 1, 2]))
    assert ids.tolist() == [3, 7]
    np.testing.assert_allclose(feats, [[0.0, -1.0], [4 / np.sqrt(17), 1 / np.sqrt(17)]])


def test_verification_tar_at_far_by_hand():
    """Template 0 is e1, template k has cosine s_k with it. Positives score 0.9, 0.8, 0.3; negatives 0.85, 0.5
    and eight of 0.1. At FAR <= 0.1 (one negative of ten above the threshold) the best is the threshold just
    below 0.8: TAR 2/3; at FAR 0.2, all three positives (0.3 > 0.1): TAR 1; FAR 1e-2 needs 100 negatives."""
    cosines = [0.9, 0.8, 0.3, 0.85, 0.5] + [0.1] * 8
    feats = np.array([[1.0, 0.0]] + [[s, np.sqrt(1 - s * s)] for s in cosines])
    ids = np.arange(len(feats))
    pairs = np.array([[0, k + 1, int(k < 3)] for k in range(len(cosines))])
    result, scores, _ = verification(ids, feats, pairs, fars=(1e-2, 0.1, 0.2))
    np.testing.assert_allclose(scores, cosines)
    assert result["tar@far=0.1"] == pytest.approx(2 / 3) and result["tar@far=0.2"] == 1.0
    assert result["tar@far=0.01"] is None
    assert result["auc"] == pytest.approx((10 + 9 + 8) / 30)  # negatives below 0.9, 0.8, 0.3: 10, 9, 8


def test_identification_by_hand():
    """Gallery e1, e2, e3 (subjects 1, 2, 3). Mated probes: A (subject 1) = [0.9, 0.3, 0.1] rank 1; B (subject 2)
    = [0.6, 0.5, 0.1] rank 2 (e1 scores higher); C (subject 3) = [0.1, 0.1, 0.8] rank 1. Non-mated (subject 9):
    top scores 0.7 and 0.3. FPIR 0.5: floor(0.5 x 2) = 1 non-mated may pass, threshold = 2nd top score 0.3;
    mated rank-1 above it: A (0.9), C (0.8) -> TPIR 2/3. FPIR 0.1 needs 10 non-mated probes -> None."""
    gallery = np.eye(3)
    probes = np.array([[0.9, 0.3, 0.1], [0.6, 0.5, 0.1], [0.1, 0.1, 0.8], [0.7, 0.1, 0.1], [0.1, 0.2, 0.3]])
    result = identification(
        probes, np.array([1, 2, 3, 9, 9]), gallery, np.array([1, 2, 3]), ranks=(1, 2), fpirs=(0.1, 0.5)
    )
    assert (result["probes"], result["mated"]) == (5, 3)
    assert result["rank-1"] == pytest.approx(2 / 3) and result["rank-2"] == 1.0
    assert result["tpir@fpir=0.5"] == pytest.approx(2 / 3) and result["tpir@fpir=0.1"] is None


# ---------------------------------------------------------------- a synthetic set in the official layout


def write_synthetic_ijb(root):
    """4 subjects x 2 templates x 3 images from images_150 (loose_crop/<n>.jpg, the LFW landmarks, detector score
    0.5 + n / 100); each template: media A with two images (frames), media B with one. 1:1: all 28 template pairs.
    1:N: G1 = the first templates of subjects 0, 1; G2 = of subjects 2, 3; probes = the second templates.
    Returns {image name: (subject, template, media, LFW relpath)}."""
    table = lfw_landmarks()
    os.makedirs(os.path.join(root, "loose_crop"))
    os.makedirs(os.path.join(root, "meta"))
    images, points, tid_mid = {}, [], []
    for s, subject in enumerate(SUBJECTS):
        relpaths = sorted(p for p in table if p.startswith(subject + "/"))[:6]
        for k, relpath in enumerate(relpaths):
            n = len(images) + 1
            name = f"{n}.jpg"
            template, media = 10 * s + k // 3 + 1, 100 * s + (k // 3) * 10 + (0 if k % 3 < 2 else 1)
            shutil.copy(os.path.join(LFW_IMAGES, relpath), os.path.join(root, "loose_crop", name))
            images[name] = (s, template, media, relpath)
            coords = " ".join(f"{v:.2f}" for v in table[relpath].ravel())
            points.append(f"{name} {coords} {0.5 + n / 100:.2f}")
            tid_mid.append(f"{name} {template} {media}")
    with open(os.path.join(root, "meta", "ijbc_name_5pts_score.txt"), "w") as f:
        f.write("\n".join(points) + "\n")
    with open(os.path.join(root, "meta", "ijbc_face_tid_mid.txt"), "w") as f:
        f.write("\n".join(tid_mid) + "\n")
    templates = sorted({(t, s) for s, t, _, _ in images.values()})
    with open(os.path.join(root, "meta", "ijbc_template_pair_label.txt"), "w") as f:
        for i, (t1, s1) in enumerate(templates):
            for t2, s2 in templates[i + 1 :]:
                f.write(f"{t1} {t2} {int(s1 == s2)}\n")
    header = "TEMPLATE_ID,SUBJECT_ID,FILENAME\n"
    lists = {
        "1N_gallery_G1.csv": lambda s, t: s < 2 and t % 10 == 1,
        "1N_gallery_G2.csv": lambda s, t: s >= 2 and t % 10 == 1,
        "1N_probe_mixed.csv": lambda s, t: t % 10 == 2,
    }
    for file_name, keep in lists.items():
        rows = [f"{t},{s},{name}" for name, (s, t, _, _) in images.items() if keep(s, t)]
        with open(os.path.join(root, "meta", f"ijbc_{file_name}"), "w") as f:
            f.write(header + "\n".join(rows) + "\n")
    return images


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ijb") / "IJBC")
    return root, write_synthetic_ijb(root)


def reference_pooling(names, images, features):
    """Template features the plain way: per template, per media the mean, summed, normalised."""
    pooled = {}
    for t in sorted({v[1] for v in images.values()}):
        media = {}
        for i, name in enumerate(names):
            if images[name][1] == t:
                media.setdefault(images[name][2], []).append(features[i])
        total = sum(np.mean(m, axis=0) for m in media.values())
        pooled[t] = total / np.linalg.norm(total)
    return pooled


def test_meta_reads_the_official_layout(synthetic):
    root, images = synthetic
    meta = read_meta(root, "IJBC")
    assert meta.images == list(images) and len(meta.pairs) == 28 and meta.pairs[:, 2].sum() == 4
    assert meta.galleries["G1"][0].tolist() == [1, 11] and meta.galleries["G1"][1].tolist() == [0, 1]
    assert meta.probes[0].tolist() == [2, 12, 22, 32]
    np.testing.assert_allclose(meta.scores[:2], [0.51, 0.52])


def test_pipeline_with_a_tiny_network_matches_the_plain_computation(synthetic, tmp_path, capsys):
    root, images = synthetic
    net = build_backbone("sphere4", embedding_size=8, image_size=(32, 32), width=0.125)
    rng = np.random.default_rng(0)
    for param in net.trainable_params():
        param.set_data(ms.Tensor(rng.normal(0, 0.3, param.shape).astype(np.float32)))
    ms.save_checkpoint(net, str(tmp_path / "net.ckpt"))
    evaluate(
        load_config(
            TINY + [f"--ckpt_file={tmp_path / 'net.ckpt'}", f"--ijb={root}", f"--eval_output={tmp_path / 'ijb.json'}"]
        )
    )
    out = capsys.readouterr().out
    assert "IJBC 1:1 (28 pairs)" in out and "IJBC 1:N G1" in out and "IJBC 1:N mean" in out
    result = json.load(open(tmp_path / "ijb.json"))["models"][str(tmp_path / "net.ckpt")]
    assert result["templates"] == 8 and os.path.isfile(result["roc_png"])
    saved = np.load(tmp_path / "ijb_net_features.npz")
    names = saved["names"].tolist()
    scores = np.array([0.5 + (i + 1) / 100 for i in range(len(names))])
    pooled = reference_pooling(names, images, (saved["orig"] + saved["flip"]) * scores[:, None])
    pairs = np.loadtxt(os.path.join(root, "meta", "ijbc_template_pair_label.txt"), dtype=int)
    cosines = np.array([pooled[a] @ pooled[b] for a, b, _ in pairs])
    same = pairs[:, 2] == 1
    # 24 different pairs resolve FAR 1e-1 only: the best TAR with at most 2 different pairs above the threshold.
    threshold_candidates = np.sort(cosines)[::-1]
    best = max(np.mean(cosines[same] >= t) for t in threshold_candidates if np.sum(cosines[~same] >= t) <= 2)
    assert result["1:1"]["tar@far=0.1"] == pytest.approx(best)
    assert result["1:1"]["tar@far=0.01"] is None
    # 1:N G1: probes 2, 12 mated (subjects 0, 1), 22, 32 not.
    g1 = {1: 0, 11: 1}
    hits = 0
    for probe, subject in ((2, 0), (12, 1)):
        ranked = sorted(g1, key=lambda g: -(pooled[probe] @ pooled[g]))
        hits += g1[ranked[0]] == subject
    assert result["1:N"]["G1"]["rank-1"] == pytest.approx(hits / 2)
    assert result["1:N"]["G1"]["rank-5"] == 1.0
    assert result["1:N"]["G1"]["tpir@fpir=0.01"] is None  # 2 non-mated probes resolve no FPIR <= 0.1


def test_pipeline_on_hand_made_embeddings(synthetic, tmp_path, capsys):
    """Every image of subject s embeds as e_s (8-d) -- except Tony_Blair's second template, whose images embed as
    e_0 + 2 e_1 (it looks like Colin_Powell a little). Detector scores scale images, the per-media mean and the
    template sum keep directions, so templates are e_s or (e_0 + 2 e_1) / sqrt(5).
    1:1: same pairs score 1, 1, 1 and 2/sqrt(5) = 0.894 (Tony_Blair's two templates); different pairs 0, except
    Colin_Powell's two templates with Tony_Blair's second, 1/sqrt(5) = 0.447 each. 24 different pairs: at FAR
    0.1 (2 may pass) both 0.447 can pass: TAR 1. 1:N G1 (e_0, e_1): probe 12 (Tony_Blair) scores 0.447 / 0.894:
    rank 1; non-mated probes 22, 32 score 0 -> TPIR at FPIR 0.5 (asked below through the module) 1.
    G2 (e_2, e_3): probe 12 is non-mated with top score 0."""
    root, images = synthetic
    names = list(images)
    orig = np.zeros((len(names), 8))
    for i, name in enumerate(names):
        subject, template = images[name][:2]
        orig[i, subject] = 1.0
        if template == 12:
            orig[i, :2] = [1.0, 2.0]
    features = tmp_path / "hand.npz"
    np.savez(features, names=np.array(names), orig=orig, flip=orig)
    evaluate(
        load_config(
            TINY
            + [
                f"--ijb={root}",
                f"--ijb_features={features}",
                f"--eval_output={tmp_path / 'hand.json'}",
                "--eval_plots=false",
            ]
        )
    )
    result = json.load(open(tmp_path / "hand.json"))["models"][str(features)]
    assert result["1:1"]["tar@far=0.1"] == 1.0
    assert result["1:1"]["auc"] == pytest.approx(1.0)
    assert result["1:N"]["G1"]["rank-1"] == 1.0 and result["1:N"]["G2"]["rank-1"] == 1.0
    assert result["1:N"]["mean"]["rank-1"] == 1.0
    meta = read_meta(root, "IJBC")
    ids, feats = template_features(image_features(orig, orig, meta.scores), meta.templates, meta.medias)
    np.testing.assert_allclose(feats[list(ids).index(12)], np.array([1, 2, 0, 0, 0, 0, 0, 0]) / np.sqrt(5))
    _, scores, _ = verification(ids, feats, meta.pairs)
    blair = (meta.pairs[:, 0] == 11) & (meta.pairs[:, 1] == 12)
    assert scores[blair] == pytest.approx(2 / np.sqrt(5))
    assert sorted(scores[meta.pairs[:, 2] == 0])[-2:] == pytest.approx([1 / np.sqrt(5)] * 2)
    probe = feats[np.searchsorted(ids, [2, 12, 22, 32])]
    g1 = identification(
        probe, np.array([0, 1, 2, 3]), feats[np.searchsorted(ids, [1, 11])], np.array([0, 1]), fpirs=(0.5,)
    )
    assert g1["tpir@fpir=0.5"] == 1.0 and g1["rank-1"] == 1.0
    assert "IJBC 1:N mean rank-1: 100.00" in capsys.readouterr().out


# ---------------------------------------------------------------- bad input


def test_missing_meta_file_and_missing_image_are_named(synthetic, tmp_path):
    root, _ = synthetic
    broken = str(tmp_path / "IJBC")
    shutil.copytree(root, broken)
    os.remove(os.path.join(broken, "meta", "ijbc_template_pair_label.txt"))
    with pytest.raises(IJBFormatError, match="IJB protocol file not found: .*meta/ijbc_template_pair_label.txt"):
        read_meta(broken, "IJBC")
    with pytest.raises(IJBFormatError, match="IJB protocol file not found: .*meta/ijbb_name_5pts_score.txt"):
        read_meta(broken, "IJBB")
    os.remove(os.path.join(broken, "loose_crop", "5.jpg"))
    with pytest.raises(
        IJBFormatError,
        match=r"ijbc_face_tid_mid.txt:5: template 2 names image 5.jpg, which is "
        r"not in .*loose_crop",
    ):
        read_meta(broken, "IJBC", one_to_one=False)
    with open(os.path.join(root, "meta", "ijbc_template_pair_label.txt")) as f:
        lines = f.read()
    other = str(tmp_path / "other")
    shutil.copytree(root, other)
    with open(os.path.join(other, "meta", "ijbc_template_pair_label.txt"), "w") as f:
        f.write(lines + "1 99 0\n")
    with pytest.raises(IJBFormatError, match="ijbc_template_pair_label.txt: pair row 58 names template 99"):
        read_meta(other, "IJBC")


def test_ijbb_layout_is_read_with_its_own_names(synthetic, tmp_path):
    """IJB-B: files prefixed ijbb_, galleries S1 and S2."""
    root, _ = synthetic
    ijbb = tmp_path / "IJBB"
    shutil.copytree(root, ijbb)
    for name in os.listdir(ijbb / "meta"):
        new = name.replace("ijbc_", "ijbb_").replace("_G1.", "_S1.").replace("_G2.", "_S2.")
        os.rename(ijbb / "meta" / name, ijbb / "meta" / new)
    meta = read_meta(str(ijbb), "IJBB")
    assert sorted(meta.galleries) == ["S1", "S2"] and meta.galleries["S2"][1].tolist() == [2, 3]
    with pytest.raises(IJBFormatError, match="IJB protocol file not found: .*ijbc_name_5pts_score.txt"):
        read_meta(str(ijbb), "IJBC")
