"""Scan folders become sample tables: vendor files in, one absorbance row per sample out.

A lab's spectrometer writes one file per scan and scans each sample two to four times; the
lab values sit in a spreadsheet keyed by a sample code. :func:`read_scans` reads a file, a
folder (recursively), a glob or a ``.zip`` of scans with the registered readers, converts each
scan to absorbance, puts every scan on one wavelength grid, averages the replicates of each
sample, joins the lab sheet, and returns the table with a :class:`ScanReport` that lists what
was skipped, what did not match and which replicates stand out.

Rules, stated once:

- **Sample id.** By default the file name stem with the instrument's replicate counter
  removed: 3 to 5 digits after ``_``, ``-`` or ``.`` (SVC ``soil12_000``, Spectral Evolution
  ``soil12_00041``, ``soil12.0001``) or 5 digits right after a letter (ASD ``soil12a00003``).
  Anything else is kept whole. ``id_from_filename`` (a regex with one group, searched in the
  stem) replaces the rule. Files holding several spectra (ENVI libraries) use each spectrum's
  name.
- **Grid.** Scans on one grid are kept as they are. Otherwise every scan is interpolated
  linearly onto the coarsest grid among them, cut to the range all scans cover, so no scan is
  given detail it did not measure; scans that share no range are an error naming both files.
- **Absorbance.** Reflectance (fraction or %) and absorbance go through ``to_absorbance``;
  transmittance T becomes -log10(T) (the definition of absorbance for a transmission
  measurement). Radiance, DN, counts, Kubelka-Munk and unknown quantities are refused.
  Reflectance <= 0 at the ends of the range (noisy detector edges) trims those bands with a
  note; inside the range it is an error naming the file and wavelength.
- **Replicates.** Averaged in absorbance (mean or median). ``replicate_spread`` is the mean
  absolute deviation of the replicates from their median spectrum (absorbance units). A
  replicate is flagged when its own mean absolute deviation from that median has a modified
  z-score above 3.5 among all replicates read (Iglewicz and Hoaglin, 1993), which needs at
  least 5 replicates in samples of two or more.
"""

from __future__ import annotations

import glob
import io
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._kinds import to_absorbance
from specsoil.data._registry import get_scan_reader, read_head, reader_for
from specsoil.data._scans import RawSpectra
from specsoil.data._table import ID_COLUMNS, SpectraKind, SpectraTable

logger = logging.getLogger(__name__)

ReplicateRule = Literal["mean", "median", "none"]
REPLICATE_RULES: tuple[ReplicateRule, ...] = ("mean", "median", "none")

# Default sample id: the stem less the instrument's replicate counter.
_COUNTER_AFTER_SEPARATOR = re.compile(r"^(?P<id>.+?)[._-]\d{3,5}$")
_COUNTER_AFTER_LETTER = re.compile(r"^(?P<id>.*[^\W\d_])\d{5}$")
# Zip archives: bounds on what is expanded, so a small archive cannot fill memory or disk.
MAX_ZIP_MEMBER_BYTES = 64 << 20
MAX_ZIP_TOTAL_BYTES = 1 << 30
MAX_ZIP_MEMBERS = 100_000
# Bands with reflectance <= 0 may be trimmed only within this fraction of either end.
_EDGE_FRACTION = 0.05
# Modified z-score above which a replicate is flagged, and replicates needed to judge.
OUTLIER_Z = 3.5
MIN_REPLICATES_TO_JUDGE = 5
_TO_ABSORBANCE: dict[str, SpectraKind] = {
    "reflectance": "reflectance",
    "reflectance-percent": "reflectance-percent",
    "absorbance": "absorbance",
}
_WHAT_IS_NEEDED = (
    "reflectance (0-1 or %), absorbance or transmittance; export reflectance from the "
    "instrument software (with its white reference) and read that"
)


# A note repeated in more files than this is shown once, with the count.
_NOTE_REPEATS_SHOWN = 2


