"""A conversation's past states, carried forward from one prediction to the next.

Rasa 3.6.21 works out the past states the policies predict from
(``Domain.states_for_tracker_history``, rasa/shared/core/domain.py line 1333) by replaying the
whole conversation, event by event, into a fresh tracker and reading a state before each action
(``DialogueStateTracker.generate_all_prior_trackers``, trackers.py line 457). A state depends
only on the events before it, and a conversation only grows: the next prediction, in the same
turn or the next one, replays the same events again before reaching its few new ones. That
made each prediction at turn 40 cost ten times one at turn 4.

Here each conversation's replay is kept between predictions (:class:`History`): its replayed
events, the tracker they made and the states read so far. A prediction whose applied events
begin with those events goes on from there. A form's turn is the one other case Rasa makes
every turn: when the form runs again, ``applied_events`` takes the turn's listen and message
back out, so the history also keeps a mark where the form last ran and goes on from it. Any
other difference (a rewound or restarted conversation, another event at any place) replays
from the start, as Rasa does. An event counts as the same when it is the same object, or when
it is stored and featurised the same (the tracker store hands out fresh copies of the last
turn's events: the same unless the store redacted them; then the replay starts again). The
replay runs Rasa's own ``DialogueStateTracker.update`` and ``Domain.get_active_state``, and
the states are kept as made: callers get copies (``speedups._copy_states``), and a later event
changes the replay's tracker, not an earlier state, as in Rasa's single pass; the two events
that change an earlier event in place (``CHANGES_LATEST_MESSAGE``) are looked for.

Counted on two of the bench's conversations through the servers: 151 of 160 predictions went
on from the history; the others were a conversation's first and turns after one whose events
the store redacted (a claim code).

Used only within one prediction (``speedups.share_past_states_within_a_prediction``), on the
event loop's thread; the histories of the ``KEPT_HISTORIES`` most recent conversations are
kept (a 40-turn conversation's: about 150 states and a tracker, a few hundred kB at most).
"""

from __future__ import annotations

import collections
import copy
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ujson
from rasa.shared.core.constants import PREVIOUS_ACTION, SLOTS
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    DefinePrevUserUtteredFeaturization,
    EntitiesAdded,
    Event,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

KEPT_HISTORIES = 256
HISTORY_DIFFERS = "A conversation's past states carried forward differ from Rasa's own pass"
"""Logged, and raised, by the check of every prediction's states (``tracker_cache_check``:
the test suite's servers run with it; ``speedups.share_past_states_within_a_prediction``)."""
TAKEN_OUT_BY_A_LOOP = (ActionExecuted, UserUttered, DefinePrevUserUtteredFeaturization)
CHANGES_LATEST_MESSAGE = (DefinePrevUserUtteredFeaturization, EntitiesAdded)
"""Rasa 3.6.21's events that change an earlier event in place: the tracker's latest message
(events.py lines 768 and 852). A state read from that message before such an event is not
the one a pass made after it reads, so a history that holds one is not continued."""


@dataclass
class _Mark:
    """Where a history stood before the first event a loop's next run takes back out of the
    applied events (Rasa's ``_undo_till_previous_loop_execution``, trackers.py line 581: the
    listen, message and its featurisation events since the loop last ran), to go on from."""

    events: int
    replay: DialogueStateTracker
    every: int
    ml: int
    last_ml_action_sub_state: Any
    turn_was_hidden: bool
    read_since_message: int
    after_action: str


