"""An emulated Kubernetes API server for operator tests: just enough of the real one for kopf and the client.

Serves discovery, namespaced objects of the kinds the operator uses and the TradingSystem custom resource
with what kopf relies on: resourceVersion on every write, generation bumped on spec changes, a real
/status subresource (status writes never touch spec or generation), 409 on a stale resourceVersion, 422
when the CRD's schema or its CEL rules refuse an object, finalizers and deletionTimestamp, and watch
streams that deliver every change in order without gaps. Patches by content type: JSON patch, merge
patch, strategic merge patch (lists merged by their merge key) for built-in kinds, server-side apply (one
field manager). Failures a client must survive: `compact()` ends every watch and answers a watch resumed
from before with 410 Gone; `inject()` makes the next requests answer 409, 429 (with Retry-After) or 500.
Deployments become ready by themselves unless their image is listed in `never_ready` (how tests make an
image rollout fail). Requests other than the tests' own are recorded as RBAC verbs (`operator_verbs`).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from aiohttp import web

CRD_FILE = Path(__file__).resolve().parents[2] / "k8s" / "crds" / "tradingsystems.celeris.dev.yaml"

RESOURCES = {
    # (group, version, plural): (kind, namespaced)
    ("", "v1", "configmaps"): ("ConfigMap", True),
    ("", "v1", "services"): ("Service", True),
    ("", "v1", "secrets"): ("Secret", True),
    ("", "v1", "events"): ("Event", True),
    ("", "v1", "namespaces"): ("Namespace", False),
    ("apps", "v1", "deployments"): ("Deployment", True),
    ("policy", "v1", "poddisruptionbudgets"): ("PodDisruptionBudget", True),
    ("networking.k8s.io", "v1", "networkpolicies"): ("NetworkPolicy", True),
    ("celeris.dev", "v1alpha1", "tradingsystems"): ("TradingSystem", True),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions"): ("CustomResourceDefinition", False),
}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: a strategic merge without merge keys (every list is replaced)."""
    return strategic_merge_patch(target, patch, keys={})


MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "imagePullSecrets": "name", "conditions": "type"}
"""The patchMergeKey of the list fields the operator's objects have (k8s.io/api's struct tags); any other
list is replaced whole by a strategic merge patch, as the real server does for lists without one."""


def strategic_merge_patch(target: Any, patch: Any, field: str = "", keys: dict[str, str] | None = None) -> Any:
    """application/strategic-merge-patch+json for built-in kinds: maps merge, lists with a merge key merge
    element by element (an element with `$patch: delete` goes), other lists are replaced."""
    keys = MERGE_KEYS if keys is None else keys
    if isinstance(patch, list):
        key = keys.get(field)
        if keys and field == "ports" and patch and isinstance(patch[0], dict):
            key = "containerPort" if "containerPort" in patch[0] else "port"
        if key is None or not isinstance(target, list):
            return copy.deepcopy(patch)
        out = copy.deepcopy(target)
        for item in patch:
            index = next((i for i, t in enumerate(out) if isinstance(t, dict) and t.get(key) == item.get(key)), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del out[index]
            elif index is None:
                out.append(copy.deepcopy(item))
            else:
                out[index] = strategic_merge_patch(out[index], item, keys=keys)
        return out
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = strategic_merge_patch(out.get(key), value, key, keys)
    return out


class PatchTestFailed(Exception):
    pass


def json_patch(target: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 (test, add, remove, replace): what kopf uses for finalizers."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        if op["op"] == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op["value"]:
                raise PatchTestFailed(op["path"])
        elif op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op["value"]) if op["op"] == "add" \
                    else parent.__setitem__(int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
    return doc


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                              "reason": reason, "message": message}, status=code)


def _strict(request: web.Request) -> bool:
    return request.query.get("fieldValidation") == "Strict"


def _refusal(error: str) -> web.Response:
    """Unknown fields under fieldValidation=Strict are a bad request; everything else is Invalid."""
    if error.startswith("strict decoding error"):
        return _status(400, "BadRequest", error)
    return _status(422, "Invalid", error)


