"""Fonts for synthetic plates, from Debian's font packages (`scripts/train` installs them)."""

from __future__ import annotations

from pathlib import Path

# Condensed bold sans faces look most like the plate dies states use; a few wider and lighter ones widen
# what the reader has seen. Debian packages: fonts-dejavu-core/-extra, fonts-liberation2,
# fonts-freefont-ttf, fonts-roboto-unhinted, fonts-open-sans. All are free to use for rendering training
# images (their licences restrict redistributing the font files, which we never do).
PLATE_FONTS = (
    "dejavu/DejaVuSansCondensed-Bold.ttf",
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSansMono-Bold.ttf",
    "liberation2/LiberationSansNarrow-Bold.ttf",
    "liberation2/LiberationSans-Bold.ttf",
    "liberation2/LiberationMono-Bold.ttf",
    "freefont/FreeSansBold.ttf",
    "freefont/FreeMonoBold.ttf",
    "roboto/unhinted/RobotoCondensed-Bold.ttf",
    "roboto/unhinted/RobotoCondensed-Medium.ttf",
    "roboto/unhinted/RobotoTTF/Roboto-Bold.ttf",
    "open-sans/OpenSans-Bold.ttf",
    "open-sans/OpenSans-CondBold.ttf",
)
LABEL_FONTS = (
    "dejavu/DejaVuSerif-Bold.ttf",
    "dejavu/DejaVuSans.ttf",
    "liberation2/LiberationSerif-BoldItalic.ttf",
    "freefont/FreeSerifBoldItalic.ttf",
    "roboto/unhinted/RobotoTTF/Roboto-Regular.ttf",
    "open-sans/OpenSans-Italic.ttf",
)
ROOT = Path("/usr/share/fonts/truetype")


def available(names: tuple[str, ...]) -> list[Path]:
    found = [ROOT / n for n in names if (ROOT / n).is_file()]
    if not found:
        raise SystemExit(f"no plate fonts under {ROOT}: run scripts/train, which installs them")
    return found
