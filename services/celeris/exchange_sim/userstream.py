"""The simulated venue's user data stream: listen keys and pushing account events to their streams.

Owns listen keys (create or return the active one and extend it, keep alive, close, expire after 60
minutes with a listenKeyExpired event and the stream dropped) and delivery of each account's queued
user-data events to the connections subscribed to its key; with nobody listening the venue keeps nothing
for later, as the real one does.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from celeris.exchange_sim.engine import Account, MatchingEngine, VenueError

LISTEN_KEY_TTL_MS = 60 * 60 * 1000


class UserStream:
    """Part of SimVenue: listen keys and the user data stream."""

    engine: MatchingEngine
    connections: list[Any]
    listen_keys: dict[str, tuple[str, int]]
    _users_dirty: asyncio.Event

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        def now_ms(self) -> int: ...
        def _keyed(self, request: web.Request) -> Account: ...
        def _send(self, stream: str, payload: dict[str, Any], wanted: set[str]) -> None: ...
        def _wanted_streams(self) -> set[str]: ...

    async def listen_key_new(self, request: web.Request) -> web.Response:
        return web.json_response({"listenKey": self._listen_key_open(self._keyed(request))})

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        return web.json_response({"listenKey": self._listen_key_extend(self._keyed(request))})

    async def listen_key_close(self, request: web.Request) -> web.Response:
        self._listen_key_close(self._keyed(request))
        return web.json_response({})

    # The listen-key operations, shared by REST and the WebSocket API's userDataStream.* (ws_api.py).
    def _listen_key_open(self, account: Account) -> str:
        now = self.now_ms()
        for key, (api, _) in self.listen_keys.items():
            if api == account.api_key:  # an active key is returned again, and extended
                self.listen_keys[key] = (api, now + LISTEN_KEY_TTL_MS)
                return key
        key = secrets.token_hex(32)
        self.listen_keys[key] = (account.api_key, now + LISTEN_KEY_TTL_MS)
        return key

    def _listen_key_extend(self, account: Account) -> str:
        for key, (api, _) in self.listen_keys.items():
            if api == account.api_key:
                self.listen_keys[key] = (api, self.now_ms() + LISTEN_KEY_TTL_MS)
                return key
        raise VenueError(-1125, "This listenKey does not exist.")

    def _listen_key_close(self, account: Account) -> None:
        for key, (api, _) in list(self.listen_keys.items()):
            if api == account.api_key:
                del self.listen_keys[key]

    def _account_event(self, _: Account) -> None:
        self._users_dirty.set()

    async def _flush_users(self) -> None:
        for key, (api_key, _) in list(self.listen_keys.items()):
            account = self.engine.accounts[api_key]
            if not account.events:
                continue
            events, account.events = account.events, []
            wanted = self._wanted_streams()
            for event in events:
                self._send(key, event, wanted)
        for account in self.engine.accounts.values():
            if not any(api == account.api_key for api, _ in self.listen_keys.values()):
                account.events.clear()  # nobody listens: the venue does not queue for later
        self._users_dirty.clear()

    def _expire_listen_keys(self, now: int) -> None:
        for key, (_, expires) in list(self.listen_keys.items()):
            if expires <= now:
                self._send(key, {"e": "listenKeyExpired", "E": now, "listenKey": key}, self._wanted_streams())
                del self.listen_keys[key]
                for conn in self.connections:
                    conn.streams.discard(key)
