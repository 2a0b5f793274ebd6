"""Who may pull a component's levers: a bearer token on every call of the Control service.

Owns the one check and the one way to present the token. When a component is given a token
(CELERIS_CONTROL_TOKEN), `ControlAuthInterceptor` refuses every call of `celeris.v1.Control` (GetStatus,
SetMode, Halt, Resume, Configure, Drain and any method added later: the check is on the service, not on a
list of methods) that does not carry exactly one `authorization: Bearer <token>` metadata entry, with
UNAUTHENTICATED and before the servicer sees the request; the comparison takes constant time
(hmac.compare_digest). Every other service on the port (grpc.health.v1 for the kubelet's probes, the
component's own API) is not this module's business, and /metrics is HTTP, served elsewhere.
`control_metadata(token)` is what every client of Control (the CLI, the other components, `celeris up`,
the dashboard, the operator) passes as `metadata=`; `read_token` is how a command finds its token
(a file, else the environment; never the command line, which every user of the machine can read).
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import grpc

from celeris.runtime.settings import SettingsError

CONTROL_SERVICE = "celeris.v1.Control"
"""The proto service every component exposes (proto/celeris/v1/control.proto)."""
AUTHORIZATION = "authorization"
SCHEME = "Bearer "
TOKEN_ENV = "CELERIS_CONTROL_TOKEN"
REFUSAL = "Control needs authorization: Bearer <token> (CELERIS_CONTROL_TOKEN)"


def control_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The metadata a Control call carries: `(("authorization", "Bearer <token>"),)`, or `()` without a
    token (a component started without one takes calls without it)."""
    return ((AUTHORIZATION, SCHEME + token),) if token else ()


def authorized(metadata: Iterable[Any], token: str) -> bool:
    """Whether `metadata` (gRPC's (key, value) pairs) presents `token`: exactly one authorization entry,
    equal to "Bearer <token>", compared in constant time. Anything else (none, two, bytes, another
    scheme) is not."""
    presented = [value for key, value in metadata if isinstance(key, str) and key.lower() == AUTHORIZATION]
    if len(presented) != 1 or not isinstance(presented[0], str):
        return False
    return hmac.compare_digest(presented[0].encode("utf-8", "surrogatepass"), (SCHEME + token).encode("utf-8"))


async def _refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)


_REFUSE = grpc.unary_unary_rpc_method_handler(_refuse)
"""Every Control method is unary-unary; the request is never even decoded."""


class ControlAuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses the Control calls that do not present the token; lets everything else through."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("a Control token cannot be empty")
        self._token = token
        self._prefix = f"/{CONTROL_SERVICE}/"

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        if not details.method.startswith(self._prefix) or authorized(details.invocation_metadata or (), self._token):
            return await continuation(details)
        return _REFUSE


def read_token(token_file: str = "", environ: Mapping[str, str] | None = None) -> str:
    """A command's Control token: the first line of `token_file` when given, else CELERIS_CONTROL_TOKEN
    ('' when neither). A file that cannot be read, or is empty, is an error (SettingsError): a command
    pointed at a token must not quietly call without one."""
    if token_file:
        try:
            text = Path(token_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"--token-file {token_file}: {getattr(exc, 'strerror', None) or exc}") from None
        token = text.strip()
        if not token or "\n" in token:
            raise SettingsError(f"--token-file {token_file}: expected one line with the token")
        return token
    environ = os.environ if environ is None else environ
    return environ.get(TOKEN_ENV, "").strip()