def _grouped_notes(notes: tuple[str, ...]) -> list[str]:
    """``file: note`` lines, a note that many files share shown once with their count."""
    files_by_note: dict[str, list[str]] = {}
    for line in notes:
        file, separator, note = line.partition(": ")
        key = note if separator else line
        files_by_note.setdefault(key, []).append(file if separator else "")
    out = []
    for note, files in files_by_note.items():
        if len(files) > _NOTE_REPEATS_SHOWN:
            out.append(f"{len(files)} files ({files[0]}, {files[1]}, ...): {note}")
        else:
            out += [f"{file}: {note}" if file else note for file in files]
    return out


@dataclass(frozen=True)
class ScanReport:
    """What a scan read did, for the user.

    Attributes:
        source: What was read (folder, glob, zip or file).
        files_read: Scan files read, in order.
        files_skipped: (file, reason) for files no reader recognised.
        notes: ``file: note`` lines from the readers and the conversion.
        grid: One sentence on the wavelength grid.
        replicate_outliers: (sample id, file, modified z-score) of flagged replicates.
        samples_without_lab: Sample ids with no row in the lab sheet.
        lab_rows_without_scans: (sheet row, id) of lab rows no scan matched.
        warnings: Other things the user should check.
    """

    source: str
    files_read: tuple[str, ...]
    files_skipped: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    grid: str = ""
    replicate_outliers: tuple[tuple[str, str, float], ...] = ()
    samples_without_lab: tuple[str, ...] = ()
    lab_rows_without_scans: tuple[tuple[int, str], ...] = ()
    warnings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The report as lines to print: what was read, then :meth:`problems`."""
        out = [f"{self.source}: {len(self.files_read)} scan files read; {self.grid}"]
        out += [f"skipped {name}: {reason}" for name, reason in self.files_skipped]
        return out + _grouped_notes(self.notes) + self.problems()

    def problems(self) -> list[str]:
        """Lines the user must see: odd replicates and unmatched samples, listed in full."""
        out = list(self.warnings)
        out += [
            f"replicate far from its siblings: sample {sample!r}, {name} (modified z {z:.1f})"
            for sample, name, z in self.replicate_outliers
        ]
        if self.samples_without_lab:
            out.append(
                f"{len(self.samples_without_lab)} samples have no lab values: "
                + ", ".join(self.samples_without_lab)
            )
        if self.lab_rows_without_scans:
            out.append(
                f"{len(self.lab_rows_without_scans)} lab rows have no scans: "
                + ", ".join(f"row {row} ({ident})" for row, ident in self.lab_rows_without_scans)
            )
        return out


@dataclass(frozen=True)
class ScanTable:
    """A sample table made from scan files, with the report of how it was made."""

    table: SpectraTable
    report: ScanReport


@dataclass
class _Scan:
    """One spectrum in absorbance on its own ascending nm grid."""

    file: str
    sample_id: str
    wavelengths: NDArray[np.float64]
    absorbance: NDArray[np.float64]
    kind: str
    metadata: dict[str, object]
    notes: list[str] = field(default_factory=list)


def default_sample_id(stem: str) -> str:
    """The file name stem without the instrument's replicate counter (see the module doc)."""
    for pattern in (_COUNTER_AFTER_SEPARATOR, _COUNTER_AFTER_LETTER):
        match = pattern.match(stem)
        if match:
            return match["id"]
    return stem


def _stem(name: str) -> str:
    """A file name without its format suffix (``soil.0000.sig`` -> ``soil.0000``)."""
    return name.rsplit("/", 1)[-1].rsplit(".", 1)[0] if "." in name else name.rsplit("/", 1)[-1]


def _sample_id(name: str, pattern: re.Pattern[str] | None) -> str:
    stem = _stem(name)
    if pattern is None:
        return default_sample_id(stem)
    match = pattern.search(stem)
    if match is None:
        raise SpecsoilError(
            f"{name}: --id-from-filename {pattern.pattern!r} does not match the name {stem!r}"
        )
    return match[1]


