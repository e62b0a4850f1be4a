"""Support agents: accounts, availability and presence, sign-in."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.desk import agents
from bot.desk.repository.rows import _actor, _agent_view, _enabled_agent, _find_agent
from bot.desk.views import AgentView
from bot.wallet.models import Agent, AgentSignInFailure, HandoffRequest, HandoffStatus, utcnow
from bot.wallet.store import RepositoryBase, WalletError, _audit


class AgentsRepository(RepositoryBase):
    # ---------------------------------------------------------------------------- agents

    def create_agent(
        self,
        username: str,
        password: str,
        display_name: str | None = None,
        actor: str = "system",
    ) -> AgentView:
        """Add a console agent; the password is kept only as its argon2id hash."""
        try:
            username = agents.parse_username(username)
            display_name = agents.parse_display_name(display_name, username)
            agents.check_password(password, username)
        except agents.AgentInputError as exc:
            raise WalletError(str(exc)) from exc
        duplicate = WalletError(f"an agent with the username {username} already exists")
        if self.find_agent(username) is not None:  # spares a slow hash; the index decides
            raise duplicate
        password_hash = self._hasher.hash(password)
        try:
            with self._transaction() as s:
                agent = Agent(
                    username=username,
                    display_name=display_name,
                    password_hash=password_hash,
                    disabled=False,
                    available=False,
                    failed_sign_ins=0,
                )
                s.add(agent)
                s.flush()
                _audit(s, actor, "agent.created", username, {"display_name": display_name})
                return _agent_view(agent)
        except IntegrityError as exc:
            raise duplicate from exc

    def find_agent(self, username: str) -> AgentView | None:
        with self._transaction() as s:
            agent = _find_agent(s, username)
            return _agent_view(agent) if agent else None

    def list_agents(self) -> list[AgentView]:
        with self._transaction() as s:
            rows = s.execute(select(Agent).order_by(Agent.username)).scalars()
            return [_agent_view(agent) for agent in rows]

    def available_agents(self) -> list[AgentView]:
        """Agents who said they can take conversations now (none: the no-agent path)."""
        with self._transaction() as s:
            rows = s.execute(
                select(Agent)
                .where(
                    Agent.available.is_(True),
                    Agent.disabled.is_(False),
                    or_(Agent.present_until.is_(None), Agent.present_until > utcnow()),
                )
                .order_by(Agent.username)
            ).scalars()
            return [_agent_view(agent) for agent in rows]

    def disable_agent(self, username: str, actor: str = "system") -> AgentView:
        """Refuse the agent's sign-ins from now on; they are no longer available either."""
        return self._set_disabled(username, True, actor)

    def enable_agent(self, username: str, actor: str = "system") -> AgentView:
        return self._set_disabled(username, False, actor)

    def _set_disabled(self, username: str, disabled: bool, actor: str) -> AgentView:
        with self._transaction() as s:
            agent = _find_agent(s, username)
            if agent is None:
                raise WalletError(f"no agent with the username {username.strip()}")
            if agent.disabled != disabled:
                agent.disabled = disabled
                agent.available = False
                agent.present_until = None
                action = "agent.disabled" if disabled else "agent.enabled"
                _audit(s, actor, action, agent.username, {})
                s.flush()
            return _agent_view(agent)

    def set_agent_available(
        self, username: str, available: bool, lease: timedelta | None = None
    ) -> AgentView:
        """Available for new chats (or not). With a ``lease`` (the console) the agent counts
        as present only while heartbeats renew it; without one it holds as set."""
        with self._transaction() as s:
            agent = _enabled_agent(s, username)
            if lease is not None:
                agent.present_until = utcnow() + lease
            elif not available:
                agent.present_until = None
            if agent.available != available:
                agent.available = available
                _audit(
                    s,
                    _actor(agent),
                    "agent.availability",
                    agent.username,
                    {"available": available},
                )
            s.flush()
            return _agent_view(agent)

    def agent_heartbeat(self, username: str, lease: timedelta) -> AgentView:
        """The agent's console is open: they are present for ``lease`` from now."""
        with self._transaction() as s:
            agent = _enabled_agent(s, username)
            agent.present_until = utcnow() + lease
            s.flush()
            return _agent_view(agent)

    def lapsed_agents(self) -> list[str]:
        """Agents whose console stopped its heartbeat, now marked away and unavailable (each
        is returned once, to whichever caller marks them)."""
        now = utcnow()
        with self._transaction() as s:
            names = list(
                s.execute(select(Agent.username).where(Agent.present_until < now)).scalars()
            )
            gone = []
            for name in names:
                done = s.execute(
                    update(Agent)
                    .where(Agent.username == name, Agent.present_until < now)
                    .values(available=False, present_until=None)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if done == 1:
                    _audit(s, agents.agent_actor(name), "agent.away", name, {})
                    gone.append(name)
            return gone

    def disabled_agents_holding_chats(self) -> list[str]:
        """Disabled agents who still hold conversations (disabled from the CLI meanwhile)."""
        with self._transaction() as s:
            return list(
                s.execute(
                    select(Agent.username)
                    .join(HandoffRequest, HandoffRequest.taken_by == Agent.username)
                    .where(
                        Agent.disabled.is_(True),
                        HandoffRequest.status == HandoffStatus.TAKEN.value,
                    )
                    .distinct()
                ).scalars()
            )

    def sign_out_agent(self, username: str) -> None:
        """The agent signed out: unavailable and no longer present."""
        with self._transaction() as s:
            agent = _find_agent(s, username)
            if agent is None:
                return
            agent.present_until = None
            if agent.available:
                agent.available = False
                _audit(s, _actor(agent), "agent.availability", agent.username, {"available": False})

    def verify_agent_password(
        self, username: str, password: str, client_address: str | None = None
    ) -> AgentView | None:
        """The agent when the password is right and sign-in is allowed, else None.

        Throttled per account AND client (``agents.sign_in_client`` of ``client_address``;
        None: a local caller such as the CLI): five failures in a row lock that client out,
        not the agent, and the account's ceiling over every client bounds a guesser who spreads
        attempts (``agents.MAX_FAILED_SIGN_INS_PER_ACCOUNT``). Unknown, disabled, throttled and
        wrong all give None after one hash verification each, so neither the answer nor its
        timing tells them apart. An attempt counts as a failure *before* the slow verification
        and is forgiven when it succeeds: parallel guesses cannot outrun the throttle.
        """
        name = username.strip().lower()
        client = agents.sign_in_client(client_address)
        stored, reserved = self._reserve_sign_in(name, client)
        if stored is None or not reserved:
            agents.password_matches(self._hasher, self._dummy(), password)
            return None
        matches = agents.password_matches(self._hasher, stored, password)
        new_hash = (
            self._hasher.hash(password)
            if matches and self._hasher.check_needs_rehash(stored)
            else None
        )
        with self._transaction() as s:
            agent = s.execute(select(Agent).where(Agent.username == name)).scalar_one()
            attempts = _client_failures(agent.id, client)
            if not matches:
                failures = s.execute(select(AgentSignInFailure.failures).where(attempts)).scalar()
                locked = (failures or 0) >= agents.MAX_FAILED_SIGN_INS
                _audit(
                    s,
                    "anonymous",
                    "agent.sign_in_failed",
                    name,
                    {
                        "client": client,
                        "failed_sign_ins": failures or 0,
                        "account_failures": agent.failed_sign_ins,
                        "locked": locked
                        or agent.failed_sign_ins >= agents.MAX_FAILED_SIGN_INS_PER_ACCOUNT,
                    },
                )
                return None
            if agent.disabled:  # disabled while the hash was being checked
                return None
            # This client is forgiven; the account's count fades with its window, so that a
            # success of the agent's does not reset a guesser spread over other addresses.
            s.execute(delete(AgentSignInFailure).where(attempts))
            agent.failed_sign_ins = max(agent.failed_sign_ins - 1, 0)
            if new_hash and agent.password_hash == stored:
                agent.password_hash = new_hash
            _audit(s, _actor(agent), "agent.signed_in", name, {"rehashed": bool(new_hash)})
            s.flush()
            return _agent_view(agent)

    def _reserve_sign_in(self, name: str, client: str) -> tuple[str | None, bool]:
        """The agent's stored hash (None: no such agent) and whether this attempt may be
        checked, counted first as a failure of the client and of the account."""
        for _ in range(3):  # the client's first failure races another one's insert: retry
            try:
                return self._try_reserve_sign_in(name, client)
            except IntegrityError:
                continue
        return None, False

    def _try_reserve_sign_in(self, name: str, client: str) -> tuple[str | None, bool]:
        now = utcnow()
        window_start = now - agents.SIGN_IN_LOCKOUT
        try:
            with self._transaction() as s:
                found = s.execute(
                    select(Agent.id, Agent.password_hash).where(Agent.username == name)
                ).one_or_none()
                if found is None:
                    return None, False
                agent_id, stored = found
                attempts = _client_failures(agent_id, client)
                s.execute(
                    delete(AgentSignInFailure)
                    .where(attempts, AgentSignInFailure.last_failed_at < window_start)
                    .execution_options(synchronize_session=False)
                )
                # Conditional updates are the throttle: each fails when its limit is reached.
                counted = s.execute(
                    update(AgentSignInFailure)
                    .where(attempts, AgentSignInFailure.failures < agents.MAX_FAILED_SIGN_INS)
                    .values(failures=AgentSignInFailure.failures + 1, last_failed_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if counted == 0:
                    if s.execute(select(AgentSignInFailure.client).where(attempts)).first():
                        raise _Refused  # this client is locked out: nothing is counted
                    s.add(
                        AgentSignInFailure(
                            agent_id=agent_id, client=client, failures=1, last_failed_at=now
                        )
                    )
                    s.flush()
                quiet = or_(
                    Agent.last_failed_sign_in_at.is_(None),
                    Agent.last_failed_sign_in_at < window_start,
                )
                account = s.execute(
                    update(Agent)
                    .where(
                        Agent.id == agent_id,
                        Agent.disabled.is_(False),
                        or_(Agent.failed_sign_ins < agents.MAX_FAILED_SIGN_INS_PER_ACCOUNT, quiet),
                    )
                    .values(
                        failed_sign_ins=case((quiet, 1), else_=Agent.failed_sign_ins + 1),
                        last_failed_sign_in_at=now,
                    )
                    .execution_options(synchronize_session=False)
                ).rowcount
                if account != 1:
                    raise _Refused  # disabled, or the account's ceiling: undo the client's count
                return stored, True
        except _Refused:
            return stored, False

    def _dummy(self) -> str:
        """A hash with the hasher's parameters, checked when there is no real one to check."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash


class _Refused(Exception):
    """An attempt the throttle refuses: its transaction is rolled back, so nothing counts."""


def _client_failures(agent_id: int, client: str) -> Any:
    return and_(AgentSignInFailure.agent_id == agent_id, AgentSignInFailure.client == client)
