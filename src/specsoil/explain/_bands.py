"""Known vis-NIR absorption regions of soil constituents, as data with their references.

The positions are those soil spectroscopists read importance curves against (Stenberg et
al., 2010, Adv. Agron. 107:163, table 2; Viscarra Rossel & Behrens, 2010, Geoderma 158:46,
table 1). Each region is given as a span rather than a line: band centres shift by tens of
nm with mineralogy and moisture, and a 10 nm model grid blurs them further.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SoilBand:
    """One absorption region of a soil constituent.

    Attributes:
        name: Short identifier, e.g. ``"clay_aloh"``.
        label: What the plot shows next to the span, e.g. ``"Al-OH clays"``.
        centre_nm: Nominal band centre in nm.
        low_nm: Lower edge of the region in nm.
        high_nm: Upper edge of the region in nm.
        assignment: The absorbing group and overtone or combination.
        reference: Where the position comes from.
    """

    name: str
    label: str
    centre_nm: float
    low_nm: float
    high_nm: float
    assignment: str
    reference: str

    def contains(self, wavelength: float) -> bool:
        """Whether ``wavelength`` (nm) lies in this region."""
        return self.low_nm <= wavelength <= self.high_nm


_STENBERG = "Stenberg et al. (2010), Adv. Agron. 107:163-215"
_HUNT = "Hunt (1977), Geophysics 42:501-513"
_CLARK = "Clark et al. (1990), J. Geophys. Res. 95(B8):12653-12680"
_GAFFEY = "Gaffey (1986), Am. Mineral. 71:151-162"
_BEN_DOR = "Ben-Dor et al. (1999), Manual of Remote Sensing vol. 3, 111-188"
_VR_BEHRENS = "Viscarra Rossel & Behrens (2010), Geoderma 158:46-54"

SOIL_BANDS: tuple[SoilBand, ...] = (
    SoilBand(
        "visible_om",
        "visible: OM, Fe oxides",
        550.0,
        400.0,
        700.0,
        "soil colour: darkening by organic matter, Fe-oxide charge transfer",
        f"{_BEN_DOR}; {_STENBERG}",
    ),
    SoilBand(
        "water_oh_1400",
        "1400 water/OH",
        1415.0,
        1380.0,
        1450.0,
        "O-H stretch first overtone (water, hydroxyls in clays)",
        f"{_HUNT}; {_CLARK}",
    ),
    SoilBand(
        "om_1700",
        "1700 OM",
        1720.0,
        1690.0,
        1760.0,
        "C-H stretch first overtone (organic matter)",
        f"{_STENBERG}; {_VR_BEHRENS}",
    ),
    SoilBand(
        "water_1900",
        "1900 water",
        1915.0,
        1880.0,
        1950.0,
        "H-O-H bend + O-H stretch combination (molecular water)",
        f"{_HUNT}; {_CLARK}",
    ),
    SoilBand(
        "clay_aloh",
        "2200 Al-OH clays",
        2205.0,
        2180.0,
        2230.0,
        "Al-OH bend + O-H stretch combination (kaolinite, smectite, illite)",
        f"{_CLARK}; {_VR_BEHRENS}",
    ),
    SoilBand(
        "om_2300",
        "2300 OM",
        2300.0,
        2270.0,
        2320.0,
        "C-H combinations (organic matter)",
        f"{_STENBERG}; {_VR_BEHRENS}",
    ),
    SoilBand(
        "carbonate",
        "2340 carbonates",
        2340.0,
        2325.0,
        2360.0,
        "CO3 third overtone (calcite, dolomite)",
        f"{_GAFFEY}; {_VR_BEHRENS}",
    ),
)


def bands_near(wavelength: float, *, tolerance_nm: float = 20.0) -> list[SoilBand]:
    """The known soil bands whose region contains ``wavelength`` (nm), within a tolerance.

    Args:
        wavelength: A wavelength in nm.
        tolerance_nm: How far outside a band's region still counts as near it.

    Returns:
        The matching bands, in :data:`SOIL_BANDS` order; empty when none is near.
    """
    return [
        band
        for band in SOIL_BANDS
        if band.low_nm - tolerance_nm <= wavelength <= band.high_nm + tolerance_nm
    ]
