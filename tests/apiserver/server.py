#!/usr/bin/env python3
"""A local Kubernetes API server for tests (meshmetric-operator issue 4).

It follows the documented semantics of the 1.32 apiserver closely enough for the
real kubectl 1.32 and for the operator: discovery, the minimal /openapi/v3,
get/list/watch/create/update/patch/delete with Status errors, one global
resourceVersion, CRDs at run time, /status subresources, admission webhooks over
HTTPS, leases, fault injection (/_control/...) and an optional on-disk snapshot.

See tests/apiserver/README.md for usage. Standard library + python3-yaml only.
"""
import argparse
import base64
import collections
import copy
import datetime
import hashlib
import http.client
import http.server
import json
import os
import queue
import random
import re
import select
import signal
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gotime  # noqa: E402
import jsonpatch_v4  # noqa: E402
import k8sproto  # noqa: E402
import mergepatch  # noqa: E402
import pki  # noqa: E402
import rbac  # noqa: E402
import schema  # noqa: E402
import tables  # noqa: E402

try:
    import yaml
except ImportError:  # apply-patch+yaml bodies from kubectl are JSON anyway
    yaml = None

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
           413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
           429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
GENERIC_MESSAGES = {
    400: "the server rejected our request for an unknown reason",
    401: "Unauthorized", 403: "Forbidden",
    404: "the server could not find the requested resource",
    405: "the server does not allow this method on the requested resource",
    409: "the server reported a conflict", 410: "the server has asked for the client to provide credentials",
    422: "the server rejected our request due to an error in our request",
    429: "the server has received too many requests and has asked us to try again later",
    500: "an error on the server has prevented the request from succeeding",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be processing the request",
}
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def qbool(q, name):
    """runtime.Convert_Slice_string_To_bool: "0"/"false" are false, anything else true."""
    if name not in q:
        return False
    return q[name].lower() not in ("0", "false")


# ----------------------------------------------------------------------------- errors

class ApiError(Exception):
    def __init__(self, code, message, reason=None, details=None, status="Failure", list_meta=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else REASONS.get(code, "")
        self.details = details
        self.list_meta = list_meta or {}

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": dict(self.list_meta), "status": "Failure",
              "message": self.message}
        if self.reason:
            st["reason"] = self.reason
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st


class PlainError(Exception):
    """A reply that is not a Status: http.Error(w, text, code) from a filter in front of the API
    handlers (priority-and-fairness, graceful shutdown, health checks)."""

    def __init__(self, code, text, headers=()):
        super().__init__(text)
        self.code = code
        self.text = text
        self.headers = list(headers)


class RawStatusError(ApiError):
    """An error whose Status body is given verbatim (webhook denials)."""

    def __init__(self, st):
        super().__init__(st.get("code", 400), st.get("message", ""), st.get("reason", ""), st.get("details"))
        self.st = st

    def status(self):
        return self.st


def _details(res, name):
    d = {}
    if name:
        d["name"] = name
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return d


def not_found(res, name):
    return ApiError(404, '%s "%s" not found' % (res.gr, name), "NotFound", _details(res, name))


def already_exists(res, name):
    return ApiError(409, '%s "%s" already exists' % (res.gr, name), "AlreadyExists", _details(res, name))


def conflict(res, name, why="the object has been modified; please apply your changes to the latest version and try again"):
    return ApiError(409, 'Operation cannot be fulfilled on %s "%s": %s' % (res.gr, name, why),
                    "Conflict", _details(res, name))


def aggregate(msgs):
    """utilerrors.NewAggregate(...).Error() over field.ErrorList.ToAggregate (duplicates dropped)."""
    seen, out = set(), []
    for m in msgs:
        if m not in seen:
            seen.add(m)
            out.append(m)
    return out[0] if len(out) == 1 else "[" + ", ".join(out) + "]"


def invalid_gk(gk, name, causes, group="", kind=""):
    """errors.NewInvalid(qualifiedKind, name, errs): causes are (field, type, message-tail)."""
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    d["causes"] = [{"reason": t, "message": m, "field": f} for f, t, m in causes]
    return ApiError(422, '%s "%s" is invalid: %s' % (gk, name, aggregate(["%s: %s" % (f, m) for f, _t, m in causes])),
                    "Invalid", d)


def invalid(res, name, causes):
    """causes: list of (field, type, message-tail)."""
    return invalid_gk(res.gk, name, causes, res.group, res.kind)


def decode_error(res, err):
    """handlers/rest.go transformDecodeError for a body whose kind is known."""
    return bad_request('%s in version "%s" cannot be handled as a %s: %s' % (res.kind, res.version, res.kind, err))


def patch_invalid(value, err):
    """patch.go: a patched object that does not decode -> NewInvalid(GroupKind{}, "", patch: Invalid value)."""
    return invalid_gk("", "", [("patch", "FieldValueInvalid", "Invalid value: %s: %s" % (schema.go_quote(value), err))])


def bad_request(msg):
    return ApiError(400, msg, "BadRequest")


def internal_error(msg):
    return ApiError(500, "Internal error occurred: %s" % msg, "InternalError",
                    {"causes": [{"message": msg}]})


# ----------------------------------------------------------------------------- resources

