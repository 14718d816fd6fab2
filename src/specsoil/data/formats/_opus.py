"""Bruker OPUS binary files (``.0``, ``.1``, ``.001``, any extension: recognised by content).

Layout: a 24-byte header (magic ``0A 0A FE FE``, a float64 version, the directory offset,
its capacity and the block count), then a directory of 12-byte entries (int32 type code,
length in 4-byte words, offset). The type code packs six fields: complex part (bits 0-1),
channel (2-3: sample, reference, ratio), parameter kind (4-9: 0 data, 1 data status,
2 instrument, 3 acquisition, 10 sample origin, ...), data type (10-16: single channel,
interferogram, absorbance, transmittance, reflectance, ...), derivative (17-18) and an
extended kind (19-21). Each data block has a data status block of the same type holding
NPT, FXV, LXV, CSF, DPF and DAT/TIM. Parameter blocks are runs of 3-letter keys, each with
a type (0 int32, 1 float64, 2-4 text) and a size in 2-byte words, ended by ``END``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil.data._registry import register_reader
from specsoil.data._scans import RawSpectra, ScanKind
from specsoil.data.formats._binary import BinaryFile, decode_text

MAGIC = b"\x0a\x0a\xfe\xfe"
_TYPE_BITS = (1 << 22) - 1  # higher bits are flags OPUS sets on some blocks
_DATA_NAMES = {
    1: "Sc",
    2: "Ig",
    3: "Ph",
    4: "AB",
    5: "TR",
    6: "KM",
    7: "TRC",
    10: "RAM",
    11: "EMI",
    12: "RFL",
    14: "PW",
    15: "LRF",
    16: "ATR",
    17: "PAS",
    22: "MATCH",
}
# Result spectra in order of preference, with the kind their values are.
_RESULTS: tuple[tuple[int, ScanKind], ...] = (
    (4, "absorbance"),
    (12, "reflectance"),
    (5, "transmittance"),
    (6, "kubelka-munk"),
)
_SAMPLE, _REFERENCE, _RATIO = 1, 2, 3
_SINGLE_CHANNEL = 1
# Result types (acquisition parameter PLF) whose single-channel ratio is a reflectance.
_REFLECTANCE_RESULTS = {"RFL", "REF", "KM", "LRF", "ATR"}
_TRANSMITTANCE_RESULTS = {"TR", "TRM"}
# PLF=AB only says -log10(ScSm/ScRf) was wanted; the optics say whether the ratio is a
# reflectance (diffuse reflectance, integrating sphere: most soil work) or a transmittance.
_REFLECTANCE_OPTICS = ("diffuse", "drift", "sphere", "reflect")


@dataclass(frozen=True, slots=True)
class _Block:
    """One directory entry, with its type code split into fields."""

    entry_offset: int
    code: int
    offset: int
    length: int

    @property
    def channel(self) -> int:
        return (self.code >> 2) & 0x3

    @property
    def parameter_kind(self) -> int:
        return (self.code >> 4) & 0x3F

    @property
    def data_type(self) -> int:
        return (self.code >> 10) & 0x1F  # low 5 bits; the next 2 count channels

    @property
    def is_plain_spectrum(self) -> bool:
        """A data block of one channel, not a derivative, series or report."""
        return (
            self.parameter_kind == 0
            and (self.code >> 15) & 0x3 == 0
            and (self.code >> 17) == 0
            and self.code & 0x3 != 2  # not an imaginary part
        )

    @property
    def name(self) -> str:
        base = _DATA_NAMES.get(self.data_type, f"type{self.data_type}")
        suffix = {_SAMPLE: "Sm", _REFERENCE: "Rf"}.get(self.channel, "")
        return base + suffix


def _parameters(binary: BinaryFile, block: _Block) -> dict[str, int | float | str]:
    """The key/value pairs of a parameter block, bounds-checked against the block."""
    end = block.offset + 4 * block.length
    position = block.offset
    values: dict[str, int | float | str] = {}
    while position + 8 <= end:
        key = binary.raw[position : position + 3].decode("latin-1")
        if key == "END":
            break
        value_type, words = binary.unpack("hh", position + 4, f"parameter {key!r} header")
        start, size = position + 8, 2 * words
        if words < 0 or start + size > end:
            raise binary.fail(
                position,
                f"parameter {key!r} claims {size} bytes, past the end of its block at byte {end}",
            )
        if value_type == 0 and size >= 4:
            (values[key],) = binary.unpack("i", start, f"parameter {key!r}")
        elif value_type == 1 and size >= 8:
            (values[key],) = binary.unpack("d", start, f"parameter {key!r}")
        elif value_type in (2, 3, 4):
            values[key] = decode_text(binary.raw[start : start + size].split(b"\0", 1)[0])
        position = start + size
    return values


def _directory(binary: BinaryFile) -> list[_Block]:
    """Directory entries, each checked to lie inside the file."""
    if binary.raw[:4] != MAGIC:
        raise binary.fail(0, f"expected the OPUS magic 0A 0A FE FE; got {binary.raw[:4].hex(' ')}")
    directory_offset, capacity, count = binary.unpack("iii", 12, "the OPUS header")
    if count <= 0 or count > max(capacity, 0) or directory_offset < 24:
        raise binary.fail(
            12,
            f"expected a directory offset >= 24 and 1..capacity blocks; got offset "
            f"{directory_offset}, {count} blocks, capacity {capacity}",
        )
    binary.require(directory_offset, 12 * count, f"the directory of {count} entries")
    blocks = []
    for index in range(count):
        entry = directory_offset + 12 * index
        code, length, offset = binary.unpack("iii", entry, f"directory entry {index}")
        if length < 0 or offset < 0 or offset + 4 * length > binary.size:
            raise binary.fail(
                entry,
                f"directory entry {index} points to bytes {offset}..{offset + 4 * length}; "
                f"expected a block inside the file's {binary.size} bytes",
            )
        blocks.append(_Block(entry, code & _TYPE_BITS, offset, length))
    return blocks


@dataclass(frozen=True, slots=True)
class _Spectrum:
    """A data block with its status parameters, read into values on the wavenumber axis."""

    block: _Block
    status: dict[str, int | float | str]
    values: NDArray[np.float64]
    wavenumbers: NDArray[np.float64]


def _spectrum(binary: BinaryFile, block: _Block, status_block: _Block) -> _Spectrum:
    status = _parameters(binary, status_block)
    npt, first, last = status.get("NPT"), status.get("FXV"), status.get("LXV")
    if not isinstance(npt, int) or not isinstance(first, float) or not isinstance(last, float):
        raise binary.fail(
            status_block.offset,
            f"the data status block of {block.name} lacks NPT, FXV or LXV; expected all three",
        )
    if npt <= 0 or npt > block.length:
        raise binary.fail(
            status_block.offset,
            f"{block.name} claims NPT={npt} points but its block holds {block.length} values",
        )
    dtype = "i4" if status.get("DPF") == 2 else "f4"
    scale = status.get("CSF", 1.0)
    values = binary.array(dtype, npt, block.offset, f"the {block.name} data of {npt} values")
    if isinstance(scale, float | int) and scale != 0:
        values = values * float(scale)
    return _Spectrum(block, status, values, np.linspace(first, last, npt))


def _pair_with_status(blocks: list[_Block]) -> list[tuple[_Block, _Block]]:
    """Each plain data block with its data status block (the k-th of a type with the k-th)."""
    pending: dict[int, list[_Block]] = {}
    for block in blocks:
        if block.parameter_kind == 1:
            pending.setdefault(block.code & ~(0x3F << 4), []).append(block)
    pairs = []
    used: dict[int, int] = {}
    for block in blocks:
        if not block.is_plain_spectrum or block.data_type in (0, 13):
            continue
        candidates = pending.get(block.code, [])
        index = used.get(block.code, 0)
        if index < len(candidates):
            pairs.append((block, candidates[index]))
            used[block.code] = index + 1
    return pairs


def _acquired(status: dict[str, int | float | str]) -> str | None:
    """DAT (dd/mm/yyyy) and TIM (hh:mm:ss.fff (GMT+h)) as ISO 8601 with the UTC offset."""
    date, time = status.get("DAT"), status.get("TIM")
    if not isinstance(date, str) or not isinstance(time, str):
        return None
    clock, _, zone = time.partition(" ")
    try:
        moment = datetime.strptime(f"{date} {clock.split('.')[0]}", "%d/%m/%Y %H:%M:%S")
    except ValueError:
        return None
    zone = zone.strip("()").removeprefix("GMT").removeprefix("UTC")
    if zone:
        sign = -1.0 if zone.startswith("-") else 1.0
        hours, _, minutes = zone.lstrip("+-").partition(":")
        try:
            offset = timedelta(hours=float(hours), minutes=float(minutes or 0))
            moment = moment.replace(tzinfo=timezone(sign * offset))
        except ValueError:  # not a number, or beyond +-24 h: keep the local time
            return moment.isoformat()
    return moment.isoformat()


def _ratio_kind(parameters: dict[str, int | float | str]) -> tuple[ScanKind, str]:
    """Whether ScSm/ScRf is a reflectance or a transmittance, and the evidence."""
    result = str(parameters.get("PLF", "")).upper()
    if result in _REFLECTANCE_RESULTS:
        return "reflectance", f"the result type PLF={result}"
    if result in _TRANSMITTANCE_RESULTS:
        return "transmittance", f"the result type PLF={result}"
    optics = {key: str(parameters.get(key, "")) for key in ("DTC", "SFM", "EXP")}
    for key, text in optics.items():
        if any(word in text.lower() for word in _REFLECTANCE_OPTICS):
            return "reflectance", f"the optics ({key}={text!r}) with PLF={result or 'missing'}"
    if result == "AB":
        return "transmittance", "the result type PLF=AB with no reflectance optics named"
    return "unknown", f"the result type PLF={result or 'missing'}, which names neither"


def read_opus(path: Path, *, label: str | None = None) -> RawSpectra:
    """Read one Bruker OPUS file.

    The block read is, in order of preference: absorbance (AB; the last one when OPUS kept
    two, since the later is the processed one, e.g. after atmospheric compensation),
    reflectance, transmittance, Kubelka-Munk, and last the ratio of the sample and reference
    single channels (ScSm/ScRf, the reference interpolated onto the sample's wavenumbers),
    which is a reflectance or a transmittance according to the result type (PLF) and,
    for PLF=AB, the optics (a diffuse-reflectance detector or an integrating sphere).

    Args:
        path: The file.
        label: How messages and ``source`` name the file (default: the path).

    Returns:
        One spectrum on a wavenumber axis (cm-1, descending as stored); ``notes`` says
        which block was read.

    Raises:
        SpecsoilError: Wrong magic, a corrupt directory or parameter block, a truncated
            file, or no usable block; the message names the byte offset.
    """
    binary = BinaryFile(path, label=label)
    blocks = _directory(binary)
    parameters: dict[str, int | float | str] = {}
    for block in blocks:
        if block.parameter_kind >= 2 and block.channel in (0, _SAMPLE):
            parameters = {**_parameters(binary, block), **parameters}
    pairs = _pair_with_status(blocks)
    notes: list[str] = []
    kind: ScanKind | None = None
    chosen: _Spectrum | None = None
    for data_type, result_kind in _RESULTS:
        found = [
            pair for pair in pairs if pair[0].data_type == data_type and pair[0].channel == _RATIO
        ]
        if found:
            chosen, kind = _spectrum(binary, *found[-1]), result_kind
            note = f"read the {chosen.block.name} block at byte {chosen.block.offset}"
            if len(found) > 1:
                note += (
                    f", the last of {len(found)} {chosen.block.name} blocks (OPUS shows the "
                    "latest; the earlier ones precede a processing step such as "
                    "atmospheric compensation)"
                )
            notes.append(note)
            break
    values: NDArray[np.float64]
    if chosen is not None:
        values, axis, status = chosen.values, chosen.wavenumbers, chosen.status
    else:
        singles = {
            channel: [
                p for p in pairs if p[0].data_type == _SINGLE_CHANNEL and p[0].channel == channel
            ]
            for channel in (_SAMPLE, _REFERENCE)
        }
        if not singles[_SAMPLE] or not singles[_REFERENCE]:
            found_names = sorted({block.name for block, _ in pairs}) or ["none"]
            raise binary.fail(
                binary.unpack("i", 12, "the directory offset")[0],
                "no usable block: expected an AB, RFL, TR or KM result block, or both "
                f"single channels ScSm and ScRf; the directory holds data blocks {found_names}",
            )
        sample = _spectrum(binary, *singles[_SAMPLE][-1])
        reference = _spectrum(binary, *singles[_REFERENCE][-1])
        # np.interp needs ascending x; OPUS stores wavenumbers descending.
        order = np.argsort(reference.wavenumbers)
        reference_on_sample = np.interp(
            sample.wavenumbers,
            reference.wavenumbers[order],
            reference.values[order],
            left=np.nan,
            right=np.nan,
        )
        values = np.full_like(sample.values, np.nan)
        np.divide(sample.values, reference_on_sample, out=values, where=reference_on_sample != 0)
        axis, status = sample.wavenumbers, sample.status
        kind, why = _ratio_kind(parameters)
        notes.append(
            f"no result block: read ScSm (byte {sample.block.offset}) / ScRf (byte "
            f"{reference.block.offset}), the reference interpolated onto the sample's "
            f"wavenumbers; a {kind} by {why}"
        )
    assert kind is not None
    row = {
        "source_file": binary.label,
        "spectrum_name": parameters.get("SNM") or path.stem,
        "instrument": parameters.get("INS"),
        "serial_number": parameters.get("SRN"),
        "acquired": _acquired(status),
        "file_format": "opus",
        "opus_block": (chosen.block.name if chosen is not None else "ScSm/ScRf"),
        "result_type": parameters.get("PLF"),
        "source_range": parameters.get("SRC"),
        "beamsplitter": parameters.get("BMS"),
        "detector": parameters.get("DTC"),
        "resolution_cm1": parameters.get("RES"),
        "experiment": parameters.get("EXP"),
        "operator": parameters.get("CNM"),
    }
    return RawSpectra(
        values=values.reshape(1, -1),
        axis=axis,
        axis_unit="cm-1",
        kind=kind,
        metadata=pd.DataFrame([row]),
        source=binary.label,
        notes=tuple(notes),
    )


class OpusReader:
    """Reader for Bruker OPUS files, recognised by their magic bytes whatever the extension."""

    name: str = "opus"
    description: str = "Bruker OPUS binary (.0, .1, .001, ...): AB, reflectance or ScSm/ScRf"
    suffixes: tuple[str, ...] = (".0", ".1", ".2", ".001")

    def sniff(self, head: bytes, path: Path) -> bool:
        """True for a file starting with the OPUS magic bytes."""
        return head[:4] == MAGIC

    def read(self, path: Path) -> RawSpectra:
        """Read ``path``; see :func:`read_opus`."""
        return read_opus(path)


register_reader(OpusReader())