class ApiServer:
    def __init__(self) -> None:
        self.rv = 0
        self.objects: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
        self.log: list[tuple[int, tuple[str, str, str], str, dict[str, Any]]] = []
        self.changed = asyncio.Condition()
        self.never_ready: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.faults: list[list[Any]] = []
        """[method, path prefix, status, remaining] of injected failures (`inject`)."""
        self.compacted = 0
        self.watch_epoch = 0
        """Watch events up to this resourceVersion are gone (`compact`): older watches get 410 Gone."""
        self.operator_verbs: set[tuple[str, str, str]] = set()
        """(group, resource, verb) of every request but the tests' own (urllib's), as RBAC names them."""
        crd = yaml.safe_load(CRD_FILE.read_text())
        self.crd = crd
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        self.schema = schema
        self.validator = jsonschema.Draft4Validator(_to_jsonschema(schema))
        self._store(("apiextensions.k8s.io", "v1", "customresourcedefinitions"), "", {
            **copy.deepcopy(crd), "metadata": {"name": crd["metadata"]["name"]}})

    def inject(self, method: str, path_prefix: str, status: int, times: int = 1) -> None:
        """The next `times` requests of `method` under `path_prefix` answer `status` (409, 429, 500...)."""
        self.faults.append([method, path_prefix, status, times])

    def compact(self) -> None:
        """What etcd compaction does to watchers: every event so far is gone, open watches end, and a watch
        resumed from before gets 410 Gone (the client must list again)."""
        self.compacted = self.rv
        self.watch_epoch += 1

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        for fault in self.faults:
            method, prefix, status, remaining = fault
            if remaining > 0 and request.method == method and request.path.startswith(prefix):
                fault[3] -= 1
                reason = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError"}.get(status, "Injected")
                headers = {"Retry-After": "1"} if status == 429 else {}
                response = _status(status, reason, f"injected {status}")
                response.headers.update(headers)
                return response
        return await handler(request)

    def _verb(self, request: web.Request, verb: tuple[str, str, str]) -> None:
        if not request.headers.get("User-Agent", "").startswith("Python-urllib"):
            self.operator_verbs.add(verb)

    # -- storage ---------------------------------------------------------------------------------
    def _key(self, res: tuple[str, str, str], namespace: str, name: str) -> tuple[str, str, str, str, str]:
        return (*res, namespace, name)

    def _store(self, res: tuple[str, str, str], namespace: str, obj: dict[str, Any], event: str = "ADDED") -> dict[str, Any]:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[self._key(res, namespace, obj["metadata"]["name"])] = obj
        self.log.append((self.rv, res, event, copy.deepcopy(obj)))
        return obj

    async def _notify(self) -> None:  # also wakes watches to notice a compaction
        async with self.changed:
            self.changed.notify_all()

    def get(self, res: tuple[str, str, str], namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(self._key(res, namespace, name))

    def by_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for k, o in self.objects.items() if RESOURCES[k[:3]][0] == kind]

    # -- app ----------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults])
        r = app.router
        r.add_get("/version", self._version)
        r.add_get("/api", self._core_versions)
        r.add_get("/apis", self._groups)
        r.add_get("/api/{version}", self._resource_list)
        r.add_get("/apis/{group}/{version}", self._resource_list)
        for prefix in ("/api/{version}", "/apis/{group}/{version}"):
            r.add_route("*", prefix + "/{plural}", self._collection)
            r.add_route("*", prefix + "/namespaces/{namespace}/{plural}", self._collection)
            r.add_route("*", prefix + "/{plural}/{name}", self._item)
            r.add_route("*", prefix + "/namespaces/{namespace}/{plural}/{name}", self._item)
            r.add_route("*", prefix + "/namespaces/{namespace}/{plural}/{name}/status", self._status_item)
        return app

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.0-emulated"})

    async def _core_versions(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async def _groups(self, request: web.Request) -> web.Response:
        groups = sorted({(g, v) for g, v, _ in RESOURCES if g})
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
             "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]})

    async def _resource_list(self, request: web.Request) -> web.Response:
        group, version = request.match_info.get("group", ""), request.match_info["version"]
        resources = []
        for (g, v, plural), (kind, namespaced) in RESOURCES.items():
            if g == group and v == version:
                verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
                resources.append({"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
                                  "kind": kind, "verbs": verbs})
                if plural == "tradingsystems":
                    resources.append({"name": f"{plural}/status", "singularName": "", "namespaced": True,
                                      "kind": kind, "verbs": ["get", "patch", "update"]})
        gv = f"{group}/{version}" if group else version
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                  "resources": resources})

    def _res(self, request: web.Request) -> tuple[str, str, str] | None:
        res = (request.match_info.get("group", ""), request.match_info["version"], request.match_info["plural"])
        return res if res in RESOURCES else None

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        res = self._res(request)
        if res is None:
            return _status(404, "NotFound", "no such resource")
        namespace = request.match_info.get("namespace", "")
        self.requests.append((request.method, request.path))
        watching = request.query.get("watch") in ("true", "1")
        self._verb(request, (res[0], res[2], {"GET": "watch" if watching else "list", "POST": "create"}.get(request.method,
                                                                                                    request.method)))
        if request.method == "GET":
            if watching:
                return await self._watch(request, res, namespace)
            selector = dict(p.split("=", 1) for p in request.query.get("labelSelector", "").split(",") if "=" in p)
            items = [copy.deepcopy(o) for k, o in self.objects.items() if k[:3] == res and (not namespace or k[3] == namespace)
                     and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in selector.items())]
            for item in items:  # as the real server: list items carry neither kind nor apiVersion
                item.pop("kind", None)
                item.pop("apiVersion", None)
            kind = RESOURCES[res][0]
            return web.json_response({"kind": f"{kind}List", "apiVersion": "/".join(p for p in res[:2] if p),
                                      "metadata": {"resourceVersion": str(self.rv)}, "items": items})
        if request.method == "POST":
            body = await request.json()
            return await self._create(res, namespace, body, _strict(request))
        return _status(405, "MethodNotAllowed", request.method)

    async def _create(self, res: tuple[str, str, str], namespace: str, body: dict[str, Any],
                      strict: bool = False) -> web.Response:
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if self.get(res, namespace, meta.get("name", "")) is not None:
            return _status(409, "AlreadyExists", f"{meta.get('name')} already exists")
        kind = RESOURCES[res][0]
        body.setdefault("kind", kind)
        body.setdefault("apiVersion", "/".join(p for p in res[:2] if p))
        if namespace:
            meta["namespace"] = namespace
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        if kind == "Secret" and "stringData" in body:
            body.setdefault("data", {}).update({k: base64.b64encode(v.encode()).decode()
                                                for k, v in body.pop("stringData").items()})
        if kind == "TradingSystem":
            error = self._validate(body, None, strict)
            if error:
                return _refusal(error)
        self._settle_deployment(body)
        obj = self._store(res, namespace, body)
        await self._notify()
        return web.json_response(obj, status=201)

    async def _item(self, request: web.Request) -> web.Response:
        res = self._res(request)
        if res is None:
            return _status(404, "NotFound", "no such resource")
        namespace, name = request.match_info.get("namespace", ""), request.match_info["name"]
        self.requests.append((request.method, request.path))
        self._verb(request, (res[0], res[2], {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            request.method, request.method)))
        current = self.get(res, namespace, name)
        applying = request.method == "PATCH" and request.content_type == "application/apply-patch+yaml"
        if current is None and applying:  # server-side apply creates what is absent (RBAC: patch and create)
            self._verb(request, (res[0], res[2], "create"))
            return await self._create(res, namespace, yaml.safe_load(await request.text()))
        if current is None:
            return _status(404, "NotFound", f"{res[2]} {name} not found")
        if request.method == "GET":
            return web.json_response(copy.deepcopy(current))
        if request.method == "DELETE":
            return await self._delete(res, namespace, current)
        if applying:  # one field manager: what it applies is the object (server fields and status stay)
            body = yaml.safe_load(await request.text())
            updated = {**copy.deepcopy(body), "status": current.get("status")}
            updated["metadata"] = {**copy.deepcopy(body.get("metadata", {})), **{
                k: current["metadata"][k] for k in ("resourceVersion", "finalizers", "deletionTimestamp")
                if k in current["metadata"]}}
            if updated.get("status") is None:
                updated.pop("status")
            return await self._update(res, namespace, current, updated)
        if request.method in ("PATCH", "PUT"):
            body = await request.json()
            if request.method == "PUT":
                sent_rv = body.get("metadata", {}).get("resourceVersion")
                if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                    return _status(409, "Conflict", "the object has been modified")
                updated = copy.deepcopy(body)
                updated["status"] = current.get("status", {}) if RESOURCES[res][0] == "TradingSystem" else body.get("status")
            else:
                sent_rv = body.get("metadata", {}).get("resourceVersion") if isinstance(body, dict) else None
                if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                    return _status(409, "Conflict", "the object has been modified")
                if isinstance(body, list):
                    try:
                        updated = json_patch(current, body)
                    except PatchTestFailed:
                        return _status(409, "Conflict", "the object has been modified (patch test failed)")
                elif request.content_type == "application/strategic-merge-patch+json":
                    if RESOURCES[res][0] == "TradingSystem":  # custom resources take no strategic merge
                        return _status(415, "UnsupportedMediaType",
                                       "strategic merge patch is not supported for custom resources")
                    updated = strategic_merge_patch(current, body)
                else:
                    updated = merge_patch(current, body)
                if RESOURCES[res][0] == "TradingSystem":
                    updated["status"] = current.get("status", {})  # status only through /status
            return await self._update(res, namespace, current, updated, _strict(request))
        return _status(405, "MethodNotAllowed", request.method)

    async def _status_item(self, request: web.Request) -> web.Response:
        res = self._res(request)
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        current = self.get(res, namespace, name) if res else None
        if res:
            self._verb(request, (res[0], f"{res[2]}/status", {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(
                request.method, request.method)))
        if current is None:
            return _status(404, "NotFound", "not found")
        if request.method == "GET":
            return web.json_response(copy.deepcopy(current))
        body = await request.json()
        updated = copy.deepcopy(current)
        updated["status"] = merge_patch(current.get("status", {}), body.get("status", {})) \
            if request.method == "PATCH" else body.get("status", {})
        updated["metadata"] = copy.deepcopy(current["metadata"])
        # The real server validates a status write as a whole object: the status schema and every rule
        # (root transition rules see the old status too).
        error = self._validate(updated, current, _strict(request))
        if error:
            return _refusal(error)
        obj = self._store(res, namespace, updated, "MODIFIED")  # type: ignore[arg-type]
        await self._notify()
        return web.json_response(obj)

    async def _update(self, res: tuple[str, str, str], namespace: str, current: dict[str, Any],
                      updated: dict[str, Any], strict: bool = False) -> web.Response:
        meta = updated["metadata"]
        for fixed in ("uid", "creationTimestamp", "name", "namespace"):
            if fixed in current["metadata"]:
                meta[fixed] = current["metadata"][fixed]
        meta["generation"] = current["metadata"].get("generation", 1)
        if updated.get("spec") != current.get("spec"):
            meta["generation"] += 1
            if RESOURCES[res][0] == "TradingSystem":
                error = self._validate(updated, current, strict)
                if error:
                    return _refusal(error)
        self._settle_deployment(updated)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.objects[self._key(res, namespace, meta["name"])]
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            self.log.append((self.rv, res, "DELETED", copy.deepcopy(updated)))
            self._collect_children(updated)
            await self._notify()
            return web.json_response(updated)
        obj = self._store(res, namespace, updated, "MODIFIED")
        await self._notify()
        return web.json_response(obj)

    async def _delete(self, res: tuple[str, str, str], namespace: str, current: dict[str, Any]) -> web.Response:
        if current["metadata"].get("finalizers"):
            updated = copy.deepcopy(current)
            updated["metadata"].setdefault("deletionTimestamp", _now())
            obj = self._store(res, namespace, updated, "MODIFIED")
            await self._notify()
            return web.json_response(obj)
        del self.objects[self._key(res, namespace, current["metadata"]["name"])]
        self.rv += 1
        self.log.append((self.rv, res, "DELETED", copy.deepcopy(current)))
        self._collect_children(current)
        await self._notify()
        return web.json_response({"kind": "Status", "status": "Success"})

    def _collect_children(self, owner: dict[str, Any]) -> None:
        """The garbage collector: objects whose owner reference points at a deleted owner go too."""
        uid = owner["metadata"]["uid"]
        for key, obj in list(self.objects.items()):
            if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", [])):
                del self.objects[key]
                self.rv += 1
                self.log.append((self.rv, key[:3], "DELETED", copy.deepcopy(obj)))

    async def _watch(self, request: web.Request, res: tuple[str, str, str], namespace: str) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 60)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        if since and since < self.compacted:  # as the real server: an ERROR event with a 410 Status
            gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
                    "message": f"too old resource version: {since} ({self.compacted})"}
            await resp.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            return resp
        deadline = asyncio.get_running_loop().time() + timeout
        position = since
        epoch = self.watch_epoch
        try:
            while asyncio.get_running_loop().time() < deadline and epoch == self.watch_epoch:
                for rv, r, event, obj in list(self.log):
                    if rv <= position:
                        continue
                    position = rv
                    if r == res and (not namespace or obj["metadata"].get("namespace", "") == namespace):
                        await resp.write(json.dumps({"type": event, "object": obj}).encode() + b"\n")
                async with self.changed:
                    try:
                        await asyncio.wait_for(self.changed.wait(), max(0.05, deadline - asyncio.get_running_loop().time()))
                    except asyncio.TimeoutError:
                        pass
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    # -- behaviour of the real thing ------------------------------------------------------------------
    def _settle_deployment(self, obj: dict[str, Any]) -> None:
        if obj.get("kind") != "Deployment":
            return
        replicas = obj.get("spec", {}).get("replicas", 1)
        images = [c.get("image") for c in obj["spec"]["template"]["spec"]["containers"]]
        ready = 0 if any(i in self.never_ready for i in images) else replicas
        obj["status"] = {"observedGeneration": obj["metadata"].get("generation", 1), "replicas": replicas,
                         "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready}

    def _validate(self, obj: dict[str, Any], old: dict[str, Any] | None, strict: bool = False) -> str:
        """What the real API server says of a TradingSystem write ("" when it is accepted), in its words:
        defaults, then unknown fields (refused when `strict`, as with fieldValidation=Strict, else pruned
        as the server does), the OpenAPI schema, list-type set/map uniqueness and every
        x-kubernetes-validations rule at every level (message or messageExpression), transition rules
        (oldSelf) only where an old value exists. Every error is reported, as the real server does."""
        _apply_defaults(self.schema, obj)
        unknown = _unknown_fields(self.schema, obj, "", prune=not strict)
        if strict and unknown:
            return "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
        errors = [f"{_path(e.path) or '<root>'}: {e.message}"
                  for e in sorted(self.validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))]
        errors += _list_type_errors(self.schema, obj, "")
        if not errors:  # CEL runs on a well-typed object (a rule reading a missing required field errs)
            errors += _cel_errors(self.schema, _cel_view(obj), _cel_view(old) if old else None, "")
        if not errors:
            return ""
        name = obj.get("metadata", {}).get("name", "")
        return f'TradingSystem.celeris.dev "{name}" is invalid: ' + (errors[0] if len(errors) == 1 else
                                                                       "[" + ", ".join(errors) + "]")