class Res:
    """One served (group, version, resource)."""

    def __init__(self, group, version, plural, kind, namespaced, singular=None, short=(),
                 status=False, builtin=True, storage=None, categories=(), generation=True,
                 unconditional_update=True, create_on_update=False, return_deleted=False,
                 list_kind=None, to_view=None, from_view=None, verbs=None, virtual=False, subs=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced = namespaced
        self.singular = singular or kind.lower()
        self.short = list(short)
        self.status = status
        self.builtin = builtin
        self.storage = storage or (group, plural)
        self.categories = list(categories)
        self.generation = generation
        self.unconditional_update = unconditional_update
        self.create_on_update = create_on_update
        self.return_deleted = return_deleted
        self.list_kind = list_kind or kind + "List"
        self.to_view_fn = to_view
        self.from_view_fn = from_view
        self.verbs = verbs or ALL_VERBS
        self.virtual = virtual  # create-only, nothing stored (reviews)
        self.subs = subs or {}  # extra subresources: name -> verbs
        self.schema = None  # CRD openAPIV3Schema of this version
        self.schema_defaults = False
        self.printer = None  # (columns, cells, conditions) for Table output
        self.selectable = {}  # CRD selectableFields: label -> path

    @property
    def gv(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def gr(self):
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural

    @property
    def gk(self):
        return "%s.%s" % (self.kind, self.group) if self.group else self.kind

    def to_view(self, obj):
        if obj is None:
            return None
        o = self.to_view_fn(obj) if self.to_view_fn else dict(obj)
        o["apiVersion"] = self.gv
        o["kind"] = self.kind
        return o

    def from_view(self, obj):
        return self.from_view_fn(obj) if self.from_view_fn else obj


EVENT_MAP = [("regarding", "involvedObject"), ("note", "message"), ("deprecatedSource", "source"),
             ("deprecatedFirstTimestamp", "firstTimestamp"), ("deprecatedLastTimestamp", "lastTimestamp"),
             ("deprecatedCount", "count"), ("reportingController", "reportingComponent")]


def event_to_v1(obj):  # core -> events.k8s.io
    o = dict(obj)
    for new, old in EVENT_MAP:
        if old in o:
            o[new] = o.pop(old)
    return o


def event_from_v1(obj):  # events.k8s.io -> core
    o = dict(obj)
    for new, old in EVENT_MAP:
        if new in o:
            o[old] = o.pop(new)
    o["apiVersion"], o["kind"] = "v1", "Event"
    return o


MICRO, TIME = gotime.RFC3339_MICRO, gotime.RFC3339
# metav1.MicroTime / metav1.Time fields the typed decoders parse, by (group, plural) of the request:
# (path, layout, pointer?, Go struct holding the field). A non-pointer field that is absent is
# written back as null, as the Go types do.
TIME_FIELDS = {
    ("coordination.k8s.io", "leases"): [("spec.acquireTime", MICRO, True, "LeaseSpec"),
                                        ("spec.renewTime", MICRO, True, "LeaseSpec")],
    ("", "events"): [("eventTime", MICRO, False, "Event"), ("firstTimestamp", TIME, False, "Event"),
                     ("lastTimestamp", TIME, False, "Event"), ("series.lastObservedTime", MICRO, False, "EventSeries")],
    ("events.k8s.io", "events"): [("eventTime", MICRO, False, "Event"), ("deprecatedFirstTimestamp", TIME, False, "Event"),
                                  ("deprecatedLastTimestamp", TIME, False, "Event"),
                                  ("series.lastObservedTime", MICRO, False, "EventSeries")],
    ("", "pods"): [("status.startTime", TIME, True, "PodStatus"),
                   ("status.conditions[].lastProbeTime", TIME, False, "PodCondition"),
                   ("status.conditions[].lastTransitionTime", TIME, False, "PodCondition")],
    ("", "namespaces"): [("status.conditions[].lastTransitionTime", TIME, False, "NamespaceCondition")],
}


def parse_time_fields(res, obj):
    """Decode and re-encode the time fields of a typed object (micro_time.go / time.go):
    exactly the layout, any offset, written back in UTC. Raises schema.DecodeError or
    gotime.GoTimeError with the decoder's message."""
    for path, layout, pointer, struct in TIME_FIELDS.get((res.group, res.plural), ()):
        _walk_time(obj, path.split("."), layout, pointer, struct, path.replace("[]", ""))


def _walk_time(node, parts, layout, pointer, struct, full):
    if not isinstance(node, dict):
        return
    key = parts[0]
    if key.endswith("[]"):
        items = node.get(key[:-2])
        if isinstance(items, list):
            for it in items:
                _walk_time(it, parts[1:], layout, pointer, struct, full)
        return
    if len(parts) > 1:
        _walk_time(node.get(key), parts[1:], layout, pointer, struct, full)
        return
    if key not in node:
        if not pointer:
            node[key] = None
        return
    v = node[key]
    if v is None:
        if pointer:
            del node[key]
        return
    if not isinstance(v, str):
        raise schema.type_error(v, struct, full, "string")
    dt, ns = gotime.parse(layout, v)
    node[key] = gotime.format_micro(dt, ns) if layout == MICRO else gotime.format_time(dt)


def go_json(obj):
    """encoding/json.Marshal of a map: sorted keys, HTML characters escaped."""
    s = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def builtin_resources():
    R = Res
    return [
        R("", "v1", "namespaces", "Namespace", False, short=["ns"], status=True, generation=False),
        R("", "v1", "pods", "Pod", True, short=["po"], status=True, categories=["all"], generation=False,
          return_deleted=True),
        R("", "v1", "services", "Service", True, short=["svc"], status=True, categories=["all"], generation=False),
        R("", "v1", "secrets", "Secret", True, generation=False),
        R("", "v1", "configmaps", "ConfigMap", True, short=["cm"], generation=False),
        R("", "v1", "events", "Event", True, short=["ev"], generation=False),
        R("events.k8s.io", "v1", "events", "Event", True, generation=False,
          storage=("", "events"), to_view=event_to_v1, from_view=event_from_v1),
        R("", "v1", "serviceaccounts", "ServiceAccount", True, short=["sa"], generation=False,
          subs={"token": ["create"]}),
        R("coordination.k8s.io", "v1", "leases", "Lease", True, generation=False,
          unconditional_update=False, create_on_update=True),
        R("rbac.authorization.k8s.io", "v1", "roles", "Role", True, generation=False),
        R("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, generation=False),
        R("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, generation=False),
        R("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, generation=False),
        R("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
          verbs=["create"], virtual=True),
        R("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False,
          verbs=["create"], virtual=True),
        R("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False,
          verbs=["create"], virtual=True),
        R("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
          "MutatingWebhookConfiguration", False, categories=["api-extensions"]),
        R("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
          "ValidatingWebhookConfiguration", False, categories=["api-extensions"]),
        R("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
          short=["crd", "crds"], status=True, categories=["api-extensions"]),
    ]


# ----------------------------------------------------------------------------- built-in validation

_QNAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_QNAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
              "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
              "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_DNS1123_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def is_dns1123_subdomain(v):
    """apimachinery pkg/util/validation IsDNS1123Subdomain."""
    errs = []
    if len(v) > 253:
        errs.append("must be no more than 253 characters")
    if not NAME_RE.match(v):
        errs.append(_DNS1123_MSG)
    return errs


def is_qualified_name(v):
    """apimachinery pkg/util/validation IsQualifiedName."""
    errs = []
    parts = v.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in is_dns1123_subdomain(prefix)]
    else:
        return ["a qualified name " + _QNAME_MSG[:-1] + ") with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _QNAME_RE.match(name):
        errs.append("name part " + _QNAME_MSG)
    return errs


def _ref_struct(r):
    """%#v of a core.ObjectReference."""
    r = r if isinstance(r, dict) else {}
    return "core.ObjectReference{Kind:%s, Namespace:%s, Name:%s, UID:%s, APIVersion:%s, ResourceVersion:%s, FieldPath:%s}" % tuple(
        schema.go_quote(str(r.get(k) or "")) for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"))


def validate_event(res, ev, old):
    """kubernetes/kubernetes pkg/apis/core/validation/events.go ValidateEventCreate/ValidateEventUpdate.
    ev and old are the core/v1 form, so field paths use the internal (core) names, as the real
    server reports them for both groups."""
    causes = []
    ns = (ev.get("metadata") or {}).get("namespace") or ""
    inv = ev.get("involvedObject") if isinstance(ev.get("involvedObject"), dict) else {}
    inv_ns = inv.get("namespace") or ""
    mismatch = ("involvedObject.namespace", "FieldValueInvalid", 'Invalid value: %s: does not match event.namespace' % schema.go_quote(inv_ns))
    s = lambda k: ev.get(k) if isinstance(ev.get(k), str) else ""
    # legacyValidateEvent
    if not ev.get("eventTime"):
        if not inv_ns:
            if ns not in ("", "default"):
                causes.append(mismatch)
        elif ns != inv_ns:
            causes.append(mismatch)
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            causes.append(mismatch)
        if not s("reportingComponent"):
            causes.append(("reportingController", "FieldValueRequired", "Required value"))
        for m in is_qualified_name(s("reportingComponent")):
            causes.append(("reportingController", "FieldValueInvalid", "Invalid value: %s: %s" % (schema.go_quote(s("reportingComponent")), m)))
        if not s("reportingInstance"):
            causes.append(("reportingInstance", "FieldValueRequired", "Required value"))
        if len(s("reportingInstance")) > 128:
            causes.append(("reportingInstance", "FieldValueInvalid", 'Invalid value: "": can have at most 128 characters'))
        if not s("action"):
            causes.append(("action", "FieldValueRequired", "Required value"))
        if len(s("action")) > 128:
            causes.append(("action", "FieldValueInvalid", 'Invalid value: "": can have at most 128 characters'))
        if not s("reason"):
            causes.append(("reason", "FieldValueRequired", "Required value"))
        if len(s("reason")) > 128:
            causes.append(("reason", "FieldValueInvalid", 'Invalid value: "": can have at most 128 characters'))
        if len(s("message").encode()) > 1024:
            causes.append(("message", "FieldValueInvalid", 'Invalid value: "": can have at most 1024 characters'))
    for m in is_dns1123_subdomain(ns):
        causes.append(("namespace", "FieldValueInvalid", "Invalid value: %s: %s" % (schema.go_quote(ns), m)))
    if res.group != "events.k8s.io":
        return causes  # core/v1: no further validation, for backwards compatibility
    series = ev.get("series")
    if old is None or json.dumps(series, sort_keys=True) != json.dumps(old.get("series"), sort_keys=True):
        if isinstance(series, dict):
            if int(series.get("count") or 0) < 2:
                causes.append(("series.count", "FieldValueInvalid", 'Invalid value: "": should be at least 2'))
            if not series.get("lastObservedTime"):
                causes.append(("series.lastObservedTime", "FieldValueRequired", "Required value"))
    if old is None:
        if not ev.get("eventTime"):
            causes.append(("eventTime", "FieldValueRequired", "Required value"))
        if s("type") not in ("Normal", "Warning"):
            causes.append(("type", "FieldValueInvalid", 'Invalid value: "": has invalid value: %s' % s("type")))
        for f in ("firstTimestamp", "lastTimestamp"):
            if ev.get(f):
                causes.append((f, "FieldValueInvalid", 'Invalid value: "": needs to be unset'))
        if ev.get("count"):
            causes.append(("count", "FieldValueInvalid", 'Invalid value: "": needs to be unset'))
        src = ev.get("source") if isinstance(ev.get("source"), dict) else {}
        if src.get("component") or src.get("host"):
            causes.append(("source", "FieldValueInvalid", 'Invalid value: "": needs to be unset'))
        return causes
    immutable = "field is immutable"

    def same(k):
        return json.dumps(ev.get(k), sort_keys=True) == json.dumps(old.get(k), sort_keys=True)
    if not same("involvedObject"):
        causes.append(("involvedObject", "FieldValueInvalid", "Invalid value: %s: %s" % (_ref_struct(inv), immutable)))
    for f, field in (("reason", "reason"), ("message", "message"), ("source", "source"), ("firstTimestamp", "firstTimestamp"),
                     ("lastTimestamp", "lastTimestamp"), ("count", "count"), ("reason", "reason"), ("type", "type"),
                     ("eventTime", "eventTime"), ("action", "action"), ("related", "related"),
                     ("reportingComponent", "reportingController"), ("reportingInstance", "reportingInstance")):
        if not same(f):
            v = ev.get(f)
            causes.append((field, "FieldValueInvalid", "Invalid value: %s: %s" % (
                schema.field_value(v) if not isinstance(v, dict) else schema.go_sharp_v(v), immutable)))
    return causes


def crd_default_errors(s, path):
    """apiextensions pkg/apiserver/schema/defaulting/validation.go: a default must be valid against
    its own schema (checked on the pruned default)."""
    out = []
    if not isinstance(s, dict):
        return out
    if "default" in s and s["default"] is not None:
        d = copy.deepcopy(s["default"])
        if isinstance(d, (dict, list)):
            schema.prune(d, s, is_root=False)
        for f, t, m in schema.validate(d, s):
            out.append((path + ".default" + ("." + f if f else ""), t, m.replace(f + " in body", "in body") if f else m))
    for k, v in sorted((s.get("properties") or {}).items()):
        out += crd_default_errors(v, "%s.properties[%s]" % (path, k))
    if isinstance(s.get("items"), dict):
        out += crd_default_errors(s["items"], path + ".items")
    if isinstance(s.get("additionalProperties"), dict):
        out += crd_default_errors(s["additionalProperties"], path + ".additionalProperties")
    return out


def validate_lease(obj):
    """kubernetes/kubernetes pkg/apis/coordination/validation ValidateLeaseSpec."""
    causes = []
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    d = spec.get("leaseDurationSeconds")
    if isinstance(d, int) and not isinstance(d, bool) and d <= 0:
        causes.append(("spec.leaseDurationSeconds", "FieldValueInvalid", "Invalid value: %d: must be greater than 0" % d))
    t = spec.get("leaseTransitions")
    if isinstance(t, int) and not isinstance(t, bool) and t < 0:
        causes.append(("spec.leaseTransitions", "FieldValueInvalid", "Invalid value: %d: must be greater than or equal to 0" % t))
    return causes


# ----------------------------------------------------------------------------- selectors

_LBL_TERM = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=|>|<)\s*([A-Za-z0-9_.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def parse_label_selector(s):
    reqs = []
    if not s:
        return reqs
    for term in _split_top(s):
        m = _LBL_TERM.match(term)
        if not m:
            raise bad_request('unable to parse requirement: found \'%s\', expected: identifier' % term.strip())
        neg, key, op, val, setop, vals = m.groups()
        if neg:
            if op or setop:
                raise bad_request("unable to parse requirement: '!' only allowed for exists checks")
            reqs.append((key, "!", None))
        elif setop:
            reqs.append((key, setop, set(v.strip() for v in vals.split(",") if v.strip())))
        elif op:
            reqs.append((key, "=" if op == "==" else op, val))
        else:
            reqs.append((key, "exists", None))
    return reqs


def label_match(reqs, labels):
    labels = labels or {}
    for key, op, val in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and not (has and v == val):
            return False
        if op == "!=" and has and v == val:
            return False
        if op == "in" and not (has and v in val):
            return False
        if op == "notin" and has and v in val:
            return False
        if op == "exists" and not has:
            return False
        if op == "!" and has:
            return False
        if op in (">", "<"):
            try:
                a, b = int(v), int(val)
            except (TypeError, ValueError):
                return False
            if (op == ">" and not a > b) or (op == "<" and not a < b):
                return False
    return True


def parse_field_selector(s):
    reqs = []
    if not s:
        return reqs
    for term in s.split(","):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request('invalid selector: \'%s\'; can\'t understand \'%s\'' % (s, term))
        reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return reqs


def _field(obj, path):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


_CORE_EVENT_FIELDS = {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                      "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                      "reason", "reportingComponent", "source", "type", "metadata.namespace", "metadata.name"}
# Field label conversion funcs (kubernetes/kubernetes pkg/apis/core/v1/conversion.go,
# pkg/apis/events/v1/conversion.go): label as sent -> label of the selectable field set.
FIELD_LABELS = {
    ("", "pods"): {k: k for k in ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
                                  "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                                  "status.podIP", "status.nominatedNodeName")},
    ("", "namespaces"): {"metadata.name": "metadata.name", "status.phase": "status.phase"},
    ("", "secrets"): {k: k for k in ("metadata.name", "metadata.namespace", "type")},
    ("", "services"): {k: k for k in ("metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type")},
    ("", "events"): {k: k for k in _CORE_EVENT_FIELDS},
    ("events.k8s.io", "events"): {
        "reason": "reason", "regarding.kind": "involvedObject.kind", "regarding.namespace": "involvedObject.namespace",
        "regarding.name": "involvedObject.name", "regarding.uid": "involvedObject.uid",
        "regarding.apiVersion": "involvedObject.apiVersion", "regarding.resourceVersion": "involvedObject.resourceVersion",
        "regarding.fieldPath": "involvedObject.fieldPath", "reportingController": "reportingComponent", "type": "type",
        "metadata.namespace": "metadata.namespace", "metadata.name": "metadata.name"},
}
FIELD_LABELS[("", "pods")]["spec.host"] = "spec.nodeName"


def convert_field_selector(res, reqs):
    """scheme.ConvertFieldLabel for each requirement; unknown labels are a 400 (handlers/get.go)."""
    out = []
    for label, op, val in reqs:
        table = FIELD_LABELS.get((res.group, res.plural)) if res.builtin else None
        if table is not None:
            if label not in table:
                raise bad_request("field label not supported: %s" % label)
            out.append((table[label], op, val))
        elif not res.builtin:
            if label in res.selectable or label == "metadata.name" or (res.namespaced and label == "metadata.namespace"):
                out.append((res.selectable.get(label, label), op, val))
            else:
                raise bad_request("field label not supported: %s" % label)
        else:
            if label not in ("metadata.name", "metadata.namespace"):
                raise bad_request('"%s" is not a known field selector: only "metadata.name", "metadata.namespace"' % label)
            out.append((label, op, val))
    return out


def _selectable(obj, path):
    """The value of a selectable field of a stored object (ToSelectableFields)."""
    if path == "source":  # core/v1 events: source.component, else the reporting controller
        return _field(obj, "source.component") or _field(obj, "reportingComponent")
    if path == "spec.hostNetwork":
        return "true" if (obj.get("spec") or {}).get("hostNetwork") else "false"
    return _field(obj, path)


def field_match(reqs, obj):
    for path, op, val in reqs:
        v = _selectable(obj, path)
        if (op == "=") != (v == val):
            return False
    return True


def selector_from_labelselector(sel):
    """metav1.LabelSelector (dict) -> callable(labels)->bool. None/{} matches everything."""
    if not sel:
        return lambda labels: True
    ml = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []

    def match(labels):
        labels = labels or {}
        for k, v in ml.items():
            if labels.get(k) != v:
                return False
        for e in exprs:
            k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
            if op == "In" and labels.get(k) not in vals:
                return False
            if op == "NotIn" and k in labels and labels[k] in vals:
                return False
            if op == "Exists" and k not in labels:
                return False
            if op == "DoesNotExist" and k in labels:
                return False
        return True
    return match


# ----------------------------------------------------------------------------- store

class Watcher:
    def __init__(self, storage):
        self.storage = storage
        self.q = queue.Queue()
        self.closed = False

    def close(self):
        self.closed = True
        self.q.put(None)


class Store:
    """Objects by storage key, one resourceVersion counter and the change history.

    The history serves watch replay and, like etcd's MVCC revisions, reads of an older state:
    snapshot(storage, ns, rv) rolls the current objects back to rv. Like etcd compaction
    (kube-apiserver compacts every 5 minutes), revisions older than continue_ttl seconds and
    anything before compacted_rv can no longer be read (410 Expired)."""

    def __init__(self, history_size, state_dir=None, continue_ttl=300.0):
        self.lock = threading.RLock()
        self.rv = 1
        self.objects = collections.defaultdict(dict)  # storage -> {(ns, name): obj}
        self.history = collections.deque()  # (rv, storage, type, obj, old)
        self.history_size = history_size
        self.compacted_rv = 0
        self.continue_ttl = continue_ttl
        self.rv_times = collections.deque()  # (rv, commit time), for the time-based compaction
        self.time_horizon = 0
        self.watchers = set()
        self.state_dir = state_dir
        self.dirty = False
        self.snapshot_lock = threading.Lock()

    def get(self, storage, ns, name):
        with self.lock:
            return self.objects[storage].get((ns or "", name))

    def items(self, storage, ns=None):
        with self.lock:
            d = self.objects[storage]
            if ns:
                return self.rv, [o for (n, _), o in d.items() if n == ns]
            return self.rv, list(d.values())

    def commit(self, storage, typ, obj, old=None):
        """Store obj (already final except its RV) and notify watchers. Caller holds no lock."""
        with self.lock:
            self.rv += 1
            meta = obj["metadata"]
            meta["resourceVersion"] = str(self.rv)
            key = (meta.get("namespace", ""), meta["name"])
            if typ == "DELETED":
                self.objects[storage].pop(key, None)
            else:
                self.objects[storage][key] = obj
            self.history.append((self.rv, storage, typ, obj, old))
            self.rv_times.append((self.rv, time.time()))
            while len(self.history) > self.history_size:
                self.compacted_rv = self.history.popleft()[0]
            for w in list(self.watchers):
                if w.storage == storage:
                    w.q.put((typ, obj, old))
            self.dirty = True
            return obj

    def compact(self):
        with self.lock:
            self.history.clear()
            self.rv_times.clear()
            self.compacted_rv = self.rv

    def horizon(self):
        """The oldest resourceVersion whose state can still be read."""
        with self.lock:
            cutoff = time.time() - self.continue_ttl
            while self.rv_times and self.rv_times[0][1] <= cutoff:
                self.time_horizon = self.rv_times.popleft()[0]
            return max(self.compacted_rv, self.time_horizon)

    def snapshot(self, storage, ns, at):
        """The objects of storage (in ns, if given) as of resourceVersion `at`, or None when that
        state is no longer available."""
        with self.lock:
            if at >= self.rv:
                return self.items(storage, ns)[1]
            if at < self.horizon():
                return None
            state = dict(self.objects[storage])
            for (rv, st, typ, obj, old) in reversed(self.history):
                if rv <= at:
                    break
                if st != storage:
                    continue
                meta = obj["metadata"]
                key = (meta.get("namespace", ""), meta["name"])
                if typ == "ADDED":
                    state.pop(key, None)
                else:
                    state[key] = old
        if ns:
            return [o for (n, _), o in state.items() if n == ns]
        return list(state.values())

    # --- snapshot
    def save(self):
        if not self.state_dir:
            return
        with self.snapshot_lock:
            with self.lock:
                data = {"resourceVersion": self.rv,
                        "objects": {"%s/%s" % k: list(v.values()) for k, v in self.objects.items() if v}}
                self.dirty = False
            os.makedirs(self.state_dir, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=".state")
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, os.path.join(self.state_dir, "state.json"))

    def load(self):
        path = os.path.join(self.state_dir or "", "state.json")
        if not self.state_dir or not os.path.exists(path):
            return False
        with open(path) as f:
            data = json.load(f)
        with self.lock:
            self.rv = int(data.get("resourceVersion", 1))
            for k, objs in data.get("objects", {}).items():
                g, p = k.split("/", 1)
                for o in objs:
                    m = o["metadata"]
                    self.objects[(g, p)][(m.get("namespace", ""), m["name"])] = o
            self.compacted_rv = self.rv
        return True


# ----------------------------------------------------------------------------- go-like base64

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def go_b64decode(s):
    """encoding/base64.StdEncoding.Decode as used by encoding/json for []byte."""
    out = bytearray()
    si, n = 0, len(s)
    while True:
        buf, j = [], 0
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise ValueError("illegal base64 data at input byte %d" % (si - j))
            c = s[si]
            si += 1
            if c in "\r\n":
                continue
            if c in _B64:
                buf.append(_B64[c])
                j += 1
                continue
            if c != "=":
                raise ValueError("illegal base64 data at input byte %d" % (si - 1))
            if j < 2:
                raise ValueError("illegal base64 data at input byte %d" % (si - 1))
            if j == 2:
                while si < n and s[si] in "\r\n":
                    si += 1
                if si == n:
                    raise ValueError("illegal base64 data at input byte %d" % n)
                if s[si] != "=":
                    raise ValueError("illegal base64 data at input byte %d" % (si - 1))
                si += 1
            while si < n and s[si] in "\r\n":
                si += 1
            if si < n:
                raise ValueError("illegal base64 data at input byte %d" % si)
            v = 0
            for x in buf:
                v = (v << 6) | x
            v <<= 6 * (4 - j)
            raw = v.to_bytes(3, "big")
            out += raw[: j - 1]
            return bytes(out)
        v = (buf[0] << 18) | (buf[1] << 12) | (buf[2] << 6) | buf[3]
        out += v.to_bytes(3, "big")


# ----------------------------------------------------------------------------- admission

class CallFailure(Exception):
    """ErrCallingWebhook: subject to failurePolicy."""


class _MappedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to a mapped address but verifies (SNI + hostname) against self.host."""

    def __init__(self, host, port, dial, context, timeout):
        super().__init__(host, port, context=context, timeout=timeout)
        self._dial = dial

    def connect(self):
        sock = socket.create_connection(self._dial, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _peer_sans(dial, timeout):
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(dial, timeout) as s:
            with ctx.wrap_socket(s) as t:
                der = t.getpeercert(binary_form=True)
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
            f.flush()
            info = ssl._ssl._test_decode_cert(f.name)
        return [v for k, v in info.get("subjectAltName", ()) if k in ("DNS", "IP Address")]
    except Exception:
        return None


def _tls_error_text(e, host, dial, timeout):
    code = getattr(e, "verify_code", None)
    if code == 62:  # hostname mismatch
        sans = _peer_sans(dial, timeout)
        if sans == []:
            return "tls: failed to verify certificate: x509: certificate relies on legacy Common Name field, use SANs instead"
        return "tls: failed to verify certificate: x509: certificate is valid for %s, not %s" % (", ".join(sans or ["?"]), host)
    if code in (2, 18, 19, 20, 21):
        return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    if code in (9, 10):
        return "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
    return "tls: %s" % (getattr(e, "verify_message", None) or e)


class Admission:
    def __init__(self, server):
        self.srv = server

    def _configs(self, kind):
        storage = ("admissionregistration.k8s.io", kind)
        _, items = self.srv.store.items(storage)
        hooks = []
        for cfg in sorted(items, key=lambda o: o["metadata"]["name"]):
            for h in cfg.get("webhooks") or []:
                hooks.append(h)
        return hooks

    # -- matching
    @staticmethod
    def _rule_matches(rule, a):
        ops = rule.get("operations") or []
        if "*" not in ops and a["operation"] not in ops:
            return False
        if not any(g in ("*", a["group"]) for g in rule.get("apiGroups") or []):
            return False
        if not any(v in ("*", a["version"]) for v in rule.get("apiVersions") or []):
            return False
        ok = False
        for r in rule.get("resources") or []:
            res, _, sub = r.partition("/")
            if (res == "*" or res == a["resource"]) and (sub == "*" or sub == a["subresource"]):
                ok = True
                break
        if not ok:
            return False
        scope = rule.get("scope") or "*"
        if scope == "Cluster" and a["namespaced"]:
            return False
        if scope == "Namespaced" and not a["namespaced"]:
            return False
        return True

    def _matches(self, hook, a):
        if a["group"] == "admissionregistration.k8s.io":
            return False
        if not any(self._rule_matches(r, a) for r in hook.get("rules") or []):
            return False
        nsel = selector_from_labelselector(hook.get("namespaceSelector"))
        if a["namespaced"]:
            ns = self.srv.store.get(("", "namespaces"), "", a["namespace"])
            if not nsel(((ns or {}).get("metadata") or {}).get("labels") or {}):
                return False
        elif a["resource"] == "namespaces" and not a["subresource"]:
            o = a["object"] or a["oldObject"] or {}
            if not nsel((o.get("metadata") or {}).get("labels") or {}):
                return False
        osel_raw = hook.get("objectSelector")
        if osel_raw:
            osel = selector_from_labelselector(osel_raw)
            hit = False
            for o in (a["object"], a["oldObject"]):
                if isinstance(o, dict) and osel((o.get("metadata") or {}).get("labels") or {}):
                    hit = True
            if not hit:
                return False
        return True

    # -- calling
    def _call(self, hook, review):
        cc = hook.get("clientConfig") or {}
        timeout = int(hook.get("timeoutSeconds") or 10)
        if cc.get("service"):
            svc = cc["service"]
            host = "%s.%s.svc" % (svc.get("name"), svc.get("namespace"))
            port = int(svc.get("port") or 443)
            path = svc.get("path") or "/"
            dial = self.srv.service_map.get("%s/%s:%d" % (svc.get("namespace"), svc.get("name"), port)) or \
                self.srv.service_map.get("%s/%s" % (svc.get("namespace"), svc.get("name")))
        elif cc.get("url"):
            u = urllib.parse.urlsplit(cc["url"])
            host, port, path = u.hostname, u.port or 443, u.path or "/"
            dial = (host, port)
        else:
            raise CallFailure("failed to call webhook: no clientConfig")
        sep = "&" if "?" in path else "?"
        full_path = "%s%stimeout=%ds" % (path, sep, timeout)
        url = "https://%s:%d%s" % (host, port, full_path)
        prefix = 'failed to call webhook: Post "%s": ' % url
        if dial is None:
            raise CallFailure(prefix + "dial tcp: lookup %s: no such host" % host)
        ca = cc.get("caBundle")
        try:
            if ca:
                ctx = ssl.create_default_context(cadata=base64.b64decode(ca).decode())
            else:
                ctx = ssl.create_default_context()
        except (ValueError, ssl.SSLError) as e:
            raise CallFailure("failed to call webhook: unable to load root certificates: %s" % e)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.hostname_checks_common_name = False
        ctx.set_alpn_protocols(["http/1.1"])
        body = dumps(review)
        conn = _MappedHTTPSConnection(host, port, dial, ctx, timeout)
        try:
            conn.request("POST", full_path, body=body, headers={
                "Content-Type": "application/json", "Accept": "application/json, */*",
                "User-Agent": "kube-apiserver-admission"})
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
        except ssl.SSLCertVerificationError as e:
            raise CallFailure(prefix + _tls_error_text(e, host, dial, timeout))
        except ssl.SSLError as e:
            raise CallFailure(prefix + "remote error: tls: %s" % e.reason)
        except ConnectionRefusedError:
            raise CallFailure(prefix + "dial tcp %s:%d: connect: connection refused" % dial)
        except (socket.timeout, TimeoutError):
            raise CallFailure(prefix + "context deadline exceeded")
        except OSError as e:
            raise CallFailure(prefix + str(e))
        finally:
            conn.close()
        if status < 200 or status > 299:
            txt = data.decode("utf-8", "replace").strip()
            if status >= 500:
                msg = 'an error on the server ("%s") has prevented the request from succeeding' % txt
            else:
                msg = GENERIC_MESSAGES.get(status, "the server responded with the status code %d but did not return more information" % status)
            raise CallFailure("failed to call webhook: " + msg)
        try:
            rv = json.loads(data)
        except ValueError as e:
            raise CallFailure("failed to call webhook: invalid character in response body: %s" % e)
        if not isinstance(rv, dict):
            raise CallFailure("failed to call webhook: json: cannot unmarshal into Go value of type v1.AdmissionReview")
        resp = rv.get("response")
        if isinstance(resp, dict) and "patch" in resp and resp["patch"] is not None:
            if not isinstance(resp["patch"], str):
                raise CallFailure("failed to call webhook: json: cannot unmarshal %s into Go struct field "
                                  "AdmissionResponse.response.patch of type []uint8" % jsonpatch_v4._gotype(resp["patch"]))
            try:
                resp["patch"] = go_b64decode(resp["patch"])
            except ValueError as e:
                raise CallFailure("failed to call webhook: %s" % e)
        return rv

    def _verify(self, uid, rv, mutating):
        bad = "received invalid webhook response: "
        resp = rv.get("response")
        if not isinstance(resp, dict):
            raise CallFailure(bad + "webhook response was absent")
        if resp.get("uid", "") != uid:
            raise CallFailure(bad + 'expected response.uid="%s", got "%s"' % (uid, resp.get("uid", "")))
        av, kind = rv.get("apiVersion", ""), rv.get("kind", "")
        if av != "admission.k8s.io/v1" or kind != "AdmissionReview":
            g, _, v = av.rpartition("/")
            raise CallFailure(bad + "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got %s/%s, Kind=%s" % (g, v, kind))
        if mutating:
            patch = resp.get("patch") or b""
            has_pt = "patchType" in resp and resp["patchType"] is not None
            pt = resp.get("patchType") or ""
            if patch and not has_pt:
                raise CallFailure(bad + "webhook returned response.patch but not response.patchType")
            if has_pt and pt != "" and not patch:
                raise CallFailure(bad + "webhook returned response.patchType but not response.patch")
            if has_pt and pt == "":
                raise CallFailure(bad + 'webhook returned invalid response.patchType of ""')
            if has_pt and pt != "JSONPatch":
                raise CallFailure(bad + 'unsupported patch type "%s"' % pt)
        return resp

    @staticmethod
    def _deny(name, st):
        st = dict(st) if isinstance(st, dict) else {}
        code = st.get("code") or 0
        if not isinstance(code, int) or code < 400:
            code = 400
        status = st.get("status") or ""
        if status in ("", "Success"):
            status = "Failure"
        deniedby = 'admission webhook "%s" denied the request' % name
        if st.get("message"):
            msg = "%s: %s" % (deniedby, st["message"])
        elif st.get("reason"):
            msg = "%s: %s" % (deniedby, st["reason"])
        else:
            msg = "%s without explanation" % deniedby
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": status, "message": msg}
        if st.get("reason"):
            out["reason"] = st["reason"]
        if st.get("details"):
            out["details"] = st["details"]
        out["code"] = code
        return RawStatusError(out)

    def run(self, a, mutating, warnings):
        """a: attributes dict; mutates a["object"] for mutating webhooks. Raises ApiError."""
        hooks = self._configs("mutatingwebhookconfigurations" if mutating else "validatingwebhookconfigurations")
        if not hooks:
            return
        rounds = [list(range(len(hooks)))]
        invoked_at = {}
        r = 0
        while r < len(rounds):
            for i in rounds[r]:
                h = hooks[i]
                if not self._matches(h, a):
                    continue
                name = h.get("name", "")
                if a["dryRun"] and h.get("sideEffects") not in ("None", "NoneOnDryRun"):
                    raise bad_request('admission webhook "%s" does not support dry run' % name)
                before = canon(a["object"])
                self._invoke(h, a, mutating, warnings, r, i)
                invoked_at[i] = (r, canon(a["object"]), before)
            if mutating and r == 0:
                final = canon(a["object"])
                again = [i for i, (rr, after, _b) in sorted(invoked_at.items())
                         if hooks[i].get("reinvocationPolicy") == "IfNeeded" and after != final]
                if again:
                    rounds.append(again)
            r += 1

    def _invoke(self, h, a, mutating, warnings, rnd, idx):
        name = h.get("name", "")
        ignore = h.get("failurePolicy") == "Ignore"
        uid = str(uuid.uuid4())
        req = {"uid": uid,
               "kind": {"group": a["group"], "version": a["version"], "kind": a["kind"]},
               "resource": {"group": a["group"], "version": a["version"], "resource": a["resource"]},
               "requestKind": {"group": a["group"], "version": a["version"], "kind": a["kind"]},
               "requestResource": {"group": a["group"], "version": a["version"], "resource": a["resource"]}}
        if a["subresource"]:
            req["subResource"] = a["subresource"]
            req["requestSubResource"] = a["subresource"]
        if a["name"]:
            req["name"] = a["name"]
        if a["namespace"]:
            req["namespace"] = a["namespace"]
        req.update({"operation": a["operation"],
                    "userInfo": self.srv.user(),
                    "object": a["object"], "oldObject": a["oldObject"], "dryRun": bool(a["dryRun"]),
                    "options": a["options"]})
        review = {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": req}
        try:
            rv = self._call(h, review)
            resp = self._verify(uid, rv, mutating)
            patch_ops = None
            if mutating and resp.get("patch"):
                try:
                    patch_ops = jsonpatch_v4.decode_patch(resp["patch"])
                except jsonpatch_v4.PatchError:
                    raise CallFailure("received undecodable patch in webhook response")
        except CallFailure as e:
            msg = 'failed calling webhook "%s": %s' % (name, e)
            if ignore:
                self.srv.log("webhook %s failed open: %s" % (name, msg))
                return
            raise internal_error(msg)
        for w in resp.get("warnings") or []:
            if isinstance(w, str):
                warnings.append(w[:256])
        if not resp.get("allowed"):
            raise self._deny(name, resp.get("status"))
        if patch_ops:
            if a["object"] is None:
                raise internal_error('admission webhook "%s" attempted to modify the object, which is not supported for this operation' % name)
            try:
                newobj = jsonpatch_v4.apply(a["object"], patch_ops)
            except jsonpatch_v4.PatchError as e:
                raise internal_error(str(e))
            if not isinstance(newobj, dict) or not isinstance(newobj.get("metadata", {}), dict):
                raise internal_error("unable to decode patched object")
            a["object"] = newobj


# ----------------------------------------------------------------------------- API server core

class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.fail_rules = []  # dicts: verb, resource, code, count, message
        self.latency = []  # dicts: verb, resource, ms
        self.expire_watches = 0
        self.down_until = 0.0

    def take_failure(self, verb, resource):
        with self.lock:
            for r in self.fail_rules:
                if r["verb"] in ("*", verb) and r["resource"] in ("*", resource) and r["count"] > 0:
                    r["count"] -= 1
                    if r["count"] == 0:
                        self.fail_rules.remove(r)
                    return r
        return None

    def delay(self, verb, resource):
        with self.lock:
            ms = sum(r["ms"] for r in self.latency if r["verb"] in ("*", verb) and r["resource"] in ("*", resource))
        if ms:
            time.sleep(ms / 1000.0)


class ApiServer:
    def __init__(self, args):
        self.args = args
        self.token = args.token
        self.store = Store(args.history, args.state, getattr(args, "continue_ttl", 300.0))
        self.faults = Faults()
        self.local = threading.local()  # the user of the request being served
        self.token_key = hashlib.sha256(("meshmetric-sa-tokens:" + (self.token or "")).encode()).digest()
        self.authorizer = rbac.Authorizer(
            lambda plural, ns, name: self.store.get(("rbac.authorization.k8s.io", plural), ns, name),
            lambda plural, ns: self.store.items(("rbac.authorization.k8s.io", plural), ns or None)[1])
        self.shutting_down = False  # SIGTERM received: /readyz fails
        self.draining = False  # shutdown delay over: new requests get 429
        self.admission = Admission(self)
        self.service_map = {}
        for item in (args.service_map or "").split(","):
            self.add_service_map(item)
        self.reg_lock = threading.RLock()
        self.resources = {}  # (group, version, plural) -> Res
        self.reg_version = 0
        for r in builtin_resources():
            self.resources[(r.group, r.version, r.plural)] = r
        self.requests = collections.deque(maxlen=2000)
        self.svc_ip = 10
        self.port = None
        loaded = self.store.load()
        if loaded:
            _, crds = self.store.items(("apiextensions.k8s.io", "customresourcedefinitions"))
            for c in crds:
                self.register_crd(c)
        self.seed()

    def seed(self):
        """What a fresh cluster has: the four namespaces, their "default" ServiceAccounts and the
        bootstrap RBAC policy."""
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            if not self.store.get(("", "namespaces"), "", ns):
                obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                self.prepare_create(self.res("", "v1", "namespaces"), obj)
                self.store.commit(("", "namespaces"), "ADDED", obj)
        _, nss = self.store.items(("", "namespaces"))
        for n in nss:
            self.ensure_default_sa(n["metadata"]["name"])
        for plural, obj in rbac.bootstrap_objects():
            storage = ("rbac.authorization.k8s.io", plural)
            if not self.store.get(storage, "", obj["metadata"]["name"]):
                self.prepare_create(self.res("rbac.authorization.k8s.io", "v1", plural), obj)
                self.store.commit(storage, "ADDED", obj)

    def ensure_default_sa(self, ns):
        """The ServiceAccount controller's "default" ServiceAccount in every namespace."""
        if self.store.get(("", "serviceaccounts"), ns, "default") is None:
            sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}
            self.prepare_create(self.res("", "v1", "serviceaccounts"), sa)
            self.store.commit(("", "serviceaccounts"), "ADDED", sa)

    # -- authentication
    def user(self):
        return getattr(self.local, "user", None) or rbac.admin_user()

    def authenticate(self, auth):
        """Bearer token -> user info, or None."""
        if not auth or not auth.startswith("Bearer "):
            return None
        tok = auth[len("Bearer "):].strip()
        if tok == self.token:
            return rbac.admin_user()
        got = rbac.verify_token(self.token_key, tok)
        if not got:
            return None
        ns, name, uid = got
        sa = self.store.get(("", "serviceaccounts"), ns, name)
        if sa is None or sa["metadata"].get("uid") != uid:
            return None
        return rbac.sa_user(ns, name, uid)

    def log(self, msg):
        if self.args.verbose:
            sys.stderr.write("[apiserver] %s\n" % msg)

    def add_service_map(self, item):
        item = item.strip()
        if not item:
            return
        key, _, target = item.partition("=")
        h, _, p = target.rpartition(":")
        self.service_map[key.strip()] = (h or "127.0.0.1", int(p))

    # -- registry
    def res(self, group, version, plural):
        with self.reg_lock:
            return self.resources.get((group, version, plural))

    def all_res(self):
        with self.reg_lock:
            return list(self.resources.values())

    def register_crd(self, crd):
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group")
        with self.reg_lock:
            self.unregister_crd(crd, lock=False)
            for v in spec.get("versions") or []:
                if not v.get("served", True):
                    continue
                sub = v.get("subresources") or {}
                r = Res(group, v["name"], names["plural"], names["kind"], spec.get("scope") != "Cluster",
                        singular=names.get("singular"), short=names.get("shortNames") or [],
                        status="status" in sub, builtin=False, storage=(group, names["plural"]),
                        categories=names.get("categories") or [], unconditional_update=False,
                        list_kind=names.get("listKind"))
                r.crd = crd["metadata"]["name"]
                r.schema = ((v.get("schema") or {}).get("openAPIV3Schema")) or None
                r.schema_defaults = schema.has_defaults(r.schema)
                if r.schema_defaults:  # defaults are also applied when reading (crdConversionRESTOptionsGetter)
                    r.to_view_fn = lambda o, s=r.schema: self._defaulted(o, s)
                r.printer = tables.crd_printer(v)
                for f in v.get("selectableFields") or []:
                    jp = (f.get("jsonPath") or "").lstrip(".")
                    if jp:
                        r.selectable[jp] = jp
                self.resources[(group, v["name"], names["plural"])] = r
            self.reg_version += 1

    @staticmethod
    def _defaulted(obj, s):
        o = copy.deepcopy(obj)
        schema.default(o, s)
        return o

    def unregister_crd(self, crd, lock=True):
        with self.reg_lock:
            name = crd["metadata"]["name"]
            for k, r in list(self.resources.items()):
                if getattr(r, "crd", None) == name:
                    del self.resources[k]
            self.reg_version += 1

    # -- object preparation
    def apply_defaults(self, res, obj):
        if not res.builtin:
            return
        spec = obj.get("spec")
        if res.plural == "pods":
            spec = obj.setdefault("spec", {})
            if isinstance(spec, dict):
                spec.setdefault("restartPolicy", "Always")
                spec.setdefault("dnsPolicy", "ClusterFirst")
                spec.setdefault("schedulerName", "default-scheduler")
                spec.setdefault("terminationGracePeriodSeconds", 30)
                spec.setdefault("securityContext", {})
                spec.setdefault("enableServiceLinks", True)
                spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
                spec.setdefault("priority", 0)
                for key in ("containers", "initContainers"):
                    for c in spec.get(key) or []:
                        if not isinstance(c, dict):
                            continue
                        img = c.get("image") or ""
                        tagged = ":" in img.rsplit("/", 1)[-1] or "@" in img
                        c.setdefault("imagePullPolicy", "IfNotPresent" if tagged and not img.endswith(":latest") else "Always")
                        c.setdefault("terminationMessagePath", "/dev/termination-log")
                        c.setdefault("terminationMessagePolicy", "File")
                        c.setdefault("resources", {})
                        for p in c.get("ports") or []:
                            if isinstance(p, dict):
                                p.setdefault("protocol", "TCP")
        elif res.plural == "services" and isinstance(spec, dict):
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
                    p.setdefault("targetPort", p.get("port"))
        elif res.plural == "secrets":
            obj.setdefault("type", "Opaque")
            sd = obj.pop("stringData", None)
            if isinstance(sd, dict):
                data = obj.setdefault("data", {}) or {}
                for k, v in sd.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
                obj["data"] = data
        elif res.plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
            for h in obj.get("webhooks") or []:
                if not isinstance(h, dict):
                    continue
                h.setdefault("failurePolicy", "Fail")
                h.setdefault("matchPolicy", "Equivalent")
                h.setdefault("namespaceSelector", {})
                h.setdefault("objectSelector", {})
                h.setdefault("timeoutSeconds", 10)
                if res.plural.startswith("mutating"):
                    h.setdefault("reinvocationPolicy", "Never")
                for r in h.get("rules") or []:
                    if isinstance(r, dict):
                        r.setdefault("scope", "*")
                svc = (h.get("clientConfig") or {}).get("service")
                if isinstance(svc, dict):
                    svc.setdefault("port", 443)
        elif res.plural == "customresourcedefinitions" and isinstance(spec, dict):
            names = spec.get("names") or {}
            if names.get("kind"):
                names.setdefault("singular", names["kind"].lower())
                names.setdefault("listKind", names["kind"] + "List")

    # -- decoding (handlers/create.go, update.go, patch.go; customresource_handler.go)
    @staticmethod
    def field_validation(q, opts_kind):
        """fieldValidation: "" means Warn (handlers/rest.go fieldValidation)."""
        fv = q.get("fieldValidation", "")
        if fv not in ("", "Ignore", "Warn", "Strict"):
            raise invalid_gk(opts_kind + ".meta.k8s.io", "", [
                ("fieldValidation", "FieldValueNotSupported",
                 'Unsupported value: "%s": supported values: "", "Ignore", "Strict", "Warn"' % fv)],
                "meta.k8s.io", opts_kind)
        return fv or "Warn"

    def decode_body(self, res, body, q, warnings, opts_kind):
        """A create/update body -> the decoded object: duplicates and unknown fields reported per
        fieldValidation, time fields parsed, metadata coerced, custom resources pruned and defaulted."""
        directive = self.field_validation(q, opts_kind)
        try:
            obj, dups = schema.loads_strict(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise bad_request("json: %s" % e)
        if not isinstance(obj, dict):
            return obj
        return self.coerce(res, obj, directive, warnings, ['duplicate field "%s"' % d for d in dups])

    def coerce(self, res, obj, directive, warnings, strict_errs=(), patch_value=None):
        """What decoding into the Go type does to obj (in place). patch_value is set for patches:
        failures are then 422 'patch: Invalid value' as in patch.go, else 400 (transformDecodeError)."""
        strict = list(strict_errs)
        try:
            if res.builtin:
                parse_time_fields(res, obj)
            unknown = schema.coerce_metadata(obj, "metadata." if res.builtin else "")
            if not res.builtin and res.schema is not None:
                unknown += schema.prune(obj, res.schema)
                schema.prune_nulls(obj, res.schema)
                schema.default(obj, res.schema)
        except (schema.DecodeError, gotime.GoTimeError) as e:
            if patch_value is not None:
                raise patch_invalid(patch_value, e)
            raise decode_error(res, e)
        strict += ['unknown field "%s"' % u for u in unknown]
        if strict and directive == "Warn":
            warnings.extend(strict)
        elif strict and directive == "Strict":
            msg = "strict decoding error: " + ", ".join(strict)
            if patch_value is not None:
                raise patch_invalid(patch_value, msg)
            raise decode_error(res, msg)
        return obj

    def coerce_admitted(self, res, obj):
        """After mutating admission: the patched object is decoded again (errors are 500 as in the
        mutating dispatcher); custom resources are pruned and defaulted without reporting."""
        try:
            if res.builtin:
                parse_time_fields(res, obj)
            schema.coerce_metadata(obj, "metadata." if res.builtin else "")
        except (schema.DecodeError, gotime.GoTimeError) as e:
            raise internal_error(str(e))
        if not res.builtin and res.schema is not None:
            schema.prune(obj, res.schema)
            schema.prune_nulls(obj, res.schema)
            schema.default(obj, res.schema)
        return obj

    def prepare_create(self, res, obj):
        """BeforeCreate: name from generateName, uid, timestamps, generation, kind specifics."""
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choice(GEN_CHARS) for _ in range(5))
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if res.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"):
            meta.pop(k, None)
        if res.plural == "namespaces" and res.builtin:
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name")
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif res.plural == "pods" and res.builtin:
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif res.plural == "services" and res.builtin:
            spec = obj.setdefault("spec", {})
            if spec.get("type", "ClusterIP") != "ExternalName" and not spec.get("clusterIP"):
                self.svc_ip += 1
                ip = "10.96.%d.%d" % (self.svc_ip // 250, self.svc_ip % 250 + 1)
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
            obj["status"] = {"loadBalancer": {}}
        elif res.plural == "customresourcedefinitions" and res.builtin:
            self.crd_status(obj)

    def crd_status(self, obj):
        spec = obj.get("spec") or {}
        t = now_rfc3339()
        obj["status"] = {
            "acceptedNames": spec.get("names") or {},
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t,
                 "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": t,
                 "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}],
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")]}

    def validate(self, res, obj, old=None):
        meta = obj["metadata"]
        name = meta.get("name") or ""
        causes = []
        if not name and not meta.get("generateName"):
            causes.append(("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
        elif name and (len(name) > 253 or not NAME_RE.match(name)):
            causes.append(("metadata.name", "FieldValueInvalid",
                           'Invalid value: "%s": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
                           "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                           "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]"
                           "([-a-z0-9]*[a-z0-9])?)*')" % name))
        if res.plural == "customresourcedefinitions" and res.builtin:
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            want = "%s.%s" % (names.get("plural"), spec.get("group"))
            if name != want:
                causes.append(("metadata.name", "FieldValueInvalid",
                               'Invalid value: "%s": must be spec.names.plural+"."+spec.group' % name))
            if not names.get("kind"):
                causes.append(("spec.names.kind", "FieldValueRequired", "Required value"))
            if spec.get("scope") not in ("Namespaced", "Cluster"):
                causes.append(("spec.scope", "FieldValueNotSupported",
                               'Unsupported value: "%s": supported values: "Cluster", "Namespaced"' % spec.get("scope")))
            vs = spec.get("versions") or []
            if not vs:
                causes.append(("spec.versions", "FieldValueInvalid", "Invalid value: null: must have exactly one version marked as storage version"))
            elif sum(1 for v in vs if v.get("storage")) != 1:
                causes.append(("spec.versions", "FieldValueInvalid", "Invalid value: %s: must have exactly one version marked as storage version" % json.dumps(vs)[:80]))
        if res.builtin and res.plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
            for h in obj.get("webhooks") or []:
                ca = ((h or {}).get("clientConfig") or {}).get("caBundle")
                if isinstance(ca, str):
                    try:
                        go_b64decode(ca)  # a []byte field: the real server fails to decode the body
                    except ValueError as e:
                        raise bad_request('%s in version "v1" cannot be handled as a %s: %s' % (res.kind, res.kind, e))
        if res.plural == "pods" and res.builtin and not old:
            if not ((obj.get("spec") or {}).get("containers")):
                causes.append(("spec.containers", "FieldValueRequired", "Required value"))
        if res.plural == "customresourcedefinitions" and res.builtin:
            for i, v in enumerate((obj.get("spec") or {}).get("versions") or []):
                s = ((v or {}).get("schema") or {}).get("openAPIV3Schema")
                fp = "spec.versions[%d].schema.openAPIV3Schema" % i
                if not s:
                    causes.append((fp, "FieldValueRequired", "Required value: schemas are required"))
                elif not s.get("type") and not s.get("x-kubernetes-preserve-unknown-fields"):
                    causes.append((fp + ".type", "FieldValueRequired", "Required value: must not be empty at the root"))
                else:
                    causes += crd_default_errors(s, fp)
        if res.builtin and res.storage == ("", "events"):
            causes += validate_event(res, res.from_view(dict(obj)), res.from_view(dict(old)) if old else None)
        if res.builtin and res.plural == "leases":
            causes += validate_lease(obj)
        if not res.builtin and res.schema is not None:
            causes += schema.validate(obj, res.schema, old if old is not None else schema.MISSING)
        if causes:
            raise invalid(res, name, causes)

    # -- admission attributes
    def attrs(self, res, op, sub, ns, name, obj, old, dry, options):
        return {"group": res.group, "version": res.version, "kind": res.kind, "resource": res.plural,
                "subresource": sub or "", "namespaced": res.namespaced, "namespace": ns or "",
                "name": name or "", "operation": op, "object": obj, "oldObject": old,
                "dryRun": dry, "options": options}

    @staticmethod
    def options(kind, q, extra=None):
        o = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
        if q.get("dryRun"):
            o["dryRun"] = [q["dryRun"]]
        if q.get("fieldManager") and kind != "DeleteOptions":
            o["fieldManager"] = q["fieldManager"]
        if extra:
            o.update(extra)
        return o

    # -- verbs
    def check_dry_run(self, q):
        d = q.get("dryRun")
        if d and d != "All":
            raise bad_request('dryRun: Unsupported value: "%s": supported values: "All"' % d)
        return d == "All"

    def ns_exists(self, res, ns):
        if res.namespaced:
            nso = self.store.get(("", "namespaces"), "", ns)
            if not nso:
                raise ApiError(404, 'namespaces "%s" not found' % ns, "NotFound",
                               {"name": ns, "kind": "namespaces"})
            return nso
        return None

    def create(self, res, ns, obj, q, warnings, sub=""):
        dry = self.check_dry_run(q)
        if not isinstance(obj, dict):
            raise bad_request("the object provided is unrecognized (must be of type %s)" % res.kind)
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        nso = self.ns_exists(res, ns)
        if nso and (nso.get("metadata") or {}).get("deletionTimestamp"):
            raise ApiError(403, 'unable to create new content in namespace %s because it is being terminated' % ns,
                           "Forbidden", {"name": meta.get("name", ""), "group": res.group, "kind": res.plural})
        obj["apiVersion"], obj["kind"] = res.gv, res.kind
        for k in ("uid", "resourceVersion", "generation", "deletionTimestamp", "managedFields"):
            meta.pop(k, None)
        meta["creationTimestamp"] = None
        if res.status and not res.builtin:
            obj.pop("status", None)
        self.apply_defaults(res, obj)
        if res.plural == "pods" and res.builtin:
            obj.setdefault("status", {})  # PrepareForCreate sets the phase after mutating admission
            spec = obj.get("spec")
            if isinstance(spec, dict):  # what the ServiceAccount admission plugin fills in
                spec.setdefault("serviceAccountName", "default")
                spec.setdefault("serviceAccount", spec["serviceAccountName"])
        a = self.attrs(res, "CREATE", sub, ns, meta.get("name", ""), obj, None, dry,
                       self.options("CreateOptions", q))
        self.admission.run(a, True, warnings)
        obj = a["object"]
        obj["apiVersion"], obj["kind"] = res.gv, res.kind
        self.coerce_admitted(res, obj)
        self.apply_defaults(res, obj)
        obj.setdefault("metadata", {})
        if res.namespaced:
            obj["metadata"]["namespace"] = ns
        self.validate(res, obj)
        self.prepare_create(res, obj)
        a["object"] = obj
        a["name"] = obj["metadata"]["name"]
        self.admission.run(a, False, warnings)
        name = obj["metadata"]["name"]
        stored = res.from_view(obj)
        with self.store.lock:
            if self.store.get(res.storage, ns if res.namespaced else "", name):
                raise already_exists(res, name)
            if dry:
                return res.to_view(stored)
            self.store.commit(res.storage, "ADDED", stored)
        if res.plural == "customresourcedefinitions" and res.builtin:
            self.register_crd(stored)
        if res.plural == "namespaces" and res.builtin:
            self.ensure_default_sa(name)
        return res.to_view(stored)

    def prepare_update(self, res, cur, new, sub):
        """Merge server-owned fields of cur into new (view objects)."""
        if sub == "status":
            out = copy.deepcopy(cur)
            if "status" in new:
                out["status"] = new["status"]
            else:
                out.pop("status", None)
            return out
        meta = new.setdefault("metadata", {})
        cm = cur["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in cm:
                meta[k] = cm[k]
            else:
                meta.pop(k, None)
        if "namespace" in cm:
            meta["namespace"] = cm["namespace"]
        if res.status:
            if "status" in cur:
                new["status"] = copy.deepcopy(cur["status"])
            else:
                new.pop("status", None)
        new["apiVersion"], new["kind"] = res.gv, res.kind
        return new

    def update(self, res, ns, name, obj, q, warnings, sub="", precondition=True, created_ok=True):
        """PUT. precondition=False for patches (RV only checked if the result carries one that differs)."""
        dry = self.check_dry_run(q)
        if sub and not (sub == "status" and res.status):
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
            raise bad_request("the object provided is unrecognized (must be of type %s)" % res.kind)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (meta["name"], name))
        meta["name"] = name
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        cur_stored = self.store.get(res.storage, ns if res.namespaced else "", name)
        if cur_stored is None:
            if res.create_on_update and created_ok:
                return 201, self.create(res, ns, obj, q, warnings)
            raise not_found(res, name)
        cur = res.to_view(cur_stored)
        rv = meta.get("resourceVersion") or ""
        if not rv:
            if precondition and not res.unconditional_update:
                raise invalid(res, name, [("metadata.resourceVersion", "FieldValueInvalid",
                                           "Invalid value: 0x0: must be specified for an update")])
        elif rv != cur["metadata"]["resourceVersion"]:
            raise conflict(res, name)
        new = self.prepare_update(res, cur, copy.deepcopy(obj), sub)
        self.apply_defaults(res, new)
        a = self.attrs(res, "UPDATE", sub, ns, name, new, cur, dry, self.options("UpdateOptions", q))
        self.admission.run(a, True, warnings)
        new = self.prepare_update(res, cur, a["object"], sub) if sub != "status" else a["object"]
        self.coerce_admitted(res, new)
        new["metadata"]["name"] = name
        self.apply_defaults(res, new)
        self.validate(res, new, cur)
        if res.generation and sub != "status":
            strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "apiVersion", "kind")}
            if canon(strip(new)) != canon(strip(cur)):
                new["metadata"]["generation"] = int(cur["metadata"].get("generation") or 0) + 1
        if res.plural == "customresourcedefinitions" and res.builtin:
            self.crd_status(new)
        a["object"] = new
        self.admission.run(a, False, warnings)
        stored = res.from_view(new)
        with self.store.lock:
            latest = self.store.get(res.storage, ns if res.namespaced else "", name)
            if latest is None:
                raise not_found(res, name)
            if latest["metadata"]["resourceVersion"] != cur["metadata"]["resourceVersion"]:
                if rv:
                    raise conflict(res, name)
                # unconditional write raced with another writer: last write wins, like the real retry loop
            cmp = lambda o: canon({k: v for k, v in o.items() if k != "metadata"}) + canon(
                {k: v for k, v in o["metadata"].items() if k not in ("resourceVersion", "managedFields")})
            if cmp(stored) == cmp(latest):
                return 200, res.to_view(latest)
            if dry:
                return 200, res.to_view(stored)
            fin_done = stored["metadata"].get("deletionTimestamp") and not stored["metadata"].get("finalizers")
            self.store.commit(res.storage, "DELETED" if fin_done else "MODIFIED", stored, latest)
        if res.plural == "customresourcedefinitions" and res.builtin:
            if fin_done:
                self.crd_deleted(stored)
            else:
                self.register_crd(stored)
        return 200, res.to_view(stored)

    def patch(self, res, ns, name, body, ctype, q, warnings, sub=""):
        ctype = (ctype or "").split(";")[0].strip().lower()
        accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH] + ([STRATEGIC_PATCH] if res.builtin else [])
        if ctype not in accepted:
            raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                           + ", ".join(accepted), "UnsupportedMediaType")
        opt_causes = []
        if ctype == APPLY_PATCH and not q.get("fieldManager"):
            opt_causes.append(("fieldManager", "FieldValueRequired", "Required value: is required for apply patch"))
        if q.get("force") and ctype != APPLY_PATCH:
            opt_causes.append(("force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch"))
        if opt_causes:
            raise invalid_gk("PatchOptions.meta.k8s.io", "", opt_causes, "meta.k8s.io", "PatchOptions")
        directive = self.field_validation(q, "PatchOptions")
        strict = []
        if ctype == APPLY_PATCH:
            try:
                text = body.decode("utf-8")
                patch = yaml.safe_load(text) if yaml else json.loads(text)
            except Exception as e:
                raise bad_request("error decoding YAML: %s" % e)
            if not isinstance(patch, dict):
                raise bad_request("the object provided is unrecognized")
        else:
            try:
                patch, dups = schema.loads_strict(body.decode("utf-8") or "null")
            except (ValueError, UnicodeDecodeError) as e:
                raise bad_request("error decoding patch: %s" % e)
            prefix = "json patch " if ctype == JSON_PATCH else ""
            strict = ['%sduplicate field "%s"' % (prefix, d) for d in dups]
        if sub and not (sub == "status" and res.status):
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        cur_stored = self.store.get(res.storage, ns if res.namespaced else "", name)
        if ctype == APPLY_PATCH:
            self.check_typed_patch(res, ns, name, patch)
        if cur_stored is None:
            if ctype == APPLY_PATCH and not sub:
                patch.setdefault("metadata", {})["name"] = name
                self.coerce(res, patch, "Ignore", warnings)
                return 201, self.create(res, ns, patch, q, warnings)
            raise not_found(res, name)
        cur = res.to_view(cur_stored)
        patch_value = None
        if ctype == JSON_PATCH:
            try:
                ops = jsonpatch_v4.decode_patch(patch)
                if len(ops) > 10000:
                    raise ApiError(413, "The allowed maximum operations in a JSON patch is 10000, got %d" % len(ops), "RequestEntityTooLarge")
                new = jsonpatch_v4.apply(cur, ops)
            except jsonpatch_v4.PatchError as e:
                # NewGenericServerResponse(422, "", schema.GroupResource{}, "", err, ...)
                d = {"causes": [{"reason": "UnexpectedServerResponse", "message": str(e)}]}
                raise ApiError(422, "the server rejected our request due to an error in our request", "Invalid", d)
            patch_value = go_json(new) if isinstance(new, dict) else None
        elif ctype == MERGE_PATCH:
            if not isinstance(patch, dict):
                raise bad_request("json: cannot unmarshal %s into Go value of type map[string]interface {}" % jsonpatch_v4._gotype(patch))
            new = mergepatch.merge_patch(cur, patch)
            patch_value = go_json(new)
        elif ctype == STRATEGIC_PATCH:
            if not isinstance(patch, dict):
                raise bad_request("json: cannot unmarshal %s into Go value of type map[string]interface {}" % jsonpatch_v4._gotype(patch))
            new = mergepatch.strategic_merge(cur, patch)
            patch_value = schema.go_plus_v(patch)
        else:  # apply: create-or-merge
            pm = patch.get("metadata") or {}
            if pm.get("name") and pm["name"] != name:
                raise bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (pm["name"], name))
            patch.pop("apiVersion", None)
            patch.pop("kind", None)
            new = mergepatch.strategic_merge(cur, patch) if res.builtin else mergepatch.merge_patch(cur, patch)
        if not isinstance(new, dict):
            raise bad_request("patched object is not an object")
        if patch_value is not None:
            self.coerce(res, new, directive, warnings, strict, patch_value=patch_value)
        else:
            self.coerce(res, new, "Ignore", warnings)
        return self.update(res, ns, name, new, q, warnings, sub, precondition=False, created_ok=False)

    def check_typed_patch(self, res, ns, name, patch):
        """Server-side apply converts the applied object with the CRD schema first; fields the
        schema does not declare fail it (managedfields structuredmerge.go: a plain error, so 500
        with no reason, whatever fieldValidation says)."""
        if res.builtin or res.schema is None:
            return
        probe = copy.deepcopy(patch)
        probe.pop("metadata", None)
        paths = schema.prune(probe, res.schema)
        if not paths:
            return
        errs = [".%s: field not declared in schema" % p for p in paths]
        detail = errs[0] if len(errs) == 1 else "errors:\n  " + "\n  ".join(errs)
        raise ApiError(500, "failed to create typed patch object (%s/%s; %s, Kind=%s): %s" % (
            ns if res.namespaced else "", name, res.gv if res.group else "/" + res.gv, res.kind, detail), "")

    def crd_deleted(self, crd):
        self.unregister_crd(crd)
        spec = crd.get("spec") or {}
        storage = (spec.get("group"), (spec.get("names") or {}).get("plural"))
        _, items = self.store.items(storage)
        for o in items:
            self.store.commit(storage, "DELETED", copy.deepcopy(o), o)

    def delete(self, res, ns, name, q, body, warnings, sub=""):
        dry = self.check_dry_run(q)
        if sub:
            raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed", {})
        cur_stored = self.store.get(res.storage, ns if res.namespaced else "", name)
        if cur_stored is None:
            raise not_found(res, name)
        cur = res.to_view(cur_stored)
        opts = body if isinstance(body, dict) else {}
        pre = opts.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != cur["metadata"].get("uid"):
            raise conflict(res, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s" % (pre["uid"], cur["metadata"].get("uid")))
        if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"].get("resourceVersion"):
            raise conflict(res, name, "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s" % (pre["resourceVersion"], cur["metadata"].get("resourceVersion")))
        dopts = {k: v for k, v in opts.items() if k in ("gracePeriodSeconds", "propagationPolicy", "preconditions", "orphanDependents")}
        a = self.attrs(res, "DELETE", "", ns, name, None, cur, dry, self.options("DeleteOptions", q, dopts))
        self.admission.run(a, True, warnings)
        self.admission.run(a, False, warnings)
        if dry:
            return 200, cur if res.return_deleted else self.success_status(res, cur)
        meta = cur_stored["metadata"]
        pending = bool(meta.get("finalizers")) or (res.builtin and res.plural in ("namespaces", "customresourcedefinitions"))
        if pending:
            if meta.get("deletionTimestamp") and meta.get("finalizers"):
                return 200, cur
            new = copy.deepcopy(cur_stored)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if res.generation and meta.get("generation"):
                new["metadata"]["generation"] = int(meta["generation"]) + 1
            if res.plural == "namespaces" and res.builtin:
                new["status"] = {"phase": "Terminating"}
            self.store.commit(res.storage, "MODIFIED", new, cur_stored)
            code = 202 if opts.get("orphanDependents") is False else 200
            if res.builtin and res.plural in ("namespaces", "customresourcedefinitions") and not meta.get("finalizers"):
                # built-in finalizers (namespace lifecycle, CRD cleanup) complete at once
                if res.plural == "namespaces":
                    self.delete_namespace_contents(name)
                else:
                    self.crd_deleted(new)
                gone = copy.deepcopy(new)
                self.store.commit(res.storage, "DELETED", gone, new)
            return code, res.to_view(new)
        gone = copy.deepcopy(cur_stored)
        self.store.commit(res.storage, "DELETED", gone, cur_stored)
        if res.return_deleted:
            return 200, res.to_view(gone)
        return 200, self.success_status(res, cur)

    def delete_namespace_contents(self, ns):
        seen = set()
        for r in self.all_res():
            if not r.namespaced or r.storage in seen:
                continue
            seen.add(r.storage)
            _, items = self.store.items(r.storage, ns)
            for o in items:
                self.store.commit(r.storage, "DELETED", copy.deepcopy(o), o)

    @staticmethod
    def success_status(res, obj):
        d = _details(res, obj["metadata"]["name"])
        d["uid"] = obj["metadata"].get("uid", "")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d}

    def list(self, res, ns, q):
        """GET on a collection. Follows apiserver v0.32.0 pkg/storage/cacher (what is served from the
        watch cache: resourceVersion=0 ignores limit) and pkg/storage/etcd3/store.go GetList (exact
        reads at an older resourceVersion, continue tokens, compaction -> 410)."""
        causes = validate_list_options(q, watch=False)
        if causes:
            raise invalid_gk("ListOptions.meta.k8s.io", "", causes, "meta.k8s.io", "ListOptions")
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = convert_field_selector(res, parse_field_selector(q.get("fieldSelector", "")))
        limit = q.get("limit")
        try:
            limit = int(limit) if limit else 0
        except ValueError:
            raise bad_request("limit: Invalid value: %r" % limit)
        limit = max(limit, 0)
        cont = q.get("continue")
        rvq = q.get("resourceVersion") or ""
        match = q.get("resourceVersionMatch") or ""
        scope_ns = ns if res.namespaced else None
        store = self.store
        start = None
        if cont:
            if rvq and rvq != "0":
                raise bad_request("specifying resource version is not allowed when using continue")
            start, tok_rv = decode_continue(cont)
            if tok_rv < 0:  # continue at the latest state (after an expired token)
                rv, items = store.items(res.storage, scope_ns)
            else:
                rv, items = tok_rv, store.snapshot(res.storage, scope_ns, tok_rv)
                if items is None:
                    raise ApiError(410, CONTINUE_INCONSISTENT, "Expired",
                                   list_meta={"continue": encode_continue(start, -1, raw_start=True)})
        else:
            with store.lock:
                current, items = store.items(res.storage, scope_ns)
            rv = current
            if rvq == "0":
                limit = 0  # served from the watch cache, which does not paginate
            elif rvq:
                try:
                    want = int(rvq)
                    if want < 0:
                        raise ValueError
                except ValueError:
                    raise bad_request("invalid resource version: strconv.ParseUint: parsing %s: invalid syntax" % schema.go_quote(rvq))
                if want > current:
                    raise ApiError(504, "Too large resource version: %d, current: %d" % (want, current), "Timeout",
                                   {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                    "retryAfterSeconds": 1})
                if match == "Exact" or (not match and limit):
                    rv, items = want, store.snapshot(res.storage, scope_ns, want)
                    if items is None:
                        raise ApiError(410, "The resourceVersion for the provided list is too old.", "Expired")
        if res.namespaced and not ns:
            key = lambda o: "%s/%s" % (o["metadata"].get("namespace", ""), o["metadata"]["name"])
        else:
            key = lambda o: o["metadata"]["name"]
        items = sorted(items, key=key)
        out, more, remaining = [], False, 0
        for i, o in enumerate(items):
            if start is not None and key(o) < start:
                continue
            if lsel and not label_match(lsel, o["metadata"].get("labels")):
                continue
            if fsel and not field_match(fsel, o):
                continue
            if limit and len(out) >= limit:
                more = True
                remaining = len(items) - i
                break
            out.append(o)
        lm = {"resourceVersion": str(rv)}
        if more:
            lm["continue"] = encode_continue(key(out[-1]), rv)
            if not lsel and not fsel:
                lm["remainingItemCount"] = remaining
        return {"kind": res.list_kind, "apiVersion": res.gv, "metadata": lm,
                "items": [res.to_view(o) for o in out]}


CONTINUE_INCONSISTENT = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list.")


def encode_continue(last_key, rv, raw_start=False):
    """storage.EncodeContinue: base64url(JSON {"v","rv","start"}); start is the key after the last item."""
    start = last_key if raw_start else last_key + "\x00"
    tok = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(tok.encode()).decode().rstrip("=")


def decode_continue(value):
    """storage.DecodeContinue -> (start key, resourceVersion); errors are 400 BadRequest."""
    pre = "invalid continue token: "
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        tok = json.loads(data)
    except (ValueError, TypeError) as e:
        raise bad_request(pre + "continue key is not valid: %s" % e)
    if not isinstance(tok, dict) or tok.get("v") != "meta.k8s.io/v1":
        raise bad_request(pre + "continue key is not valid: server does not recognize this encoded version %s"
                          % ((tok or {}).get("v", "") if isinstance(tok, dict) else ""))
    rv = tok.get("rv")
    if not isinstance(rv, int) or rv == 0:
        raise bad_request(pre + "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    start = tok.get("start")
    if not isinstance(start, str) or not start:
        raise bad_request(pre + "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)")
    return start, rv


def validate_list_options(q, watch):
    """apimachinery pkg/apis/meta/internalversion/validation ValidateListOptions (WatchList enabled)."""
    causes = []
    match = q.get("resourceVersionMatch") or ""
    has_initial = "sendInitialEvents" in q
    forbidden = lambda f, m: causes.append((f, "FieldValueForbidden", "Forbidden: " + m))
    if watch:
        if has_initial and match != "NotOlderThan":
            forbidden("resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
        if match:
            if not has_initial:
                forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
            if match != "NotOlderThan":
                causes.append(("resourceVersionMatch", "FieldValueNotSupported",
                               'Unsupported value: "%s": supported values: "NotOlderThan"' % match))
            if q.get("continue"):
                forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
        return causes
    if match:
        if not q.get("resourceVersion"):
            forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided")
        if q.get("continue"):
            forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
        if match not in ("Exact", "NotOlderThan"):
            causes.append(("resourceVersionMatch", "FieldValueNotSupported",
                           'Unsupported value: "%s": supported values: "Exact", "NotOlderThan", ""' % match))
        if match == "Exact" and q.get("resourceVersion") == "0":
            forbidden("resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
    if has_initial:
        forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
    return causes


def request_info(method, path, q):
    """apiserver v0.32.0 pkg/endpoints/request/requestinfo.go: the attributes a request is authorized on."""
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
    nr_verb = {"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())
    info = {"resourceRequest": False, "verb": nr_verb, "path": path, "group": "", "version": "", "resource": "",
            "subresource": "", "namespace": "", "name": "", "nameInPath": False, "extraParts": False}
    if parts[:2] == ["api", "v1"] and len(parts) > 2:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) > 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return info
    ns = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        ns = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    name = rest[1] if len(rest) > 1 else ""
    if method in ("GET", "HEAD"):
        verb = "get" if name else ("watch" if qbool(q, "watch") else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
    info.update({"resourceRequest": True, "verb": verb, "group": group, "version": version, "resource": rest[0],
                 "subresource": rest[2] if len(rest) > 2 else "", "namespace": ns, "name": name,
                 "nameInPath": bool(name), "extraParts": len(rest) > 3})
    if verb in ("list", "watch") and q.get("fieldSelector"):
        try:
            for f, op, v in parse_field_selector(q["fieldSelector"]):
                if f == "metadata.name" and op == "=":
                    info["name"] = v
        except ApiError:
            pass
    return info


def negotiate_transform(accept):
    """The as=Table / as=PartialObjectMetadata(List) conversions of handlers/response.go, picked from
    the Accept header in order; None for plain JSON."""
    for part in (accept or "").split(","):
        fields = [x.strip() for x in part.split(";")]
        mt = fields[0].lower()
        params = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip()] = v.strip()
        if mt not in ("application/json", "*/*", "application/*", ""):
            continue
        as_ = params.get("as")
        if not as_:
            return None
        if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            if as_ == "Table":
                return ("Table", "meta.k8s.io/" + params["v"])
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return ("Partial", "meta.k8s.io/" + params["v"])
    return None


def table_printer(res):
    """-> (printer, row_view): the built-in printer, the CRD version's columns, or the default."""
    if not res.builtin:
        return res.printer or tables.crd_printer({}), None
    if res.storage == ("", "events"):
        return tables.PRINTERS[("", "events")], (lambda v: res.from_view(dict(v))) if res.group else None
    return tables.PRINTERS.get((res.group, res.plural), tables.DEFAULT_PRINTER), None


_PF_EXEMPT = (str(uuid.uuid5(uuid.NAMESPACE_URL, "flowschema/exempt")), str(uuid.uuid5(uuid.NAMESPACE_URL, "prioritylevel/exempt")))
_PF_SA = (str(uuid.uuid5(uuid.NAMESPACE_URL, "flowschema/service-accounts")), str(uuid.uuid5(uuid.NAMESPACE_URL, "prioritylevel/workload-low")))


def pf_headers(user):
    """filters/priority-and-fairness.go setResponseHeaders (Go canonicalises the names)."""
    fs, pl = _PF_EXEMPT if rbac.MASTERS in user.get("groups", []) else _PF_SA
    return [("X-Kubernetes-Pf-Flowschema-Uid", fs), ("X-Kubernetes-Pf-Prioritylevel-Uid", pl)]


# ----------------------------------------------------------------------------- HTTP

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "meshmetric-test-apiserver"
    sys_version = ""
    timeout = 300

    def log_message(self, fmt, *args):
        if self.server.api.args.verbose:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PUT(self):
        self.handle_api("PUT")

    def do_PATCH(self):
        self.handle_api("PATCH")

    def do_DELETE(self):
        self.handle_api("DELETE")

    # -- io helpers
    def drain_body(self):
        """Before an early answer: consume an unread request body, as Go's net/http does,
        so the next request on a keep-alive connection is not parsed from its bytes
        (a large or chunked one closes the connection instead)."""
        if getattr(self, "body_read", True):
            return
        self.body_read = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            return
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > 1 << 20:
            self.close_connection = True
        elif n:
            self.rfile.read(n)

    def read_body(self):
        self.body_read = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline().strip()
                n = int(line.split(b";")[0], 16)
                if n == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        if n > 64 * 1024 * 1024:
            raise ApiError(413, "Request entity too large: limit is 3145728", "RequestEntityTooLarge")
        return self.rfile.read(n) if n else b""

    def send_json(self, code, obj, warnings=()):
        data = dumps(obj)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in getattr(self, "extra_headers", ()):
            self.send_header(k, v)
        for w in warnings:
            esc = w.replace("\\", "\\\\").replace('"', '\\"')
            self.send_header("Warning", '299 - "%s"' % esc)
        self.end_headers()
        self.wfile.write(data)

    def send_error_status(self, err, warnings=()):
        st = err.status()
        retry = (st.get("details") or {}).get("retryAfterSeconds") if isinstance(st.get("details"), dict) else None
        if retry and int(retry) > 0:  # responsewriters.ErrorNegotiated
            self.extra_headers = list(getattr(self, "extra_headers", ())) + [("Retry-After", str(int(retry)))]
        self.send_json(err.code, st, warnings)

    def send_plain(self, code, text, headers=()):
        """net/http http.Error: text/plain, nosniff, the text and a newline."""
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in list(getattr(self, "extra_headers", ())) + list(headers):
            self.send_header(k, v)
            if k == "Connection" and v == "close":
                self.close_connection = True
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # -- main entry
    def handle_api(self, method):
        api = self.server.api
        warnings = []
        self.extra_headers = []
        api.local.user = None
        self.body_read = False
        try:
            u = urllib.parse.urlsplit(self.path)
            path = u.path
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
            api.requests.append({"time": time.time(), "method": method, "path": self.path,
                                 "userAgent": self.headers.get("User-Agent", ""),
                                 "contentType": self.headers.get("Content-Type", "")})
            control = path.startswith("/_control/")
            # filters/with_retry_after.go: once the shutdown delay is over (and in the simulated
            # restart window) new requests get 429 + Retry-After before authentication
            if not control and not path.startswith(("/readyz", "/livez", "/healthz", "/metrics")) and \
                    (api.draining or time.time() < api.faults.down_until):
                raise PlainError(429, "The apiserver is shutting down, please try again later.\n",
                                 [("Retry-After", "5"), ("Connection", "close")])
            auth = self.headers.get("Authorization")
            anonymous_ok = path in ("/version", "/healthz", "/livez", "/readyz")
            user = None
            if auth is not None or not anonymous_ok:
                user = api.authenticate(auth)
                if user is None:
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            api.local.user = user
            if control:
                if rbac.MASTERS not in user["groups"]:
                    raise ApiError(403, 'forbidden: User "%s" cannot %s path "%s"' % (
                        user["username"], method.lower(), path), "Forbidden", {})
                return self.control(method, path[len("/_control/"):].strip("/"), q)
            if user is not None:
                self.extra_headers += pf_headers(user)
            return self.route(method, path, q, warnings, user)
        except PlainError as e:
            try:
                self.drain_body()
                self.send_plain(e.code, e.text, e.headers)
            except OSError:
                pass
        except ApiError as e:
            try:
                self.drain_body()
                self.send_error_status(e, warnings)
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # pragma: no cover - surfaced as InternalError
            import traceback
            traceback.print_exc()
            try:
                self.drain_body()
                self.send_error_status(internal_error(repr(e)), warnings)
            except OSError:
                pass
        finally:
            api.local.user = None

    def health(self, path):
        api = self.server.api
        if path.startswith("/readyz") and (api.shutting_down or time.time() < api.faults.down_until):
            raise PlainError(500, "[-]shutdown failed: reason withheld\nreadyz check failed\n")
        data = b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(data)

    def authorize(self, user, info):
        """filters/authorization.go: 403 with responsewriters.forbiddenMessage."""
        api = self.server.api
        if user is None:
            return
        ok, reason = api.authorizer.authorize(user, info)
        if ok:
            return
        msg = rbac.forbidden_message(user, info)
        if reason:
            msg = "%s: %s" % (msg, reason)
        if not info["resourceRequest"]:
            raise ApiError(403, "forbidden: " + msg, "Forbidden", {})
        gr = "%s.%s" % (info["resource"], info["group"]) if info["group"] else info["resource"]
        d = {}
        if info["name"]:
            d["name"] = info["name"]
        if info["group"]:
            d["group"] = info["group"]
        d["kind"] = info["resource"]
        if info["name"]:
            raise ApiError(403, '%s "%s" is forbidden: %s' % (gr, info["name"], msg), "Forbidden", d)
        raise ApiError(403, "%s is forbidden: %s" % (gr, msg), "Forbidden", d)

    def route(self, method, path, q, warnings, user=None):
        api = self.server.api
        info = request_info(method, path, q)
        self.authorize(user, info)
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if method == "GET":
            if path == "/version":
                return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0",
                                            "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
                                            "gitTreeState": "clean", "buildDate": "2024-12-11T17:55:49Z",
                                            "goVersion": "go1.23.3", "compiler": "gc", "platform": "linux/amd64"})
            if path in ("/healthz", "/livez", "/readyz"):
                return self.health(path)
            if path == "/api":
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:%s" % api.port}]})
            if path == "/apis":
                return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": self.groups()})
            if parts[:1] == ["apis"] and len(parts) == 2:
                g = [x for x in self.groups() if x["name"] == parts[1]]
                if g:
                    gg = dict(g[0])
                    gg.update({"kind": "APIGroup", "apiVersion": "v1"})
                    return self.send_json(200, gg)
            if parts == ["api", "v1"]:
                return self.send_json(200, self.resource_list("", "v1"))
            if parts[:1] == ["apis"] and len(parts) == 3:
                rl = self.resource_list(parts[1], parts[2])
                if rl["resources"]:
                    return self.send_json(200, rl)
            if parts[:2] == ["openapi", "v3"]:
                return self.openapi(parts[2:])
        if not info["resourceRequest"]:
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        group, version = info["group"], info["version"]
        ns, plural, name, sub = info["namespace"], info["resource"], info["name"], info["subresource"]
        if plural == "namespaces":
            ns = ""
        if info["verb"] in ("list", "watch") and not info["nameInPath"]:
            name = ""
        res = api.res(group, version, plural)
        if res is None or info["extraParts"] or (ns and not res.namespaced) or (name and res.namespaced and not ns):
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        if sub and not (sub == "status" and res.status) and sub not in res.subs:
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        verb = info["verb"]
        if method == "POST" and name and not sub:
            raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed", {})
        if method in ("PUT", "PATCH") and not name:
            raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed", {})
        if verb not in res.verbs or (sub in res.subs and verb not in res.subs[sub]):
            raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed", {})
        api.faults.delay(verb, plural)
        rule = api.faults.take_failure(verb, plural)
        if rule:
            if rule.get("flowcontrol"):  # filters/priority-and-fairness.go tooManyRequests
                raise PlainError(429, "Too many requests, please try again later.\n", [("Retry-After", "1")])
            err = ApiError(rule["code"], rule.get("message") or GENERIC_MESSAGES.get(rule["code"], "injected failure"),
                           REASONS.get(rule["code"], ""))
            if rule["code"] == 429:
                err.details = {"retryAfterSeconds": 1}
            raise err
        body = self.read_body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if body and method in ("POST", "PUT") and ctype == "application/vnd.kubernetes.protobuf":
            try:
                body = dumps(k8sproto.decode(body))
            except (ValueError, IndexError, UnicodeDecodeError) as e:
                raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                               "application/json, application/yaml (%s)" % e, "UnsupportedMediaType")
        elif body and method in ("POST", "PUT") and ctype == "application/yaml" and yaml is not None:
            body = dumps(yaml.safe_load(body))
        elif body and method in ("POST", "PUT") and ctype not in ("", "application/json", "*/*"):
            raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                           "application/json, application/yaml, application/vnd.kubernetes.protobuf", "UnsupportedMediaType")
        if res.virtual or (sub and sub in res.subs):
            return self.virtual(res, ns, name, sub, body, q, user)
        target = negotiate_transform(self.headers.get("Accept", ""))
        if verb == "get":
            o = api.store.get(res.storage, ns, name)
            if o is None:
                raise not_found(res, name)
            view = res.to_view(o)
            if target:
                return self.send_json(200, self.transform(res, target, [view], {"resourceVersion": view["metadata"].get("resourceVersion", "")}, q))
            return self.send_json(200, view)
        if verb == "list":
            lst = api.list(res, ns, q)
            if target:
                return self.send_json(200, self.transform(res, target, lst["items"], lst["metadata"], q, as_list=True))
            return self.send_json(200, lst)
        if verb == "watch":
            return self.watch(res, ns, q, target)
        if verb in ("create", "update"):
            obj = api.decode_body(res, body, q, warnings, "CreateOptions" if verb == "create" else "UpdateOptions") if body else None
            if verb == "create":
                if obj is None:
                    raise bad_request("the object provided is unrecognized")
                out = api.create(res, ns, obj, q, warnings)
                return self.send_json(201, out, warnings)
            code, out = api.update(res, ns, name, obj, q, warnings, sub)
            return self.send_json(code, out, warnings)
        if verb == "patch":
            code, out = api.patch(res, ns, name, body, self.headers.get("Content-Type"), q, warnings, sub)
            return self.send_json(code, out, warnings)
        dbody = None
        if body.strip():
            try:
                dbody = json.loads(body)
            except ValueError:
                raise bad_request("invalid DeleteOptions body")
        if verb == "delete":
            code, out = api.delete(res, ns, name, q, dbody, warnings, sub)
            return self.send_json(code, out, warnings)
        # deletecollection
        lst = api.list(res, ns, {k: v for k, v in q.items() if k in ("labelSelector", "fieldSelector")})
        for o in lst["items"]:
            try:
                api.delete(res, o["metadata"].get("namespace", ""), o["metadata"]["name"], q, dbody, warnings)
            except ApiError:
                pass
        lst["metadata"] = {"resourceVersion": str(api.store.rv)}
        return self.send_json(200, lst, warnings)

    # -- Table and PartialObjectMetadata output (handlers/response.go)
    def transform(self, res, target, views, list_meta, q, as_list=False):
        kind, gv = target
        if kind == "Partial":
            items = [tables.partial_metadata(v, gv) for v in views]
            if as_list:
                return {"kind": "PartialObjectMetadataList", "apiVersion": gv, "metadata": list_meta, "items": items}
            return items[0]
        inc = q.get("includeObject") or "Metadata"
        if inc not in ("None", "Metadata", "Object"):
            raise bad_request('unrecognized includeObject value: "%s"' % inc)
        printer, row_view = table_printer(res)
        return tables.build_table(printer, views, list_meta, inc, False, gv, row_view)

    # -- virtual endpoints: reviews and TokenRequest
    def virtual(self, res, ns, name, sub, body, q, user):
        api = self.server.api
        user = user or rbac.admin_user()
        try:
            obj = json.loads(body.decode("utf-8")) if body.strip() else {}
        except ValueError as e:
            raise bad_request("json: %s" % e)
        if not isinstance(obj, dict):
            raise bad_request("the object provided is unrecognized")
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        if sub == "token":  # TokenRequest (pkg/registry/core/serviceaccount/storage/token.go)
            sa = api.store.get(("", "serviceaccounts"), ns, name)
            if sa is None:
                raise not_found(res, name)
            secs = spec.get("expirationSeconds") or 3600
            if not isinstance(secs, int) or secs < 600:
                raise invalid_gk("TokenRequest.authentication.k8s.io", "", [
                    ("spec.expirationSeconds", "FieldValueInvalid",
                     "Invalid value: %s: may not specify a duration less than 10 minutes" % schema.field_value(secs))],
                    "authentication.k8s.io", "TokenRequest")
            tok, exp = rbac.mint_token(api.token_key, ns, name, sa["metadata"]["uid"], secs, spec.get("audiences"))
            out = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                   "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
                   "spec": {"audiences": spec.get("audiences") or [rbac.ISSUER], "expirationSeconds": secs,
                            "boundObjectRef": spec.get("boundObjectRef")},
                   "status": {"token": tok, "expirationTimestamp": gotime.format_time(
                       datetime.datetime.fromtimestamp(exp, datetime.timezone.utc))}}
            return self.send_json(201, out)
        status = {}
        if res.plural in ("selfsubjectaccessreviews", "subjectaccessreviews"):
            subject = user
            if res.plural == "subjectaccessreviews":
                subject = {"username": spec.get("user", ""), "groups": spec.get("groups") or []}
            ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
            if not isinstance(ra, dict) and not isinstance(nra, dict):
                raise invalid_gk("%s.authorization.k8s.io" % res.kind, "", [
                    ("spec.resourceAttributes", "FieldValueRequired",
                     "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified")],
                    "authorization.k8s.io", res.kind)
            if isinstance(ra, dict):
                attrs = {"resourceRequest": True, "verb": ra.get("verb", ""), "group": ra.get("group", ""),
                         "resource": ra.get("resource", ""), "subresource": ra.get("subresource", ""),
                         "namespace": ra.get("namespace", ""), "name": ra.get("name", ""), "path": ""}
            else:
                attrs = {"resourceRequest": False, "verb": nra.get("verb", ""), "path": nra.get("path", ""),
                         "group": "", "resource": "", "subresource": "", "namespace": "", "name": ""}
            ok, reason = api.authorizer.authorize(subject, attrs)
            status = {"allowed": ok}
            if reason:
                status["reason"] = reason
        else:  # selfsubjectrulesreviews
            rr, nrr, errs = api.authorizer.rules_for(user, spec.get("namespace", ""))
            status = {"resourceRules": rr, "nonResourceRules": nrr, "incomplete": bool(errs)}
            if errs:
                status["evaluationError"] = aggregate(errs)
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        meta.setdefault("creationTimestamp", None)
        out = {"kind": res.kind, "apiVersion": res.gv, "metadata": meta, "spec": spec, "status": status}
        return self.send_json(201, out)

    # -- discovery
    def groups(self):
        seen = collections.OrderedDict()
        for r in self.server.api.all_res():
            if r.group:
                seen.setdefault(r.group, [])
                if r.version not in seen[r.group]:
                    seen[r.group].append(r.version)
        out = []
        for g, vs in seen.items():
            vers = [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in vs]
            out.append({"name": g, "versions": vers, "preferredVersion": vers[0]})
        return out

    def resource_list(self, group, version):
        out = []
        for r in self.server.api.all_res():
            if r.group != group or r.version != version:
                continue
            e = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                 "verbs": r.verbs}
            if r.short:
                e["shortNames"] = r.short
            if r.categories:
                e["categories"] = r.categories
            out.append(e)
            if r.status:
                out.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
            for sub, verbs in sorted(r.subs.items()):
                out.append({"name": r.plural + "/" + sub, "singularName": "", "namespaced": r.namespaced,
                            "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                            "verbs": verbs})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "%s/%s" % (group, version) if group else version,
                "resources": out}

    def openapi(self, rest):
        api = self.server.api
        gvs = collections.OrderedDict()
        for r in api.all_res():
            key = "api/v1" if not r.group else "apis/%s/%s" % (r.group, r.version)
            gvs.setdefault(key, []).append(r)
        if not rest:
            return self.send_json(200, {"paths": {k: {"serverRelativeURL": "/openapi/v3/%s?hash=%08X" % (k, api.reg_version)}
                                                  for k in gvs}})
        key = "/".join(rest)
        if key not in gvs:
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        paths = {}
        for r in gvs[key]:
            base = "/" + key
            p = base + ("/namespaces/{namespace}/%s/{name}" % r.plural if r.namespaced else "/%s/{name}" % r.plural)
            paths[p] = {"patch": {"operationId": "patch%s" % r.kind, "x-kubernetes-action": "patch",
                                  "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
                                  "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                                                 {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                                                 {"name": "fieldManager", "in": "query", "schema": {"type": "string"}}]}}
        return self.send_json(200, {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
                                    "paths": paths, "components": {"schemas": {}}})

    # -- watch
    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def watch(self, res, ns, q, target=None):
        """apiserver v0.32.0 pkg/storage/cacher (cacher.go, cache_watcher.go, watch_cache.go) and
        pkg/endpoints/handlers/watch.go."""
        api = self.server.api
        store = api.store
        causes = validate_list_options(q, watch=True)
        if causes:
            raise invalid_gk("ListOptions.meta.k8s.io", "", causes, "meta.k8s.io", "ListOptions")
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = convert_field_selector(res, parse_field_selector(q.get("fieldSelector", "")))
        rvq = q.get("resourceVersion", "")
        try:
            timeout = float(q.get("timeoutSeconds") or 0)
        except ValueError:
            timeout = 0
        if not timeout:
            timeout = api.args.watch_timeout  # the real server picks 30-60 min
        bookmarks = qbool(q, "allowWatchBookmarks")
        watch_list = "sendInitialEvents" in q and qbool(q, "sendInitialEvents")
        if rvq and rvq != "0":
            try:
                since = int(rvq)
            except ValueError:
                raise bad_request('resourceVersion: Invalid value: "%s": must be a non-negative integer' % rvq)
        else:
            since = None
        if "sendInitialEvents" in q:
            send_initial = watch_list
        else:
            send_initial = since is None  # "defaults to true if resourceVersion is "" or "0""
        if watch_list and since is not None and since > store.rv:
            raise ApiError(504, "Too large resource version: %d, current: %d" % (since, store.rv), "Timeout",
                           {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                            "retryAfterSeconds": 1})
        err = None
        w = Watcher(res.storage)
        with store.lock:
            with api.faults.lock:
                if api.faults.expire_watches > 0:
                    api.faults.expire_watches -= 1
                    err = "too old resource version: %s (%d)" % (rvq or "0", store.rv)
            if err is None and not send_initial and since is not None and since < store.compacted_rv:
                err = "too old resource version: %d (%d)" % (since, store.compacted_rv)
            initial = []
            if err is None:
                if send_initial:
                    # the current state only: for sendInitialEvents (WatchList) never history
                    objs = list(store.objects[res.storage].values())
                    if watch_list:
                        objs.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
                    else:
                        objs.sort(key=lambda o: int(o["metadata"]["resourceVersion"]))
                    initial = [("ADDED", o, None) for o in objs]
                elif since is not None:
                    for (rv, st, typ, o, old) in store.history:
                        if rv > since and st == res.storage:
                            initial.append((typ, o, old))
                store.watchers.add(w)
            start_rv = store.rv
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in getattr(self, "extra_headers", ()):
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True
        self.watch_target = target
        self.watch_headers_sent = False
        try:
            if err:
                st = ApiError(410, err, "Expired").status()
                self.write_chunk(dumps({"type": "ERROR", "object": st}) + b"\n")
                self.write_chunk(b"")
                return
            for typ, o, old in initial:
                self.emit(res, ns, lsel, fsel, typ, o, old, q)
            if bookmarks and watch_list:
                self.write_chunk(dumps({"type": "BOOKMARK", "object": {
                    "kind": res.kind, "apiVersion": res.gv, "metadata": {
                        "resourceVersion": str(start_rv), "annotations": {"k8s.io/initial-events-end": "true"}}}}) + b"\n")
            deadline = time.time() + timeout
            next_bm = time.time() + api.args.bookmark_interval
            sock = self.connection
            timed_out = False
            while not w.closed:
                now = time.time()
                if now >= deadline:
                    timed_out = True
                    break
                try:
                    ev = w.q.get(timeout=min(1.0, deadline - now))
                except queue.Empty:
                    ev = False
                if ev is None:
                    break
                if ev:
                    self.emit(res, ns, lsel, fsel, *ev, q=q)
                    continue
                if bookmarks and time.time() >= next_bm:
                    with store.lock:
                        brv = store.rv if w.q.empty() else None
                    if brv is not None:
                        self.write_chunk(dumps({"type": "BOOKMARK", "object": {
                            "kind": res.kind, "apiVersion": res.gv, "metadata": {"resourceVersion": str(brv)}}}) + b"\n")
                    next_bm = time.time() + api.args.bookmark_interval
                # detect a client that went away while idle
                try:
                    r, _, _ = select.select([sock], [], [], 0)
                    if r:
                        break
                except (ValueError, OSError):
                    break
            if bookmarks and timed_out and not w.closed:
                # like the watch cache, send a last bookmark before the deadline closes the stream
                while True:
                    try:
                        ev = w.q.get_nowait()
                    except queue.Empty:
                        break
                    if ev:
                        self.emit(res, ns, lsel, fsel, *ev, q=q)
                with store.lock:
                    brv = store.rv if w.q.empty() else None
                if brv is not None:
                    self.write_chunk(dumps({"type": "BOOKMARK", "object": {
                        "kind": res.kind, "apiVersion": res.gv, "metadata": {"resourceVersion": str(brv)}}}) + b"\n")
            self.write_chunk(b"")
        except (OSError, ValueError):
            pass
        finally:
            with store.lock:
                store.watchers.discard(w)

    def emit(self, res, ns, lsel, fsel, typ, obj, old, q=None):
        """cache_watcher.go convertToWatchEvent: an update into the selection is ADDED, one out of it
        is DELETED carrying the previous object with the update's resourceVersion."""
        def ok(o):
            if o is None:
                return False
            m = o["metadata"]
            if ns and m.get("namespace", "") != ns:
                return False
            if lsel and not label_match(lsel, m.get("labels")):
                return False
            if fsel and not field_match(fsel, o):
                return False
            return True
        cur_ok = ok(obj)
        out = obj
        if typ == "MODIFIED":
            old_ok = ok(old)
            if cur_ok and not old_ok:
                typ = "ADDED"
            elif old_ok and not cur_ok:
                typ, cur_ok = "DELETED", True
                out = dict(old)
                out["metadata"] = dict(old["metadata"])
                out["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
        if not cur_ok:
            return
        view = res.to_view(out)
        target = getattr(self, "watch_target", None)
        if target:
            # handlers/watch.go: each object is transformed; Table headers only on the first event
            if target[0] == "Table":
                printer, row_view = table_printer(res)
                view = tables.build_table(printer, [view], {"resourceVersion": view["metadata"].get("resourceVersion", "")},
                                          (q or {}).get("includeObject") or "Metadata", self.watch_headers_sent,
                                          target[1], row_view)
                self.watch_headers_sent = True
            else:
                view = tables.partial_metadata(view, target[1])
        self.write_chunk(dumps({"type": typ, "object": view}) + b"\n")

    # -- control
    def control(self, method, what, q):
        api = self.server.api
        body = self.read_body() if method in ("POST", "PUT") else b""
        try:
            req = json.loads(body) if body.strip() else {}
        except ValueError:
            raise bad_request("control: body must be JSON")
        f = api.faults
        if method == "GET" and what == "state":
            with api.store.lock:
                counts = {"%s/%s" % k: len(v) for k, v in api.store.objects.items() if v}
                out = {"resourceVersion": str(api.store.rv), "compactedResourceVersion": str(api.store.compacted_rv),
                       "watchers": len(api.store.watchers), "objects": counts,
                       "serviceMap": {k: "%s:%d" % v for k, v in api.service_map.items()}}
            return self.send_json(200, out)
        if method == "GET" and what == "requests":
            return self.send_json(200, {"requests": list(api.requests)})
        if method != "POST":
            raise ApiError(405, "control endpoints other than state and requests take POST", "MethodNotAllowed")
        if what == "close-watches":
            with api.store.lock:
                ws = list(api.store.watchers)
            for w in ws:
                w.close()
            return self.send_json(200, {"closed": len(ws)})
        if what == "expire-next-watch":
            with f.lock:
                f.expire_watches += int(req.get("count", 1))
            return self.send_json(200, {"expireWatches": f.expire_watches})
        if what == "compact":
            api.store.compact()
            return self.send_json(200, {"compactedResourceVersion": str(api.store.compacted_rv)})
        if what == "fail":
            rule = {"verb": req.get("verb", "*"), "resource": req.get("resource", "*"),
                    "code": int(req.get("code", 500)), "count": int(req.get("count", 1)), "message": req.get("message"),
                    "flowcontrol": bool(req.get("flowcontrol")) and int(req.get("code", 500)) == 429}
            with f.lock:
                f.fail_rules.append(rule)
            return self.send_json(200, rule)
        if what == "latency":
            rule = {"verb": req.get("verb", "*"), "resource": req.get("resource", "*"), "ms": int(req.get("ms", 0))}
            with f.lock:
                f.latency = [r for r in f.latency if not (r["verb"] == rule["verb"] and r["resource"] == rule["resource"])]
                if rule["ms"]:
                    f.latency.append(rule)
            return self.send_json(200, {"latency": f.latency})
        if what == "reset-faults":
            with f.lock:
                f.fail_rules, f.latency, f.expire_watches, f.down_until = [], [], 0, 0.0
            return self.send_json(200, {})
        if what == "service-map":
            for k, v in req.items():
                api.add_service_map("%s=%s" % (k, v))
            return self.send_json(200, {k: "%s:%d" % v for k, v in api.service_map.items()})
        if what == "snapshot":
            api.store.save()
            return self.send_json(200, {"saved": bool(api.store.state_dir)})
        if what == "restart":
            keep = bool(req.get("keepState", True))
            with api.store.lock:
                ws = list(api.store.watchers)
                if not keep:
                    for k in list(api.store.objects):
                        if k != ("", "namespaces"):
                            api.store.objects[k].clear()
                    with api.reg_lock:
                        for k, r in list(api.resources.items()):
                            if not r.builtin:
                                del api.resources[k]
                        api.reg_version += 1
                api.store.history.clear()
                api.store.rv_times.clear()
                api.store.compacted_rv = api.store.rv
                api.store.dirty = True
            if not keep:
                api.seed()
            for w in ws:
                w.close()
            with f.lock:
                f.down_until = time.time() + float(req.get("downSeconds", 0))
            return self.send_json(200, {"keepState": keep, "resourceVersion": str(api.store.rv)})
        if what == "bulk":
            return self.bulk(req)
        if what == "token":
            ns, name = req.get("namespace", "default"), req.get("serviceAccount", "default")
            sa = api.store.get(("", "serviceaccounts"), ns, name)
            if sa is None:
                raise not_found(api.res("", "v1", "serviceaccounts"), name)
            secs = int(req.get("expirationSeconds") or 3600)
            tok, exp = rbac.mint_token(api.token_key, ns, name, sa["metadata"]["uid"], secs)
            return self.send_json(200, {"token": tok, "username": rbac.sa_username(ns, name),
                                        "expirationTimestamp": gotime.format_time(
                                            datetime.datetime.fromtimestamp(exp, datetime.timezone.utc))})
        if what == "continue-ttl":
            with api.store.lock:
                api.store.continue_ttl = float(req.get("seconds", 300))
            return self.send_json(200, {"continueTTL": api.store.continue_ttl})
        raise ApiError(404, "unknown control endpoint %s" % what, "NotFound")

    def bulk(self, req):
        """{"group":"","version":"v1","resource":"pods","namespace":"default","count":N,"template":{...}}
        or {"objects":[...]} with the same group/version/resource. Skips admission; notifies watchers."""
        api = self.server.api
        res = api.res(req.get("group", ""), req.get("version", "v1"), req.get("resource", "pods"))
        if res is None:
            raise ApiError(404, "unknown resource", "NotFound")
        ns = req.get("namespace", "default")
        objs = list(req.get("objects") or [])
        tpl = req.get("template")
        if tpl:
            prefix = req.get("prefix") or (tpl.get("metadata") or {}).get("generateName") or "obj-"
            for i in range(int(req.get("count", 1))):
                o = copy.deepcopy(tpl)
                o.setdefault("metadata", {})["name"] = "%s%05d" % (prefix, i)
                o["metadata"].pop("generateName", None)
                objs.append(o)
        n = 0
        for o in objs:
            meta = o.setdefault("metadata", {})
            if res.namespaced:
                meta["namespace"] = meta.get("namespace") or ns
            o["apiVersion"], o["kind"] = res.gv, res.kind
            api.apply_defaults(res, o)
            api.prepare_create(res, o)
            api.store.commit(res.storage, "ADDED", res.from_view(o))
            n += 1
        return self.send_json(201, {"created": n, "resourceVersion": str(api.store.rv)})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, api, ssl_ctx):
        self.api = api
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        if self.ssl_ctx is not None:
            try:
                request.settimeout(30)
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if self.ssl_ctx is not None:
                try:
                    request.close()
                except OSError:
                    pass

    def handle_error(self, request, client_address):
        if self.api.args.verbose:
            super().handle_error(request, client_address)


def write_kubeconfig(path, port, ca_file, token, ns="default"):
    with open(ca_file, "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    text = ("apiVersion: v1\nkind: Config\nclusters:\n- name: meshmetric-local\n  cluster:\n"
            "    server: https://127.0.0.1:%d\n    certificate-authority-data: %s\n"
            "users:\n- name: meshmetric-admin\n  user:\n    token: %s\n"
            "contexts:\n- name: meshmetric-local\n  context:\n    cluster: meshmetric-local\n"
            "    user: meshmetric-admin\n    namespace: %s\n"
            "current-context: meshmetric-local\npreferences: {}\n") % (port, ca, token, ns)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description="Local Kubernetes API server for tests")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="HTTPS port (0 = pick a free one)")
    p.add_argument("--http-port", type=int, default=-1, help="also serve plain HTTP on this port (-1 = off)")
    p.add_argument("--cert-dir", required=True, help="where ca.crt/ca.key/apiserver.crt/apiserver.key live (made if missing)")
    p.add_argument("--token", default=None)
    p.add_argument("--token-file", default=None)
    p.add_argument("--kubeconfig", default=None, help="write a kubeconfig here")
    p.add_argument("--port-file", default=None, help="write the HTTPS port here once listening")
    p.add_argument("--http-port-file", default=None, help="write the HTTP port here once listening")
    p.add_argument("--state", default=None, help="keep state in DIR/state.json across restarts")
    p.add_argument("--service-map", default="", help="ns/name:port=127.0.0.1:PORT,... for webhook services")
    p.add_argument("--history", type=int, default=200000, help="watch events retained for resourceVersion replay")
    p.add_argument("--bookmark-interval", type=float, default=60.0)
    p.add_argument("--watch-timeout", type=float, default=1800.0, help="watch duration when timeoutSeconds is unset")
    p.add_argument("--continue-ttl", type=float, default=300.0,
                   help="seconds an older resourceVersion stays readable (continue tokens, exact lists), like etcd compaction")
    p.add_argument("--shutdown-delay", type=float, default=0.0,
                   help="after SIGTERM: seconds /readyz fails while requests are still served (--shutdown-delay-duration)")
    p.add_argument("--shutdown-grace", type=float, default=0.0,
                   help="then: seconds new requests get 429 + Retry-After before the listener closes")
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args(argv)
    if args.token_file:
        with open(args.token_file) as f:
            args.token = f.read().strip()
    if not args.token:
        args.token = "meshmetric-test-token"

    ca_key, ca_crt = pki.ensure_ca(args.cert_dir)
    key, crt = pki.ensure_leaf(args.cert_dir, "apiserver", ca_key, ca_crt,
                               ["IP:127.0.0.1", "DNS:localhost"], cn="meshmetric-test-apiserver")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["http/1.1"])

    api = ApiServer(args)
    httpd = Server((args.host, args.port), api, ctx)
    api.port = httpd.server_address[1]
    servers = [httpd]
    if args.http_port >= 0:
        servers.append(Server((args.host, args.http_port), api, None))
    if args.kubeconfig:
        write_kubeconfig(args.kubeconfig, api.port, ca_crt, args.token)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % api.port)
        os.replace(args.port_file + ".tmp", args.port_file)

    if args.http_port_file and len(servers) > 1:
        with open(args.http_port_file + ".tmp", "w") as f:
            f.write("%d\n" % servers[1].server_address[1])
        os.replace(args.http_port_file + ".tmp", args.http_port_file)
    stop = threading.Event()

    def snapshotter():
        while not stop.wait(0.5):
            if api.store.dirty:
                try:
                    api.store.save()
                except OSError as e:
                    sys.stderr.write("snapshot failed: %s\n" % e)

    if args.state:
        threading.Thread(target=snapshotter, daemon=True).start()

    def graceful():
        # pkg/server/genericapiserver.go: ShutdownInitiated (readyz fails) -> ShutdownDelayDuration
        # (requests still served) -> new requests get 429 (filters/with_retry_after.go) -> stop
        api.shutting_down = True
        time.sleep(args.shutdown_delay)
        api.draining = True
        with api.store.lock:
            ws = list(api.store.watchers)
        for w in ws:
            w.close()
        time.sleep(args.shutdown_grace)
        for s in servers:
            s.shutdown()

    def on_signal(signum, frame):
        if stop.is_set():
            return
        stop.set()
        threading.Thread(target=graceful, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    sys.stderr.write("test apiserver listening on https://%s:%d%s\n" % (
        args.host, api.port, (" and http://%s:%d" % (args.host, servers[1].server_address[1])) if len(servers) > 1 else ""))
    sys.stderr.flush()
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        if args.state:
            api.store.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
