"""The least-squares similarity transform (rotation, uniform scale, translation) between two point sets: Umeyama's
closed form ("Least-squares estimation of transformation parameters between two point patterns", PAMI 1991), as
``skimage.transform.SimilarityTransform`` estimates it, in NumPy alone (scikit-image's import costs a one-shot
inference call more than the estimate)."""

import numpy as np


def similarity_transform(src, dst):
    """3x3 homogeneous matrix of the similarity taking ``src`` (N x 2) onto ``dst`` in the least-squares sense, or
    None when the points do not determine one (all of ``src`` or ``dst`` on one point)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    dim = src.shape[1]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_demean, dst_demean = src - src_mean, dst - dst_mean
    covariance = dst_demean.T @ src_demean / len(src)  # Umeyama eq. (38)
    signs = np.ones(dim)
    if np.linalg.det(covariance) < 0:  # eq. (39)
        signs[-1] = -1
    u, singular, v = np.linalg.svd(covariance)
    rank = np.count_nonzero(singular > singular.max() * dim * np.finfo(float).eps)
    if rank == 0:
        return None
    matrix = np.eye(dim + 1)
    if rank == dim - 1 and np.linalg.det(u) * np.linalg.det(v) <= 0:  # eq. (40), (43)
        matrix[:dim, :dim] = u @ np.diag(np.r_[signs[:-1], -1.0]) @ v
    elif rank == dim - 1:
        matrix[:dim, :dim] = u @ v
    else:
        matrix[:dim, :dim] = u @ np.diag(signs) @ v
    scale = (singular @ signs) / src_demean.var(axis=0).sum()  # eq. (41), (42)
    matrix[:dim, dim] = dst_mean - scale * (matrix[:dim, :dim] @ src_mean)
    matrix[:dim, :dim] *= scale
    return matrix
