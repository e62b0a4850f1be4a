"""indexes for what the tracker store reads every turn

Revision ID: 0001
Revises:
Create Date: 2026-12-02 01:15:00.000000

Rasa 3.6.21's ``SQLTrackerStore._event_query`` (rasa/core/tracker_store.py) runs several times
a turn (retrieve, the broker's diff, counting what is new on save): the latest
``session_started`` timestamp of the sender, then the sender's events from it ordered by id.
Rasa indexes only ``sender_id``, so each read fetched and sorted every row of the sender.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # max(timestamp) WHERE sender_id = ? AND type_name = 'session_started': one index probe.
    op.create_index(
        "ix_events_sender_type_timestamp", "events", ["sender_id", "type_name", "timestamp"]
    )
    # WHERE sender_id = ? ... ORDER BY id: read in index order, no sort.
    op.create_index("ix_events_sender_id_id", "events", ["sender_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_sender_id_id", table_name="events")
    op.drop_index("ix_events_sender_type_timestamp", table_name="events")
