"""Names cars carry on their bodies: makes, models and trims (CAMRY, YUKON, HYBRID).

Pure data and one pure function, no I/O. Every car in view carries its badges,
and a badge reads like an all-letter vanity plate, so a frame whose plate is
hidden or too small would otherwise report the badge. The list holds the common
US makes, models and trim words of five letters and more (shorter names such as
KIA, RAM or GOLF are too often real vanity plates), from public model line-ups,
not from any photographs.
"""

from __future__ import annotations

VEHICLE_BADGES = frozenset("""
ACURA BUICK CADILLAC CHEVROLET CHEVY CHRYSLER DODGE HONDA HUMMER HYUNDAI INFINITI JAGUAR LEXUS
LINCOLN MAZDA MERCEDES MERCURY MITSUBISHI NISSAN PONTIAC PORSCHE SATURN SCION SUBARU SUZUKI TESLA
TOYOTA VOLKSWAGEN VOLVO
CAMRY COROLLA PRIUS TACOMA TUNDRA SIENNA HIGHLANDER RUNNER AVALON SEQUOIA YARIS MATRIX
ACCORD CIVIC ODYSSEY PILOT ELEMENT RIDGELINE INSIGHT
ALTIMA MAXIMA SENTRA ROGUE MURANO PATHFINDER FRONTIER TITAN QUEST VERSA XTERRA ARMADA
ESCAPE EXPLORER EXPEDITION FOCUS FUSION MUSTANG RANGER TAURUS FIESTA WINDSTAR
IMPALA MALIBU CRUZE SILVERADO TAHOE SUBURBAN EQUINOX TRAVERSE COLORADO CAMARO CORVETTE SONIC
YUKON SIERRA ACADIA TERRAIN SAVANA ENVOY
CHARGER CHALLENGER DURANGO CARAVAN JOURNEY AVENGER CALIBER
WRANGLER CHEROKEE LIBERTY COMPASS PATRIOT RENEGADE
ELANTRA SONATA SANTAFE TUCSON ACCENT GENESIS OPTIMA SORENTO SPORTAGE FORTE
OUTBACK FORESTER LEGACY IMPREZA CROSSTREK JETTA PASSAT TIGUAN TOUAREG BEETLE
MIATA TRIBUTE ESCALADE ENCLAVE LACROSSE REGAL LESABRE NAVIGATOR METRO
HYBRID LIMITED TOURING TURBO ECOBOOST QUATTRO
""".split())

MIN_BADGE_LETTERS = 5
# Trim letters read on after a name (IMPALA LT as IMPALALT).
MAX_TRIM_LETTERS = 2
# Digits the recogniser gives for a badge's letters.
_AS_LETTER = str.maketrans("015", "OIS")


def looks_like_badge(text: str) -> bool:
    """Whether a read spells one of VEHICLE_BADGES, with 0, 1 or 5 for O, I or S, its end cut
    off (HYUNDA) or a trim read on (IMPALALT). Near misses of a name do not count: vanity
    plates spell names with a letter changed or added in front (STANG, MYCAMRY)."""
    letters = text.upper().translate(_AS_LETTER)
    if len(letters) < MIN_BADGE_LETTERS or not letters.isalpha():
        return False
    return letters in VEHICLE_BADGES or any(
        badge.startswith(letters) or (letters.startswith(badge) and len(letters) - len(badge) <= MAX_TRIM_LETTERS)
        for badge in VEHICLE_BADGES
    )
