"""The SphereFace toy figure: 2-D or 3-D embeddings, normalised, drawn on the unit circle or sphere by class."""

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_features(features, labels, path, title, heldout=()):
    """Scatter ``features / ||features||`` (N x 2 or N x 3) coloured by label; ``heldout`` labels are drawn as
    crosses. Writes a PNG to ``path``."""
    features = np.asarray(features, np.float64)
    if features.shape[1] not in (2, 3):
        raise ValueError(f"feature plots need 2-D or 3-D embeddings, got {features.shape[1]}-D")
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    three_d = unit.shape[1] == 3
    figure = Figure(figsize=(6, 6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(projection="3d" if three_d else None)
    colours = matplotlib.colormaps["tab10"]
    if three_d:
        u, v = np.mgrid[0 : 2 * np.pi : 40j, 0 : np.pi : 20j]
        axes.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.85", linewidth=0.3)
    else:
        circle = np.linspace(0, 2 * np.pi, 200)
        axes.plot(np.cos(circle), np.sin(circle), color="0.8", linewidth=0.8)
        axes.set_aspect("equal")
    for label in sorted(set(int(v) for v in labels)):
        points = unit[np.asarray(labels) == label]
        marker = "x" if label in heldout else "o"
        name = f"{label} (held out)" if label in heldout else str(label)
        axes.scatter(*points.T, s=6, marker=marker, color=colours(label % 10), label=name)
    axes.set_title(title)
    axes.legend(loc="upper right", fontsize=7, markerscale=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