def _cel_view(obj: dict[str, Any]) -> dict[str, Any]:
    """CEL sees only metadata.name and metadata.generateName."""
    return {**obj, "metadata": {k: v for k, v in obj.get("metadata", {}).items() if k in ("name", "generateName")}}


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unknown_fields(schema: dict[str, Any], value: Any, path: str, prune: bool) -> list[str]:
    """Fields the structural schema does not declare (metadata and preserve-unknown subtrees excepted)."""
    found: list[str] = []
    if isinstance(value, dict) and (path == "" or schema.get("type") == "object"):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key in list(value):
            sub = f"{path}.{key}" if path else key
            if path == "" and key in ("apiVersion", "kind", "metadata"):
                continue
            if key in props:
                found += _unknown_fields(props[key], value[key], sub, prune)
            elif isinstance(extra, dict):
                found += _unknown_fields(extra, value[key], sub, prune)
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and extra is not True:
                found.append(sub)
                if prune:
                    del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += _unknown_fields(schema["items"], item, f"{path}[{i}]", prune)
    return found


def _list_type_errors(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    """x-kubernetes-list-type set and map: no two items (or keys) alike."""
    errors: list[str] = []
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += _list_type_errors(sub, value[key], f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        kind, seen = schema.get("x-kubernetes-list-type"), []
        for i, item in enumerate(value):
            if kind == "set":
                identity: Any = item
            elif kind == "map":
                identity = {k: item.get(k) for k in schema.get("x-kubernetes-list-map-keys", [])}
            else:
                identity = None
            if identity is not None:
                if identity in seen:
                    errors.append(f"{path}[{i}]: Duplicate value: {json.dumps(identity)}")
                seen.append(identity)
            errors += _list_type_errors(schema.get("items", {}), item, f"{path}[{i}]")
    return errors


_CEL = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def _cel(expression: str, activation: dict[str, Any]) -> Any:
    if expression not in _PROGRAMS:
        _PROGRAMS[expression] = _CEL.program(_CEL.compile(expression))
    result = _PROGRAMS[expression].evaluate({k: celpy.json_to_cel(v) for k, v in activation.items()})
    if isinstance(result, celpy.CELEvalError):
        raise ValueError(str(result))
    return result


def _cel_errors(schema: dict[str, Any], value: Any, old: Any, path: str) -> list[str]:
    """Every x-kubernetes-validations rule, depth first, with self (and oldSelf, where an old value
    correlates: object properties and items of map lists) bound as the real API server binds them."""
    errors: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"] and old is None:
            continue
        activation = {"self": value} if old is None else {"self": value, "oldSelf": old}
        try:
            ok = bool(_cel(rule["rule"], activation))
        except Exception as exc:  # noqa: BLE001 - the real server reports an evaluation error as a refusal
            errors.append(f"{path or '<root>'}: rule evaluation error: {exc}")
            continue
        if not ok:
            message = rule.get("message") or f"failed rule: {rule['rule']}"
            if rule.get("messageExpression"):
                try:
                    message = str(_cel(rule["messageExpression"], activation))
                except Exception:  # noqa: BLE001 - the real server falls back to message
                    pass
            kind = {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value), "value")
            errors.append(f"{path or '<root>'}: Invalid value: \"{kind}\": {message}")
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value and key != "metadata":
                old_sub = old.get(key) if isinstance(old, dict) else None
                errors += _cel_errors(sub, value[key], old_sub, f"{path}.{key}" if path else key)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                old_sub = old.get(key) if isinstance(old, dict) else None
                errors += _cel_errors(extra, item, old_sub, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        keys = schema.get("x-kubernetes-list-map-keys") if schema.get("x-kubernetes-list-type") == "map" else None
        for i, item in enumerate(value):
            old_item = None
            if keys and isinstance(old, list) and isinstance(item, dict):
                old_item = next((o for o in old if all(o.get(k) == item.get(k) for k in keys)), None)
            errors += _cel_errors(schema.get("items", {}), item, old_item, f"{path}[{i}]")
    return errors


def _to_jsonschema(schema: Any) -> Any:
    """OpenAPI v3 (Kubernetes flavour) -> JSON Schema draft 4: drop the x-kubernetes-* keys. A pattern's
    final `$` becomes `\\Z`: Go's `$` is the end of the text, Python's also matches before a final newline."""
    if isinstance(schema, dict):
        out = {k: _to_jsonschema(v) for k, v in schema.items() if not k.startswith("x-kubernetes")}
        if isinstance(out.get("pattern"), str) and out["pattern"].endswith("$") and not out["pattern"].endswith("\\$"):
            out["pattern"] = out["pattern"][:-1] + "\\Z"
        return out
    if isinstance(schema, list):
        return [_to_jsonschema(v) for v in schema]
    return schema


def _apply_defaults(schema: dict[str, Any], value: Any) -> None:
    if not isinstance(value, dict) or schema.get("type") != "object":
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            if sub.get("type") == "object":
                _apply_defaults(sub, value[key])
            elif sub.get("type") == "array" and isinstance(value[key], list):
                for item in value[key]:
                    _apply_defaults(sub.get("items", {}), item)
