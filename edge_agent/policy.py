"""The usage and privacy policy an ALPR operator must publish (Civil Code 1798.90.51), written from the
configuration in force, so the page says what the system actually does."""

from __future__ import annotations

import html

from edge_agent.access import MAY_AUDIT, MAY_EXPORT, MAY_SEARCH, ROLES
from edge_agent.config import Config


def _days(days: float) -> str:
    return "without limit" if days <= 0 else f"{days:g} days"


def policy_html(config: Config, agency_name: str = "") -> str:
    name = html.escape(agency_name or config.agent.agency)
    days = config.storage.retention_days
    retention = (f"{days:g} days on the in-car unit once sent to the station" if days > 0 else
                 "on the in-car unit until sent to the station and the storage cap needs the room")
    roles = ", ".join(ROLES)
    sections = [
        ("Authorized uses", "Locating stolen vehicles and plates, felony vehicles, wanted and missing persons and "
         "Amber alert vehicles listed by the California DOJ, and plates entered by officers for an active case. "
         "A hit is confirmed through CLETS before any enforcement action."),
        ("Who may use the system", f"Only department members who have completed department-approved training, "
         f"within its validity, through a personal login. Roles: {roles}. Searches: {', '.join(MAY_SEARCH)}; "
         f"evidence exports: {', '.join(MAY_EXPORT)}; audit review: {', '.join(MAY_AUDIT)}."),
        ("What is collected", "For each vehicle pass: the plate as read, the reading's confidence, the issuing "
         "state where read, a plate image and a scene image, the time (and whether the clock was trusted), the "
         "camera and, where the car has GPS, its position, speed and heading."),
        ("How access is monitored", "Every access is logged with the user, the date and time, the data queried, "
         "the purpose (a case number or reason) and how many records came back, in a hash-chained audit log that "
         "shows any change. The log is reviewed by auditors and reported yearly."),
        ("Retention", f"Reads are kept {retention}; at the station {_days(config.station.retention_days)} "
         f"(never less than {_days(config.station.minimum_retention_days)}); then purged unless held as evidence. "
         f"Audit records are kept {_days(config.storage.audit_retention_days)} on the unit and at the station with "
         "them. Every purge is counted and logged."),
        ("Sharing", "ALPR information is shared only with California public agencies, on a written request naming "
         "the agency, the person and the purpose, approved by the ALPR administrator's designee and kept on "
         "file. It is not sold, and not shared with out-of-state or federal agencies (Civil Code 1798.90.55(b))."),
        ("Accuracy", "Reads are matched against hotlists and confirmed by an officer and through CLETS; misreads "
         "are recorded as such and counted in the yearly report."),
        ("Custodian", f"The ALPR administrator's designee of {name} is responsible for the system, its users "
         "and this policy."),
    ]
    body = "\n".join(f"<h2>{html.escape(t)}</h2>\n<p>{html.escape(p)}</p>" for t, p in sections)
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name}: automated license "
            f"plate recognition usage and privacy policy</title></head>\n<body>\n<h1>{name}: ALPR usage and privacy "
            f"policy</h1>\n{body}\n</body></html>\n")
