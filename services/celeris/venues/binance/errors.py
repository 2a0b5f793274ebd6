"""Typed errors of the Binance USD-M venue, from its {code, msg} bodies and HTTP statuses.

Owns the mapping from the venue's error codes to exception types that say what the caller may do:
retry later (`RateLimited`, `ServiceUnavailable`), ask what happened before retrying
(`UnknownExecutionStatus`, the 503 whose outcome is unknown), fix the clock (`InvalidTimestamp`),
stop trading (`AuthenticationFailed`), or accept a refusal (`OrderRejected` and its filter codes).
"""

from __future__ import annotations


class VenueError(Exception):
    """Any error answered by the venue."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    retryable = False


class UnsupportedAccountMode(ValueError):
    """The account is set up in a way Celeris does not trade (hedge mode): refused at start, in one line."""


class RateLimited(VenueError):
    """429 (weight or order count) or 418 (IP banned): wait `retry_after_s` before any request."""

    retryable = True

    def __init__(self, code: int, msg: str, status: int, retry_after_s: float) -> None:
        super().__init__(code, msg, status)
        self.retry_after_s = retry_after_s

    @property
    def banned(self) -> bool:
        return self.status == 418


class ServiceUnavailable(VenueError):
    """5xx that means the request failed on the venue's side; safe to retry."""

    retryable = True


class UnknownExecutionStatus(VenueError):
    """503 "Unknown error, please check your request or try again later.": the request may have been
    executed. Never retry an order blindly: query it by client order id first."""


class InvalidTimestamp(VenueError):
    """-1021: our clock (or offset) is off; re-estimate the server clock offset."""

    retryable = True


class InvalidSignature(VenueError):
    """-1022."""


class AuthenticationFailed(VenueError):
    """401 / -2014 / -2015: the key is wrong or lacks permission. Trading must stop."""


class OrderRejected(VenueError):
    """The venue refused an order (filters, margin, reduce-only, TIF, duplicate id...)."""


class UnknownOrder(VenueError):
    """-2011 (cancel of an unknown/closed order) or -2013 (query of an unknown order)."""


class BadRequest(VenueError):
    """Malformed parameters (-11xx) and other caller errors."""


_ORDER_CODES = {-1111, -2010, -2019, -2021, -2022, -2027, -4001, -4002, -4003, -4004, -4005, -4013, -4014, -4015,
                -4016, -4023, -4024, -4061, -4116, -4120, -4131, -4164, -5021, -5022,
                # amendments, priceMatch, STP and GTD (the 50xx order-execution codes)
                -5025, -5026, -5027, -5029, -5037, -5038, -5039, -5040, -5041}


def from_response(status: int, body: object, retry_after: str | None = None) -> VenueError:
    """Build the typed error for a non-2xx answer."""
    code, msg = -1000, str(body)
    if isinstance(body, dict):
        code = int(body.get("code", -1000))
        msg = str(body.get("msg", ""))
    if status in (418, 429):
        try:
            wait = float(retry_after) if retry_after else 60.0
        except ValueError:
            wait = 60.0
        return RateLimited(code, msg, status, wait)
    if status == 503 and "unknown" in msg.lower():
        return UnknownExecutionStatus(code, msg, status)
    if status >= 500:
        return ServiceUnavailable(code, msg, status)
    if status == 401 or code in (-2014, -2015):
        return AuthenticationFailed(code, msg, status)
    if code == -1021:
        return InvalidTimestamp(code, msg, status)
    if code == -1022:
        return InvalidSignature(code, msg, status)
    if code in (-2011, -2013):
        return UnknownOrder(code, msg, status)
    if code in _ORDER_CODES:
        return OrderRejected(code, msg, status)
    if code == -1015:
        return RateLimited(code, msg, status, float(retry_after or 10))
    return BadRequest(code, msg, status)
