"""Residents' service requests: review, matching and offers, a race-safe accept, closing, pairings.

Rules (documented here because dialogs and tests rely on them):

* **Whose request it is (the station).** A request belongs to the organization whose name matches
  the request's community (one contains the other once station words such as 志愿服务站 / 服务站 are
  stripped: 「花家地社区」 ↔ 「花家地社区志愿服务站」). When nothing matches the community, the
  resident's registered area is tried the same way. When nothing matches either, the request has
  no station and the admins review it. Coordinators of that organization or of one above it (and
  admins) are "of the area": they review, assign by hand, confirm, and are the only coordinators who
  see details. Notices go to the station's own coordinators, else to the nearest organization above
  it that has some, else to the admins.
* **Matching.** An approved request is offered to active volunteers (not the resident) who are
  members of the station (or of a team below it) or whose area matches the community, whose skills map to the category (``services.registration.SKILLS``; any
  skill for "other"), and who have fewer than ``MAX_OPEN_ASSIGNMENTS`` requests assigned or in
  progress. They are ranked by current load, then by fewest service requests done recently
  (spreads the work), then by registration order; ``OFFER_BATCH`` at a time. When everybody
  offered has declined, the next batch is offered.
* **Privacy.** Offers carry the category, community and time only. Name, address and phone are
  shown to the assignee and to the station's coordinators, nobody else (``can_see_details``).
* **Accepting.** ``accept_offer`` moves the request with one conditional UPDATE (``WHERE
  status='approved' AND assignee_id IS NULL``) and checks the row count: on PostgreSQL the second
  concurrent UPDATE waits for the first to commit and then matches no row; SQLite has one writer.

The package: ``core`` (station, permissions, summaries and notices), ``lifecycle`` (create, review,
serve, close, cancel), ``matching`` (offers, accept, escalation, assigning by hand), ``pairings``
(结对帮扶 and visits). Every notice is a catalog text (``_()``), rendered in each recipient's language.
"""

from services.requests.core import (
    MAX_OPEN_ASSIGNMENTS,
    MAX_SERVICE_HOURS,
    OFFER_BATCH,
    RequestError,
    can_manage,
    can_see_details,
    category_text,
    get_request,
    notify_station,
    rating_text,
    requests_of_resident,
    review_queue,
    same_area,
    station_coordinators,
    station_for,
    summary,
    tasks_of_volunteer,
)
from services.requests.lifecycle import (
    NewRequest,
    approve_request,
    cancel_request,
    change_category,
    confirm_done,
    create_request,
    mark_done,
    reject_request,
    start_service,
)
from services.requests.matching import (
    ESCALATE_AFTER,
    Candidate,
    accept_offer,
    assign_by_hand,
    decline_offer,
    escalate_unaccepted,
    latest_offer,
    offer_next,
    open_offers,
    rank_volunteers,
    skill_fits,
)
from services.requests.pairings import (
    COORDINATOR_AFTER,
    VisitLine,
    create_pairing,
    log_visit,
    pairing_named,
    pairing_organization,
    pairings_of,
    parse_visit_line,
    remind_missed_visits,
    volunteer_organizations,
)

__all__ = [
    "COORDINATOR_AFTER",
    "ESCALATE_AFTER",
    "MAX_OPEN_ASSIGNMENTS",
    "MAX_SERVICE_HOURS",
    "OFFER_BATCH",
    "Candidate",
    "NewRequest",
    "RequestError",
    "VisitLine",
    "accept_offer",
    "approve_request",
    "assign_by_hand",
    "can_manage",
    "can_see_details",
    "cancel_request",
    "category_text",
    "change_category",
    "confirm_done",
    "create_pairing",
    "pairing_organization",
    "volunteer_organizations",
    "create_request",
    "decline_offer",
    "escalate_unaccepted",
    "get_request",
    "latest_offer",
    "log_visit",
    "mark_done",
    "notify_station",
    "offer_next",
    "open_offers",
    "pairing_named",
    "pairings_of",
    "parse_visit_line",
    "rank_volunteers",
    "rating_text",
    "reject_request",
    "remind_missed_visits",
    "requests_of_resident",
    "review_queue",
    "same_area",
    "skill_fits",
    "start_service",
    "station_coordinators",
    "station_for",
    "summary",
    "tasks_of_volunteer",
]