@dataclass
class History:
    """Rasa's loop of ``states_for_tracker_history``, run for both ``ignore_rule_only_turns``
    variants at once and stopped after ``events``: what it has read so far and where it is."""

    domain: Domain
    replay: DialogueStateTracker
    """The conversation after ``events`` (``generate_all_prior_trackers``' tracker)."""
    events: list[Event] = field(default_factory=list)
    every: list[State] = field(default_factory=list)
    """The state before each action (``ignore_rule_only_turns`` False: the rule policy's)."""
    ml: list[State] = field(default_factory=list)
    """The same without rule-only turns and features (True: memoization and TED)."""
    last_ml_action_sub_state: Any = None
    turn_was_hidden: bool = False
    read_since_message: int = 0
    """States read (and kept) since the latest message was replayed."""
    mark: _Mark | None = None
    after_action: str | None = None
    """The action replayed last, until an event a loop's next run takes out follows it."""
    loops: set[str] = field(default_factory=set)

    def resumes(self, applied: Sequence[Event]) -> bool:
        """Whether the history can go on to ``applied``: it begins with the events replayed
        so far, or with those before the mark (a form's turn: the loop ran again and took
        the turn's listen and message out), and none of the events after them changes a
        message a kept state was read from."""
        matched = self._matched(applied)
        if matched < len(self.events):
            mark = self.mark
            if mark is None or matched < mark.events:
                return False
            self._go_back_to(mark)
        return not (
            self.read_since_message
            and any(isinstance(e, CHANGES_LATEST_MESSAGE) for e in applied[len(self.events) :])
        )

    def _matched(self, applied: Sequence[Event]) -> int:
        """How many of the replayed events ``applied`` begins with. An event counts as the
        same when it is the same object, or when it is stored the same (the tracker store's
        fresh copy of an earlier turn's event) and featurised the same."""
        for index, (seen, event) in enumerate(zip(self.events, applied, strict=False)):
            if seen is event:
                continue
            if not _same(seen, event):
                return index
            self.events[index] = event  # the next match is by identity
        return min(len(self.events), len(applied))

    def _go_back_to(self, mark: _Mark) -> None:
        del self.events[mark.events :]
        del self.every[mark.every :]
        del self.ml[mark.ml :]
        self.replay = fork(mark.replay)
        self.last_ml_action_sub_state = mark.last_ml_action_sub_state
        self.turn_was_hidden = mark.turn_was_hidden
        self.read_since_message = mark.read_since_message
        self.after_action = mark.after_action

    def replay_to(
        self,
        applied: Sequence[Event],
        domain: Domain,
        omit_unset_slots: bool,
        rule_only_data: dict[str, Any] | None,
    ) -> tuple[list[State], list[State]]:
        """Both variants' states for ``applied`` (which :meth:`resumes` accepted)."""
        for event in applied[len(self.events) :]:
            if isinstance(event, TAKEN_OUT_BY_A_LOOP) and self.after_action is not None:
                if self.after_action in self.loops or self.after_action in domain.form_names:
                    self.mark = _Mark(
                        len(self.events),
                        fork(self.replay),
                        len(self.every),
                        len(self.ml),
                        self.last_ml_action_sub_state,
                        self.turn_was_hidden,
                        self.read_since_message,
                        self.after_action,
                    )
                self.after_action = None
            if isinstance(event, ActionExecuted):
                self._read(domain, event.hide_rule_turn, omit_unset_slots, rule_only_data)
                self.read_since_message += 1
                self.after_action = event.action_name
            elif isinstance(event, UserUttered):
                self.read_since_message = 0
            elif isinstance(event, ActiveLoop) and event.name:
                self.loops.add(event.name)
            self.replay.update(event)
            self.events.append(event)
        # Rasa's last state, after every event: read, not kept (the next event may be an
        # action whose state this is, read again then with its own ``hide_rule_turn``).
        last = History(
            domain,
            self.replay,
            every=[],
            ml=self.ml[-1:],
            last_ml_action_sub_state=self.last_ml_action_sub_state,
            turn_was_hidden=self.turn_was_hidden,
        )
        last._read(domain, False, omit_unset_slots, rule_only_data)
        return [*self.every, *last.every], [*self.ml, *last.ml[len(self.ml[-1:]) :]]

    def _read(
        self,
        domain: Domain,
        hide_rule_turn: bool,
        omit_unset_slots: bool,
        rule_only_data: dict[str, Any] | None,
    ) -> None:
        """One pass of Rasa's loop, for both variants: the rule policy asks for the first,
        memoization and TED for the second. The second edits a state's outer dict and its
        slots, so it gets its own of those (the other sub-states are the same objects as in
        a pass of its own: the tracker's, or fresh for this turn)."""
        tr = self.replay
        state = domain.get_active_state(tr, omit_unset_slots=omit_unset_slots)
        self.every.append(domain._clean_state(state))

        if not self.turn_was_hidden:
            self.last_ml_action_sub_state = domain._get_prev_action_sub_state(tr)
        if not tr.followup_action and tr.latest_action_name != tr.active_loop_name:
            self.turn_was_hidden = hide_rule_turn
        if self.turn_was_hidden:
            return
        ml_state = dict(state)
        if SLOTS in ml_state:
            ml_state[SLOTS] = dict(ml_state[SLOTS])
        domain._remove_rule_only_features(ml_state, rule_only_data)
        if self.ml:
            domain._substitute_rule_only_user_input(ml_state, self.ml[-1])
        if self.last_ml_action_sub_state:
            ml_state[PREVIOUS_ACTION] = self.last_ml_action_sub_state
        self.ml.append(domain._clean_state(ml_state))


_histories: collections.OrderedDict[Hashable, History] = collections.OrderedDict()
_lock = threading.Lock()


def both_variants(
    domain: Domain,
    tracker: DialogueStateTracker,
    omit_unset_slots: bool,
    rule_only_data: dict[str, Any] | None,
    rule_only_key: Hashable,
) -> tuple[list[State], list[State]]:
    """``Domain.states_for_tracker_history`` with ``ignore_rule_only_turns`` False and True,
    going on from this conversation's history where the tracker continues it."""
    # One history per conversation and arguments; another domain (a new model) replaces it.
    key = (tracker.sender_id, tracker.is_rule_tracker, omit_unset_slots, rule_only_key)
    with _lock:  # taken while in use: a concurrent caller (none in Rasa) starts its own
        history = _histories.pop(key, None)
    applied = tracker.applied_events()
    if history is None or history.domain is not domain or not history.resumes(applied):
        history = History(domain, tracker.init_copy())
    variants = history.replay_to(applied, domain, omit_unset_slots, rule_only_data)
    with _lock:
        _histories[key] = history
        while len(_histories) > KEPT_HISTORIES:
            _histories.popitem(last=False)
    return variants


def _same(seen: Event, event: Event) -> bool:
    """Stored the same (Rasa's own round trip: ``as_dict``) and featurised the same (the one
    attribute a state reads that is not stored: a message's ``use_text_for_featurization``)."""
    return (
        type(seen) is type(event)
        and getattr(seen, "use_text_for_featurization", None)
        == getattr(event, "use_text_for_featurization", None)
        and ujson.dumps(seen.as_dict(), sort_keys=True)
        == ujson.dumps(event.as_dict(), sort_keys=True)
    )


def fork(tracker: DialogueStateTracker) -> DialogueStateTracker:
    """A copy of a tracker that later events change independently: what
    ``DialogueStateTracker.update`` changes in place is its event list, its slots and its
    active loop (trackers.py lines 344-376); the rest it replaces, and the events themselves
    are shared, as between a tracker and its ``generate_all_prior_trackers`` replay."""
    copied = copy.copy(tracker)
    copied.events = copy.copy(tracker.events)
    copied.slots = {name: copy.copy(slot) for name, slot in tracker.slots.items()}
    copied.active_loop = copy.copy(tracker.active_loop)
    return copied


def forget() -> None:
    """Drop every history (for tests that compare against a fresh replay)."""
    with _lock:
        _histories.clear()
