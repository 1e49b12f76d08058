"""The officer's screen: a web page the agent serves (on the unit's own display over loopback, or on the
car's data terminal over HTTPS) with the live reads, the full-screen hit view and its disposition buttons,
the officers' own plates and, for technicians, each camera's picture with its plate boxes.

Parts: `feed` (what is pushed to the page), `sessions` (logins, CSRF, the idle lock), `app` (the page and
its API over the access layer), `server` (uvicorn on a thread), `sun` (day and night).
"""

from edge_agent.screen.feed import ReadFeed, read_event
from edge_agent.screen.sessions import ScreenSessions

__all__ = ["ReadFeed", "ScreenSessions", "read_event"]
