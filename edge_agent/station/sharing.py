"""The sharing register's rules: whom the department shares ALPR data and hotlists with, and from whom it
receives them, each on a written request approved by the ALPR administrator's designee."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from edge_agent.errors import EdgeAgentError

DIRECTIONS = ("share", "receive")
SHARED_DATA = ("alpr", "hotlist")
IN_STATE = "CA"


class SharingRefused(EdgeAgentError):
    pass


def check_entry(agency_name: str, jurisdiction: str, direction: str, data: str, requester: str, purpose: str,
                approved_by: str, approved_on: str, request_file: Path) -> dict:
    """A register entry, or SharingRefused naming what is wrong."""
    jurisdiction = jurisdiction.strip().upper()
    if direction not in DIRECTIONS:
        raise SharingRefused(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    if data not in SHARED_DATA:
        raise SharingRefused(f"data {data!r} is not one of {', '.join(SHARED_DATA)}")
    if direction == "share" and jurisdiction != IN_STATE:
        raise SharingRefused(f"sharing ALPR information with {agency_name} ({jurisdiction}) is refused: California "
                             "public agencies may not share it with out-of-state or federal agencies "
                             "(Civil Code 1798.90.55(b))")
    for name, value in (("agency name", agency_name), ("requester", requester), ("purpose", purpose),
                        ("approved by", approved_by)):
        if not value.strip():
            raise SharingRefused(f"the {name} is required: a request names the agency, the person and the purpose, "
                                 "and the designee's approval")
    try:
        when = date.fromisoformat(approved_on)
    except ValueError:
        raise SharingRefused(f"approved on {approved_on!r}: not a date (YYYY-MM-DD)") from None
    if when > date.today():
        raise SharingRefused(f"approved on {approved_on}: a date still to come")
    path = Path(request_file)
    if not path.is_file():
        raise SharingRefused(f"{path}: the written request must be kept on file; no such file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"agency_name": agency_name.strip(), "jurisdiction": jurisdiction, "direction": direction, "data": data,
            "requester": requester.strip(), "purpose": purpose.strip(), "approved_by": approved_by.strip(),
            "approved_on": when.isoformat(), "request_file": f"{path.resolve()} sha256:{digest}"}
