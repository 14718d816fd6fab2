"""Regenerate the golden files for tests/preprocess (run from the repository root).

    python tests/data/reference/make_preprocess_reference.py

The values are computed here from the textbook definitions, written as explicit per-spectrum
and per-window loops with numpy only: no specsoil code and no scipy.signal, so the tests
compare the package against an independent computation.

Input: 5 real spectra of the bundled Geeves et al. set (rows 0, 90, 180, 270, 360), every
20 nm from 350 to 2490 nm, converted to absorbance log10(1/R).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "src/specsoil/data/datasets/geeves/geeves_visnir.csv.gz"
OUT = Path(__file__).resolve().parent
ROWS = [0, 90, 180, 270, 360]
WAVELENGTHS = list(range(350, 2500, 20))
# (window_length, polyorder, deriv) cases for Savitzky-Golay, edges in scipy's "interp" mode.
SAVGOL_CASES = [(11, 2, 0), (11, 2, 1), (7, 3, 2)]
DETREND_ORDER = 2


def load_input() -> tuple[np.ndarray, np.ndarray, list[str]]:
    table = pd.read_csv(SOURCE)
    reflectance = table.loc[ROWS, [str(w) for w in WAVELENGTHS]].to_numpy(dtype=float)
    absorbance = np.array([[math.log10(1.0 / r) for r in row] for row in reflectance])
    return absorbance, np.array(WAVELENGTHS, dtype=float), table.loc[ROWS, "sample_id"].tolist()


def snv(spectrum: np.ndarray) -> np.ndarray:
    """Barnes et al. (1989) eq. 1: (x - mean) / sqrt(sum((x - mean)^2) / (p - 1))."""
    p = len(spectrum)
    mean = sum(spectrum) / p
    sd = math.sqrt(sum((v - mean) ** 2 for v in spectrum) / (p - 1))
    return np.array([(v - mean) / sd for v in spectrum])


def savgol(spectrum: np.ndarray, window: int, order: int, deriv: int) -> np.ndarray:
    """Local least-squares polynomial per window; the edge windows are fitted once and
    evaluated at every edge point (what scipy calls mode="interp")."""
    p, half = len(spectrum), window // 2
    positions = np.arange(p, dtype=float)
    out = np.empty(p)
    for i in range(p):
        lo = min(max(i - half, 0), p - window)  # shift the window inwards at the edges
        x = positions[lo : lo + window]
        poly = np.poly1d(np.polyfit(x - positions[i], spectrum[lo : lo + window], order))
        out[i] = poly.deriv(deriv)(0.0) if deriv else poly(0.0)
    return out


def msc(spectra: np.ndarray) -> np.ndarray:
    """Geladi et al. (1985): regress each spectrum on the mean spectrum, (x - a) / b."""
    reference = spectra.mean(axis=0)
    rows = []
    for spectrum in spectra:
        b, a = np.polyfit(reference, spectrum, 1)
        rows.append((spectrum - a) / b)
    return np.array(rows)


def detrend(spectrum: np.ndarray, wavelengths: np.ndarray, order: int) -> np.ndarray:
    """Barnes et al. (1989): residuals from a polynomial in wavelength (in micrometres)."""
    micrometres = wavelengths / 1000.0
    poly = np.poly1d(np.polyfit(micrometres, spectrum, order))
    return spectrum - poly(micrometres)


def write(name: str, values: np.ndarray, wavelengths: np.ndarray, ids: list[str]) -> None:
    frame = pd.DataFrame(values, columns=[f"{w:g}" for w in wavelengths])
    frame.insert(0, "sample_id", ids)
    frame.to_csv(OUT / name, index=False, float_format="%.17g")


def main() -> None:
    absorbance, wavelengths, ids = load_input()
    write("preprocess_input.csv", absorbance, wavelengths, ids)
    write("preprocess_snv.csv", np.array([snv(s) for s in absorbance]), wavelengths, ids)
    for window, order, deriv in SAVGOL_CASES:
        values = np.array([savgol(s, window, order, deriv) for s in absorbance])
        write(f"preprocess_savgol_w{window}_p{order}_d{deriv}.csv", values, wavelengths, ids)
    write("preprocess_msc.csv", msc(absorbance), wavelengths, ids)
    values = np.array([detrend(s, wavelengths, DETREND_ORDER) for s in absorbance])
    write(f"preprocess_detrend_o{DETREND_ORDER}.csv", values, wavelengths, ids)


if __name__ == "__main__":
    main()
