"""infer.py's three modes, printing their results: two photos compared, a folder embedded, queries searched in a
gallery."""

import logging
import os

import numpy as np

from src.deploy.sidecar_threshold import open_set_threshold
from src.infer.identify import FACE_ERRORS, face_crops, several_faces_note
from src.infer.inputs import landmark_lookup, list_images
from src.infer.progress_bar import ProgressBar

CHUNK = 256
NO_THRESHOLD = (
    "no same_threshold set: pass --same_threshold=T, the thd= eval.py prints for this model, to decide same/different"
)
LOG = logging.getLogger("facerec.infer")


def verdict(cosine, threshold):
    """``cosine=X same|different (threshold T)``, or ``cosine=X`` without a threshold."""
    if threshold is None:
        return f"cosine={cosine:.4f}"
    return f"cosine={cosine:.4f} {'same' if cosine > threshold else 'different'} (threshold {threshold:.4f})"


def describe_faces(path, faces):
    """``path: N faces, most central first: #1 box (x1, y1, x2, y2) score S, ...``"""
    listed = ", ".join(
        f"#{k} box ({', '.join(f'{v:.0f}' for v in face.box)}) score {face.score:.3f}"
        for k, face in enumerate(faces, 1)
    )
    return f"{path}: {len(faces)} faces, most central first: {listed}"


def compare(predictor, paths, lookup, threshold, all_faces):
    """Print the cosine of the two photos' faces (every pair with ``all_faces``); returns the first cosine."""
    if not predictor.detect:
        landmarks = [lookup(p) for p in paths] if lookup is not None else [None, None]
        cosine = predictor.similarity(paths[0], paths[1], landmarks[0], landmarks[1])
        print(verdict(cosine, threshold) + ("" if threshold is not None else f" ({NO_THRESHOLD})"), flush=True)
        return cosine
    (faces_a, aligned_a), (faces_b, aligned_b) = predictor.faces_of(paths)
    for path, faces in zip(paths, (faces_a, faces_b)):
        if len(faces) > 1:
            print(describe_faces(path, faces), flush=True)
    features = predictor.embed_prepared(np.concatenate([aligned_a, aligned_b]))  # one batch for both photos
    cosines = features[: len(faces_a)] @ features[len(faces_a) :].T
    if all_faces:
        for i, j in np.ndindex(cosines.shape):
            print(f"{paths[0]} #{i + 1} - {paths[1]} #{j + 1}: {verdict(float(cosines[i, j]), threshold)}", flush=True)
    else:
        crowded = len(faces_a) > 1 or len(faces_b) > 1
        print(
            verdict(float(cosines[0, 0]), threshold)
            + (" (the most central faces, #1; --all_faces compares every face)" if crowded else ""),
            flush=True,
        )
    if threshold is None:
        print(f"({NO_THRESHOLD})", flush=True)
    return float(cosines[0, 0])


def embed_folder(predictor, folder, out, lookup):
    """Embed every readable image under ``folder`` (its most central face when detecting); writes ``out`` (.npy)
    and its .txt list of paths."""
    paths = list_images(folder)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)  # before the work, not after it
    bar = ProgressBar(len(paths))
    features, kept, skipped, crowded = [], [], [], 0
    for start in range(0, len(paths), CHUNK):
        faces = []
        for path in paths[start : start + CHUNK]:
            try:
                aligned, found = face_crops(predictor, path, lookup)
            except FACE_ERRORS as err:
                LOG.warning("skipped %s", err)
                skipped.append(path)
                continue
            faces.append(aligned[0])
            kept.append(os.path.relpath(path, folder).replace(os.sep, "/"))
            crowded += len(found) > 1
        if faces:
            features.append(predictor.embed_prepared(np.stack(faces)))
        bar.update(min(start + CHUNK, len(paths)))
    if not features:
        raise FileNotFoundError(f"no image under {folder} could be embedded ({len(skipped)} skipped)")
    np.save(out, np.concatenate(features).astype(np.float32))
    names = os.path.splitext(out)[0] + ".txt"
    with open(names, "w", encoding="utf-8") as f:
        f.write("\n".join(kept) + "\n")
    several = f"; {several_faces_note(crowded, 'embedded')}" if crowded else ""
    print(f"{len(kept)} embeddings -> {out} (paths: {names}); {len(skipped)} images skipped{several}", flush=True)
    return kept, skipped


def search_threshold(predictor, args):
    """The 1:N threshold without --same_threshold: the open-set one (src/deploy/sidecar_threshold.py), else the
    verification one with a warning, else None; printed with where it comes from."""
    threshold, source = open_set_threshold(predictor.model_path, predictor.cfg.fusion, args.eval_json)
    if threshold is not None:
        print(f"open-set threshold {threshold:.4f}: {source} (--same_threshold overrides)", flush=True)
        return threshold
    if predictor.threshold is not None:
        LOG.warning(
            "open-set search has no calibrated threshold (%s): using the verification threshold %.4f (%s), which "
            "accepts people who are not in the gallery more often; evaluate the model on a set with at least "
            "1,000 different pairs (FAR 1e-3)",
            source,
            predictor.threshold,
            predictor.threshold_source,
        )
    return predictor.threshold


def search_gallery(predictor, args, threshold):
    """Enrol ``args.gallery`` (or read its cache), print the matches of every query face; returns the number of
    queries that gave no face."""
    gallery = predictor.enroll(args.gallery, cache=args.cache or True, landmarks=landmark_lookup(args, args.gallery))
    how = "read from its cache" if gallery.cached else "enrolled"
    print(
        f"gallery {args.gallery}: {len(gallery)} identities from {int(gallery.photos.sum())} photos {how}; "
        f"{len(gallery.skipped)} photos or folders skipped",
        flush=True,
    )
    if threshold is None:
        print(f"({NO_THRESHOLD}; every face gets its best match)", flush=True)
    failed = 0
    for result in predictor.search(
        args.query, gallery, args.top_k, landmark_lookup(args), args.min_face, args.min_score
    ):
        if result.error:
            print(f"{result.image} -> not searched: {result.error}", flush=True)
            failed += 1
            continue
        name = (
            result.image
            if result.faces == 1
            else f"{result.image} #{result.face + 1}/{result.faces} (box {', '.join(f'{v:.0f}' for v in result.box)})"
        )
        if result.skipped:
            print(f"{name} -> not searched: {result.skipped}", flush=True)
            continue
        best = result.matches[0]
        identity = result.identity(threshold)
        answer = (
            f"{identity} cosine={best.cosine:.4f}"
            if identity is not None
            else f"unknown (best {best.identity} cosine={best.cosine:.4f})"
        )
        score = "" if result.score is None else f" (detection score {result.score:.3f})"
        print(f"{name} -> {answer}{score}", flush=True)
        if args.top_k > 1:
            for rank, match in enumerate(result.matches, 1):
                print(f"    {rank}. {match.identity} cosine={match.cosine:.4f}", flush=True)
    return failed