def _compile_id_pattern(text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        pattern = re.compile(text)
    except re.error as error:
        raise SpecsoilError(f"--id-from-filename {text!r} is not a valid regex: {error}") from None
    if pattern.groups != 1:
        raise SpecsoilError(
            f"--id-from-filename {text!r} has {pattern.groups} groups; expected exactly one "
            "group around the sample id, e.g. '^(.+)_\\d+$'"
        )
    return pattern


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def _candidate_files(source: str) -> tuple[list[Path], str]:
    """The files a folder, glob or single file stands for, sorted, hidden files left out."""
    path = Path(source)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        return files, "folder"
    if path.is_file():
        return [path], "file"
    if _is_glob(source):
        return sorted(
            Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file()
        ), "glob"
    raise SpecsoilError(f"{source}: no such file, folder or matching glob")


def _read_member_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """A member's bytes, read in bounded pieces so a lying header cannot exhaust memory."""
    limit = min(MAX_ZIP_MEMBER_BYTES, budget)
    buffer = io.BytesIO()
    with archive.open(info) as stream:
        while True:
            piece = stream.read(1 << 20)
            if not piece:
                break
            buffer.write(piece)
            if buffer.tell() > limit:
                raise SpecsoilError(
                    f"{archive.filename}:{info.filename}: expands beyond {limit} bytes; scans "
                    f"are far smaller (limits: {MAX_ZIP_MEMBER_BYTES} bytes a member, "
                    f"{MAX_ZIP_TOTAL_BYTES} in all)"
                )
    return buffer.getvalue()


def _zip_scans(
    path: Path, format_name: str | None, skipped: list[tuple[str, str]]
) -> Iterator[RawSpectra]:
    """Read the scans in a zip archive; member names are never used as paths."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise SpecsoilError(f"{path}: not a readable zip archive ({error})") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise SpecsoilError(
                f"{path}: {len(members)} members; at most {MAX_ZIP_MEMBERS} are read"
            )
        budget = MAX_ZIP_TOTAL_BYTES
        for info in sorted(members, key=lambda m: m.filename):
            display = f"{path}:{info.filename}"
            base = info.filename.rsplit("/", 1)[-1]
            if not base or base.startswith(".") or "__MACOSX" in info.filename:
                continue
            try:
                data = _read_member_bytes(archive, info, budget)
            except (zipfile.BadZipFile, OSError, RuntimeError) as error:
                raise SpecsoilError(f"{display}: cannot expand ({error})") from None
            budget -= len(data)
            # The temporary file keeps only the member's suffix, which readers may look at.
            suffix = "".join(c for c in Path(base).suffix if c.isalnum() or c == ".")[:16]
            with tempfile.TemporaryDirectory(prefix="specsoil-zip-") as folder:
                temporary = Path(folder) / f"scan{suffix}"
                temporary.write_bytes(data)
                # A library's header travels with it (ENVI .sli + .hdr).
                if suffix.lower() == ".sli":
                    header = info.filename[: -len(suffix)] + ".hdr"
                    if header in archive.namelist():
                        header_bytes = _read_member_bytes(archive, archive.getinfo(header), budget)
                        budget -= len(header_bytes)
                        (Path(folder) / "scan.hdr").write_bytes(header_bytes)
                raw = _read_one(temporary, format_name, display, skipped)
                if raw is not None:
                    yield _renamed(raw, str(temporary), display)


def _renamed(raw: RawSpectra, old: str, new: str) -> RawSpectra:
    metadata = raw.metadata.copy()
    metadata["source_file"] = new
    return replace(
        raw,
        source=new,
        metadata=metadata,
        notes=tuple(note.replace(old, new) for note in raw.notes),
    )


def _read_one(
    path: Path, format_name: str | None, display: str, skipped: list[tuple[str, str]]
) -> RawSpectra | None:
    """Read one file with its reader; an unrecognised file is listed as skipped."""
    try:
        if format_name is not None:
            reader = get_scan_reader(format_name)
        else:
            head = read_head(path)
            found = reader_for(path, head)
            if found is None:
                reason = (
                    "an ENVI header (read with its .sli library)"
                    if path.suffix.lower() == ".hdr" and head.startswith(b"ENVI")
                    else "not a scan file any reader recognises"
                )
                skipped.append((display, reason))
                return None
            reader = found
        return reader.read(path)
    except SpecsoilError as error:
        raise SpecsoilError(str(error).replace(str(path), display)) from None


def _edge_trim(
    wavelengths: NDArray[np.float64], lowest: NDArray[np.float64], source: str, kind: str
) -> tuple[int, int, list[str]]:
    """The band range to keep when values <= 0 sit only at the range ends (noisy edges).

    Args:
        wavelengths: Ascending nm.
        lowest: The smallest value of each band.
        source: The file, for messages.
        kind: The quantity, for messages.

    Returns:
        First and one-past-last band to keep, and a note when bands were dropped.

    Raises:
        SpecsoilError: If a value <= 0 lies inside the range, naming file and wavelength.
    """
    n = wavelengths.size
    bad = ~(lowest > 0)
    if not bad.any():
        return 0, n, []
    edge = max(1, int(np.ceil(_EDGE_FRACTION * n)))
    inner = np.flatnonzero(bad[edge : n - edge]) + edge
    if inner.size:
        at = int(inner[0])
        raise SpecsoilError(
            f"{source}: {kind} is {lowest[at]:g} at {wavelengths[at]:g} nm; absorbance "
            "log10(1/R) needs values > 0 (only bands in the outer 5 % of the range are "
            "trimmed)"
        )
    low = int(np.max(np.flatnonzero(bad[:edge]), initial=-1)) + 1
    high = n - edge + int(np.min(np.flatnonzero(bad[n - edge :]), initial=edge))
    note = (
        f"{source}: {int(bad.sum())} bands with {kind} <= 0 at the range ends left out; kept "
        f"{wavelengths[low]:g}-{wavelengths[high - 1]:g} nm"
    )
    return low, high, [note]


def scan_to_absorbance(
    raw: RawSpectra,
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
    """One file's spectra as absorbance on an ascending nm axis.

    A one-spectrum file loses bands without a value and, at the range ends only, bands with
    reflectance or transmittance <= 0 (noted). In a file of several spectra (a library), a
    spectrum with such values becomes a row of NaN for the caller to leave out.

    Args:
        raw: The file as read.

    Returns:
        Wavelengths (nm, ascending), absorbance (n_spectra, n_wavelengths) and notes.

    Raises:
        SpecsoilError: If the file holds a quantity that cannot become absorbance, its axis
            has no wavelength, or a one-spectrum file has a value <= 0 inside its range;
            the message names the file and says what is needed.
    """
    if raw.kind not in (*_TO_ABSORBANCE, "transmittance", "transmittance-percent"):
        raise SpecsoilError(
            f"{raw.source}: holds {raw.kind}, which cannot become absorbance; needed: "
            f"{_WHAT_IS_NEEDED}"
        )
    wavelengths = raw.wavelengths_nm()
    order = np.argsort(wavelengths, kind="stable")
    wavelengths, values = wavelengths[order], raw.values[:, order]
    if np.any(np.diff(wavelengths) <= 0):
        raise SpecsoilError(f"{raw.source}: a wavelength repeats; expected one value per band")
    notes: list[str] = []
    positive = raw.kind != "absorbance"
    if values.shape[0] == 1:
        finite = np.isfinite(values[0])
        if not finite.all():
            wavelengths, values = wavelengths[finite], values[:, finite]
            notes.append(f"{raw.source}: {int((~finite).sum())} bands without a value left out")
        if positive:
            low, high, trim_notes = _edge_trim(wavelengths, values[0], raw.source, raw.kind)
            wavelengths, values = wavelengths[low:high], values[:, low:high]
            notes += trim_notes
    usable = np.isfinite(values).all(axis=1)
    if positive:
        usable &= (values > 0).all(axis=1)
    absorbance = np.full(values.shape, np.nan)
    if usable.any():
        rows = values[usable]
        if raw.kind in _TO_ABSORBANCE:
            absorbance[usable] = to_absorbance(rows, _TO_ABSORBANCE[raw.kind])
        elif raw.kind == "transmittance":
            absorbance[usable] = -np.log10(rows)
        else:
            absorbance[usable] = 2.0 - np.log10(rows)
    return wavelengths, absorbance, notes


def _raw_spectra(
    source: str, format_name: str | None, skipped: list[tuple[str, str]]
) -> Iterator[RawSpectra]:
    """Every scan file that ``source`` stands for, read as stored."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".zip":
        yield from _zip_scans(path, format_name, skipped)
        return
    files, mode = _candidate_files(source)
    for file in files:
        if file.suffix.lower() == ".zip":
            yield from _zip_scans(file, format_name, skipped)
            continue
        raw = _read_one(file, format_name, str(file), skipped)
        if raw is None and mode == "file":
            raise SpecsoilError(f"{file}: {skipped[-1][1]}; formats read: see 'specsoil formats'")
        if raw is not None:
            yield raw


def _scans_of(raw: RawSpectra, pattern: re.Pattern[str] | None, notes: list[str]) -> list[_Scan]:
    """The absorbance scans of one file, each with its sample id and metadata."""
    wavelengths, absorbance, conversion_notes = scan_to_absorbance(raw)
    notes += [f"{raw.source}: {note}" for note in raw.notes] + conversion_notes
    records: list[dict[str, object]] = [
        {str(key): value for key, value in record.items()}
        for record in raw.metadata.to_dict(orient="records")
    ]
    usable = np.asarray(np.isfinite(absorbance).all(axis=1), dtype=bool)
    error_bars = np.array([r.get("record_type") == "error-bars" for r in records], dtype=bool)
    if error_bars.any():
        notes.append(
            f"{raw.source}: {int(error_bars.sum())} error-bar records left out (not spectra)"
        )
    if raw.n_spectra == 1:
        if not usable[0]:
            raise SpecsoilError(f"{raw.source}: the spectrum has no usable values")
        ids = [_sample_id(raw.source, pattern)]
    else:
        ids = [str(record.get("spectrum_name") or i + 1) for i, record in enumerate(records)]
        if not usable[~error_bars].all():
            left_out = [ids[i] for i in np.flatnonzero(~usable & ~error_bars)]
            notes.append(
                f"{raw.source}: {len(left_out)} of {int((~error_bars).sum())} spectra with "
                f"missing or non-positive values left out: {', '.join(left_out)}"
            )
        usable &= ~error_bars
    return [
        _Scan(
            file=raw.source,
            sample_id=ids[i],
            wavelengths=wavelengths,
            absorbance=absorbance[i],
            kind=raw.kind,
            metadata={**records[i], "scan_kind": raw.kind},
        )
        for i in np.flatnonzero(usable)
    ]


def _common_grid(scans: list[_Scan]) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """All scans on one grid: (wavelengths, absorbance (n_scans, n_wavelengths), sentence)."""
    first = scans[0].wavelengths
    if all(
        s.wavelengths.shape == first.shape and np.allclose(s.wavelengths, first, rtol=0, atol=1e-6)
        for s in scans
    ):
        X = np.vstack([s.absorbance for s in scans])
        return first, X, f"one grid, {first.size} bands {first[0]:g}-{first[-1]:g} nm"
    starts = np.array([s.wavelengths[0] for s in scans])
    ends = np.array([s.wavelengths[-1] for s in scans])
    low, high = float(starts.max()), float(ends.min())
    late, early = scans[int(starts.argmax())], scans[int(ends.argmin())]
    inside = [
        s.wavelengths[(s.wavelengths >= low - 1e-9) & (s.wavelengths <= high + 1e-9)] for s in scans
    ]
    coarsest = int(np.argmin([grid.size for grid in inside]))
    target = inside[coarsest]
    if not high > low or target.size < 2:
        raise SpecsoilError(
            f"scans on grids too different to combine: {late.file} covers "
            f"{late.wavelengths[0]:g}-{late.wavelengths[-1]:g} nm and {early.file} covers "
            f"{early.wavelengths[0]:g}-{early.wavelengths[-1]:g} nm, with no common range"
        )
    X = np.vstack([np.interp(target, s.wavelengths, s.absorbance) for s in scans])
    n_grids = len({(s.wavelengths.size, float(s.wavelengths[0])) for s in scans})
    sentence = (
        f"{n_grids} different grids: every scan interpolated linearly onto the coarsest "
        f"({scans[coarsest].file}, {target.size} bands) within {target[0]:g}-"
        f"{target[-1]:g} nm, the range all scans cover"
    )
    return target, X, sentence


def _modified_z(deviations: NDArray[np.float64]) -> NDArray[np.float64]:
    """Iglewicz-Hoaglin modified z-scores; with a zero MAD any deviation above the median is inf."""
    centre = float(np.median(deviations))
    mad = float(np.median(np.abs(deviations - centre)))
    if mad > 0:
        return 0.6745 * (deviations - centre) / mad
    return np.where(deviations > centre + 1e-12, np.inf, 0.0)


def _present(value: object) -> bool:
    """False for None and NaN (a missing value in a metadata column)."""
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _combine_metadata(records: list[dict[str, object]]) -> dict[str, object]:
    """One row for a sample's replicates: equal values kept, differing text joined by '; '."""
    out: dict[str, object] = {}
    for key in records[0]:
        values = [r[key] for r in records if _present(r.get(key))]
        if not values:
            out[key] = None
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = float(np.mean(np.asarray(values, dtype=np.float64)))
        else:
            out[key] = "; ".join(dict.fromkeys(str(v) for v in values))
    return out


def _replicates(
    scans: list[_Scan], X: NDArray[np.float64], rule: ReplicateRule
) -> tuple[NDArray[np.float64], list[dict[str, object]], list[tuple[str, str, float]]]:
    """Average (or keep) replicates; returns the rows, their metadata and the flagged ones."""
    groups: dict[str, list[int]] = {}
    for index, scan in enumerate(scans):
        groups.setdefault(scan.sample_id, []).append(index)
    deviation = np.full(len(scans), np.nan)
    spread: dict[str, float] = {}
    for sample, members in groups.items():
        if len(members) > 1:
            block = X[members]
            deviation[members] = np.mean(np.abs(block - np.median(block, axis=0)), axis=1)
            spread[sample] = float(np.mean(deviation[members]))
        else:
            spread[sample] = float("nan")
    judged = np.flatnonzero(np.isfinite(deviation))
    z = np.zeros(len(scans))
    if judged.size >= MIN_REPLICATES_TO_JUDGE:
        z[judged] = _modified_z(deviation[judged])
    flagged = z > OUTLIER_Z
    outliers = [(scans[i].sample_id, scans[i].file, float(z[i])) for i in np.flatnonzero(flagged)]
    rows: list[NDArray[np.float64]] = []
    metadata: list[dict[str, object]] = []
    for sample, members in groups.items():
        common = {
            "sample_id": sample,
            "n_replicates": len(members),
            "replicate_spread": spread[sample],
        }
        if rule == "none":
            for number, index in enumerate(members, start=1):
                rows.append(X[index])
                metadata.append(
                    {
                        **common,
                        "replicate": number,
                        "replicate_outlier": bool(flagged[index]),
                        **scans[index].metadata,
                    }
                )
            continue
        block = X[members]
        rows.append(block.mean(axis=0) if rule == "mean" else np.median(block, axis=0))
        metadata.append(
            {
                **common,
                "replicate_outliers": int(flagged[members].sum()),
                **_combine_metadata([scans[i].metadata for i in members]),
            }
        )
    return np.vstack(rows), metadata, outliers


def _id_text(value: object) -> str:
    """A sample id as text: Excel's 101453.0 is the id 101453."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_lab_sheet(path: str | os.PathLike[str], id_column: str | None) -> tuple[pd.DataFrame, str]:
    """A lab sheet (CSV or Excel ``.xlsx``) with its ids as text in column ``sample_id``.

    Args:
        path: The sheet; the first worksheet of a workbook is read.
        id_column: The column of sample ids; by default the first of ``sample_id``,
            ``SampleID``, ``ID``, ``id``, ``POINT_ID``, ``Point_ID`` present.

    Returns:
        The sheet (one row per sample, a ``sheet_row`` column with the 1-based row number
        counting the header as row 1) and the id column used.

    Raises:
        SpecsoilError: If the sheet cannot be read, has no id column, an empty id, or an id
            on more than one row (naming the rows).
    """
    file = Path(path)
    if not file.is_file():
        raise SpecsoilError(f"{file}: no such lab sheet")
    try:
        if file.suffix.lower() in (".xlsx", ".xlsm"):
            sheet = pd.read_excel(file, sheet_name=0, engine="openpyxl")
        else:
            sheet = pd.read_csv(file, sep=None, engine="python", encoding="utf-8-sig")
    except ImportError as error:
        raise SpecsoilError(f"{file}: reading Excel needs openpyxl ({error})") from None
    except (ValueError, OSError, UnicodeDecodeError, zipfile.BadZipFile, KeyError) as error:
        raise SpecsoilError(f"{file}: cannot read the lab sheet ({error})") from None
    sheet.columns = [str(c).strip() for c in sheet.columns]
    if id_column is None:
        id_column = next((c for c in ID_COLUMNS if c in sheet.columns), None)
        if id_column is None:
            raise SpecsoilError(
                f"{file}: say which column holds the sample ids with --id-column; "
                f"columns: {list(sheet.columns)}"
            )
    if id_column not in sheet.columns:
        raise SpecsoilError(f"{file}: no column {id_column!r}; columns: {list(sheet.columns)}")
    rows = np.arange(2, len(sheet) + 2)
    empty = sheet[id_column].isna() | (sheet[id_column].astype(str).str.strip() == "")
    if empty.any():
        raise SpecsoilError(
            f"{file}: row {int(rows[empty.to_numpy()][0])} has no {id_column!r}; every lab row "
            "needs a sample id"
        )
    ids = sheet[id_column].map(_id_text)
    repeated = ids[ids.duplicated(keep=False)]
    if not repeated.empty:
        listed = "; ".join(
            f"{ident!r} on rows {', '.join(str(int(rows[i])) for i in group.index)}"
            for ident, group in repeated.groupby(repeated, sort=True)
        )
        raise SpecsoilError(f"{file}: sample ids repeat in column {id_column!r}: {listed}")
    lab = sheet.drop(columns=[id_column]).assign(sample_id=ids.to_numpy(), sheet_row=rows)
    return lab, id_column


def _join_lab(
    metadata: pd.DataFrame, lab_path: str | os.PathLike[str], id_column: str | None
) -> tuple[pd.DataFrame, tuple[str, ...], tuple[tuple[int, str], ...]]:
    lab, _ = read_lab_sheet(lab_path, id_column)
    clash = sorted((set(lab.columns) - {"sample_id", "sheet_row"}) & set(metadata.columns))
    if clash:
        raise SpecsoilError(
            f"{lab_path}: lab column {clash[0]!r} has the name of a scan metadata column; "
            "rename it in the sheet"
        )
    known = set(lab["sample_id"])
    scanned = set(metadata["sample_id"].astype(str))
    without_lab = tuple(dict.fromkeys(i for i in metadata["sample_id"] if i not in known))
    without_scans = tuple(
        (int(row), ident)
        for row, ident in zip(lab["sheet_row"], lab["sample_id"], strict=True)
        if ident not in scanned
    )
    joined = metadata.merge(lab.drop(columns=["sheet_row"]), on="sample_id", how="left")
    return joined, without_lab, without_scans


def read_scans(
    source: str | os.PathLike[str],
    *,
    lab: str | os.PathLike[str] | None = None,
    id_column: str | None = None,
    id_from_filename: str | None = None,
    replicates: ReplicateRule = "mean",
    format: str | None = None,
) -> ScanTable:
    """Read scan files into a sample table of absorbance, joined with lab values.

    See the module docstring for the sample-id, grid, absorbance and replicate rules.

    Args:
        source: A scan file, a folder (read recursively), a glob (``scans/**/*.sed``) or a
            ``.zip`` of scans.
        lab: A CSV or ``.xlsx`` lab sheet to join by sample id.
        id_column: The lab sheet's column of sample ids.
        id_from_filename: A regex with one group that picks the sample id out of the file
            name stem, instead of the default rule.
        replicates: ``"mean"`` or ``"median"`` of each sample's replicates, or ``"none"`` to
            keep every scan as a row.
        format: Read every file with this reader instead of sniffing each one.

    Returns:
        The table (``X`` float32 absorbance, ascending nm) and the report. Metadata columns
        include ``sample_id``, ``n_replicates``, ``replicate_spread``, ``source_file``,
        ``instrument``, ``serial_number``, ``acquired`` and the lab columns. Samples without lab
        values stay in the table (lab columns empty) and are listed in the report.

    Raises:
        SpecsoilError: If nothing readable is found, a file is malformed or holds a quantity
            that cannot become absorbance, grids share no range, or the lab sheet is unusable.
    """
    if replicates not in REPLICATE_RULES:
        raise SpecsoilError(
            f"replicates must be one of {list(REPLICATE_RULES)}; got {replicates!r}"
        )
    pattern = _compile_id_pattern(id_from_filename)
    text = os.fspath(source)
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    scans: list[_Scan] = []
    files: list[str] = []
    for raw in _raw_spectra(text, format, skipped):
        files.append(raw.source)
        scans += _scans_of(raw, pattern, notes)
    if not scans:
        looked = ", ".join(name for name, _ in skipped[:10]) or "none"
        raise SpecsoilError(
            f"{text}: no readable scans ({len(skipped)} files looked at: {looked}); "
            "see 'specsoil formats' for the formats read"
        )
    families = {"transmittance" if s.kind.startswith("transmittance") else "other" for s in scans}
    if len(families) > 1:
        first_t = next(s for s in scans if s.kind.startswith("transmittance"))
        first_r = next(s for s in scans if not s.kind.startswith("transmittance"))
        raise SpecsoilError(
            f"{text}: transmittance ({first_t.file}) and reflectance-type scans "
            f"({first_r.file}) cannot share a table; read them separately"
        )
    warnings = []
    samples = {scan.sample_id for scan in scans}
    if len(samples) == 1 and len(scans) > 2 and replicates != "none":
        warnings.append(
            f"all {len(scans)} scans became one sample {next(iter(samples))!r}; if the file "
            "names do not start with the sample id, use --id-from-filename"
        )
    wavelengths, X, grid = _common_grid(scans)
    rows, records, outliers = _replicates(scans, X, replicates)
    metadata = pd.DataFrame(records)
    without_lab: tuple[str, ...] = ()
    without_scans: tuple[tuple[int, str], ...] = ()
    if lab is not None:
        metadata, without_lab, without_scans = _join_lab(metadata, lab, id_column)
    elif id_column is not None:
        raise SpecsoilError("--id-column needs --lab: it names the lab sheet's id column")
    kinds = sorted({s.kind for s in scans})
    declared: SpectraKind = "absorbance"
    if len(kinds) == 1 and kinds[0] in _TO_ABSORBANCE:
        declared = _TO_ABSORBANCE[kinds[0]]
    table = SpectraTable(
        X=np.ascontiguousarray(rows, dtype=np.float32),
        wavelengths=np.ascontiguousarray(wavelengths, dtype=np.float64),
        metadata=metadata.reset_index(drop=True),
        source=text,
        spectra_kind=declared,
        kind_detected=False,
        kind_reason=f"scan files hold {', '.join(kinds)} (as their formats record)",
    )
    report = ScanReport(
        source=text,
        files_read=tuple(files),
        files_skipped=tuple(skipped),
        notes=tuple(notes),
        grid=grid,
        replicate_outliers=tuple(outliers),
        samples_without_lab=without_lab,
        lab_rows_without_scans=without_scans,
        warnings=tuple(warnings),
    )
    return ScanTable(table=table, report=report)


def is_scan_source(data: str | os.PathLike[str]) -> bool:
    """True when ``data`` is a folder, a glob, a zip or a file a vendor reader recognises.

    CSV and Parquet tables (anything no vendor reader claims) are False: they go to
    ``read_spectra``.
    """
    text = os.fspath(data)
    path = Path(text)
    if path.is_dir():
        return True
    if path.is_file():
        if path.suffix.lower() == ".zip":
            return True
        return reader_for(path) is not None
    return _is_glob(text) and bool(glob.glob(text, recursive=True))


def log_scan_report(report: ScanReport) -> None:
    """Log what a scan read did; odd replicates and unmatched samples as warnings."""
    problems = report.problems()
    lines = report.lines()
    for line in lines[: len(lines) - len(problems)]:
        logger.info("%s", line)
    for line in problems:
        logger.warning("%s", line)
