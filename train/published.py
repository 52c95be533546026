"""The seed papers' published results, printed beside ours by ``python -m train eval`` (mean EPE in mm after
root alignment with the true scale; AUC of the 3D PCK over 20-50 mm where a paper gives it).

Spurr et al. (CVPR 2018) and Gu et al. (DCMLS) from DCMLS's Table 2 and text; Yang et al. (ICCV 2019) from
its state-of-the-art table and AUC figure. "2D -> 3D" lifts the dataset's true 2D keypoints, as
``train eval --data rhd`` does; "RGB -> 3D" starts from the image.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    method: str
    task: str  # "2D -> 3D" | "RGB -> 3D"
    epe_mean_mm: float
    auc_20_50: float | None = None


PUBLISHED: dict[str, list[Published]] = {
    "rhd": [
        Published("Spurr et al. 2018", "2D -> 3D", 17.14),
        Published("Gu et al. (DCMLS)", "2D -> 3D", 15.45),
        Published("Spurr et al. 2018", "RGB -> 3D", 19.73, 0.849),
        Published("Gu et al. (DCMLS)", "RGB -> 3D", 17.11, 0.887),
        Published("Yang et al. 2019", "RGB -> 3D", 13.14, 0.943),
    ],
    "stb": [
        Published("Spurr et al. 2018", "RGB -> 3D", 8.56),
        Published("Gu et al. (DCMLS)", "RGB -> 3D", 7.27),
        Published("Yang et al. 2019", "RGB -> 3D", 7.05),
    ],
}


def comparison_lines(data: str, ours_task: str, epe_mean_mm: float, auc_20_50: float) -> list[str]:
    """A small table: ours first, then each published figure for ``data`` (none for other datasets)."""
    rows = [("ours", ours_task, f"{epe_mean_mm:.2f}", f"{auc_20_50:.3f}")]
    rows += [(p.method, p.task, f"{p.epe_mean_mm:.2f}", "-" if p.auc_20_50 is None else f"{p.auc_20_50:.3f}")
             for p in PUBLISHED.get(data, [])]  # fmt: skip
    if len(rows) == 1:
        return []
    w = max(len(r[0]) for r in rows)
    out = [f"{'method':{w}s}  {'task':9s}  {'EPE mean mm':>11s}  {'AUC 20-50':>9s}"]
    out += [f"{a:{w}s}  {b:9s}  {c:>11s}  {d:>9s}" for a, b, c, d in rows]
    return out
