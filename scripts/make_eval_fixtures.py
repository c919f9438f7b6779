"""Writes the evaluation fixtures in tests/fixtures/eval_*.json from scikit-learn, scikit-image and scipy.

Run with Debian's Python (python3-sklearn, python3-skimage): /usr/bin/python3 scripts/make_eval_fixtures.py
Scores are float32 so that the TypeScript side reads exactly the same values.
"""
import json
import pathlib

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.metrics import structural_similarity
from sklearn.metrics import average_precision_score, roc_auc_score

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
LEATHER = FIXTURES / "mvtec-leather"
rng = np.random.default_rng(5)


def floats(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def score_case(name, scores, labels):
    scores = np.asarray(scores, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.uint8)
    return {
        "name": name,
        "scores": floats(scores),
        "labels": labels.tolist(),
        "rocAuc": roc_auc_score(labels, scores),
        "averagePrecision": average_precision_score(labels, scores),
    }


def score_cases():
    labels = rng.random(3000) < 0.1
    ties = np.round(rng.normal(labels * 0.8, 1.0) * 4) / 16  # few distinct values, many ties in both classes
    continuous = rng.normal(0.0, 1.0, 2000)
    continuous_labels = rng.random(2000) < 1 / (1 + np.exp(-2 * continuous))
    rare = rng.random(4000)
    rare_labels = np.zeros(4000, dtype=bool)
    rare_labels[[17, 2001, 3999]] = True
    constant = np.full(50, 0.25)
    return [
        score_case("ties", ties, labels),
        score_case("continuous", continuous, continuous_labels),
        score_case("three positives in 4000", rare, rare_labels),
        score_case("constant scores", constant, np.arange(50) % 7 == 0),
    ]


def pro_curve(residuals, truths, contents):
    """MVTec AD's compute_pro in float64: 8-connected regions, FPR over defect-free pixels, ties merged."""
    scores, fp_steps, pro_steps = [], [], []
    regions = 0
    ok_pixels = 0
    for residual, truth, content in zip(residuals, truths, contents):
        labelled, count = ndimage.label(truth & content, structure=np.ones((3, 3), dtype=int))
        sizes = np.bincount(labelled.ravel())
        keep = content.ravel()
        lab = labelled.ravel()[keep]
        scores.append(residual.ravel()[keep].astype(np.float64))
        fp_steps.append((lab == 0).astype(np.float64))
        pro_steps.append(np.where(lab > 0, 1.0 / sizes[lab], 0.0))
        regions += count
        ok_pixels += int((lab == 0).sum())
    scores, fp_steps, pro_steps = (np.concatenate(a) for a in (scores, fp_steps, pro_steps))
    order = np.argsort(scores, kind="stable")[::-1]
    scores = scores[order]
    fprs = np.cumsum(fp_steps[order]) / ok_pixels
    pros = np.cumsum(pro_steps[order]) / regions
    last_of_tie = np.append(np.diff(scores) != 0, True)
    fprs = np.minimum(fprs[last_of_tie], 1.0)
    pros = np.minimum(pros[last_of_tie], 1.0)
    return np.concatenate(([0.0], fprs, [1.0])), np.concatenate(([0.0], pros, [1.0]))


def area_to(x, y, x_max):
    """MVTec AD's trapezoid(x, y, x_max): the curve is interpolated linearly at x_max."""
    correction = 0.0
    if x_max not in x:
        i = np.searchsorted(x, x_max, side="right")
        y_at = y[i - 1] + (y[i] - y[i - 1]) * (x_max - x[i - 1]) / (x[i] - x[i - 1])
        correction = 0.5 * (y_at + y[i - 1]) * (x_max - x[i - 1])
    keep = x <= x_max
    x, y = x[keep], y[keep]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction)


def map_case(name, residuals, truths, contents):
    """Pixel and image metrics of a set of maps, content pixels only."""
    keep = np.concatenate([c.ravel() for c in contents])
    pixel_scores = np.concatenate([r.ravel() for r in residuals])[keep]
    pixel_labels = np.concatenate([t.ravel() for t in truths])[keep]
    image_scores = [r[c].max() for r, c in zip(residuals, contents)]
    image_labels = [bool((t & c).any()) for t, c in zip(truths, contents)]
    fprs, pros = pro_curve(residuals, truths, contents)
    return {
        "name": name,
        "maps": [
            {
                "width": int(r.shape[1]),
                "height": int(r.shape[0]),
                "residual": floats(r),
                "groundTruth": t.astype(np.uint8).ravel().tolist(),
                "content": c.astype(np.uint8).ravel().tolist(),
            }
            for r, t, c in zip(residuals, truths, contents)
        ],
        "pixelRocAuc": roc_auc_score(pixel_labels, pixel_scores),
        "averagePrecision": average_precision_score(pixel_labels, pixel_scores),
        # None where every image is defective (or none is): image ROC AUC is undefined then.
        "imageRocAuc": roc_auc_score(image_labels, image_scores) if len(set(image_labels)) == 2 else None,
        "aupro": area_to(fprs, pros, 0.3) / 0.3,
        "regions": int(sum(
            ndimage.label(t & c, structure=np.ones((3, 3), dtype=int))[1] for t, c in zip(truths, contents)
        )),
    }


def synthetic_maps():
    """Eight 24x24 maps, content = central 16x16; four images have no defect at all."""
    size, content = 24, np.zeros((24, 24), dtype=bool)
    content[4:20, 4:20] = True
    truths = [np.zeros((size, size), dtype=bool) for _ in range(8)]
    truths[4][10, 10] = True  # a one-pixel region
    truths[5][6:9, 6:9] = True
    truths[5][9, 9] = True  # touches the square only diagonally: the same 8-connected region
    truths[5][14:17, 12] = True  # a second region
    truths[6][2:7, 2:7] = True  # partly in the padding: only its content part counts
    truths[7][18:22, 15:17] = True
    residuals = []
    for truth in truths:
        noise = rng.random((size, size))
        residual = np.round((noise + 0.6 * truth) * 32) / 32  # quantised: ties across classes
        residual[~content] = 5.0  # padding would dominate every metric if it were counted
        residuals.append(residual.astype(np.float32))
    return map_case("synthetic 24x24, four defect-free images, tiny regions", residuals, truths, [content] * 8)


def real_mask_maps():
    """The vendored MVTec AD leather mask (1024x1024, two regions of glue).

    residual = ((7x + 13y) mod 101) / 100 + 0.3 * defect, rounded to float32; the test rebuilds it.
    """
    paths = ["ground_truth/glue/008_mask.png"]
    truths = [np.array(Image.open(LEATHER / p)) > 127 for p in paths]
    residuals = []
    for truth in truths:
        y, x = np.indices(truth.shape)
        residuals.append((((7 * x + 13 * y) % 101) / 100 + 0.3 * truth).astype(np.float32))
    case = map_case("MVTec AD leather glue mask", residuals, truths, [np.ones_like(t) for t in truths])
    for entry, path in zip(case["maps"], paths):  # the test reads the masks itself
        entry.update(mask=path, residual=None, groundTruth=None, content=None)
    return case


def ssim_case():
    """skimage SSIM map (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03) of a 2-channel 24x24 pair, cropped 5 px."""
    x = rng.random((2, 24, 24)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
    maps = [
        structural_similarity(
            x[c].astype(np.float64), y[c].astype(np.float64), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0, full=True,
        )[1][5:-5, 5:-5]
        for c in range(2)
    ]
    mean_ssim = structural_similarity(
        x.astype(np.float64), y.astype(np.float64), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, channel_axis=0,
    )
    return {
        "shape": [1, 2, 24, 24],
        "x": floats(x),
        "y": floats(y),
        "validSsim": [float(v) for v in np.ravel(maps)],
        "meanSsim": float(mean_ssim),
    }


def write(name, value):
    path = FIXTURES / name
    path.write_text(json.dumps(value, separators=(",", ":")))
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")


write("eval_scores.json", score_cases())
write("eval_maps.json", [synthetic_maps(), real_mask_maps()])
write("eval_ssim.json", ssim_case())
