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
import jsonpatch_v4  # noqa: E402
import k8sproto  # noqa: E402
import mergepatch  # noqa: E402
import pki  # noqa: E402

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
    def __init__(self, code, message, reason=None, details=None, status="Failure"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else REASONS.get(code, "")
        self.details = details

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message}
        if self.reason:
            st["reason"] = self.reason
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st


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


def invalid(res, name, causes):
    """causes: list of (field, type, message-tail)."""
    msgs = ["%s: %s" % (f, m) for f, _t, m in causes]
    agg = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    d = _details(res, name)
    d["kind"] = res.kind
    d["causes"] = [{"reason": t, "message": m, "field": f} for f, t, m in causes]
    return ApiError(422, '%s "%s" is invalid: %s' % (res.gk, name, agg), "Invalid", d)


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
                 list_kind=None, to_view=None, from_view=None):
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
        R("events.k8s.io", "v1", "events", "Event", True, short=["ev"], generation=False,
          storage=("", "events"), to_view=event_to_v1, from_view=event_from_v1),
        R("coordination.k8s.io", "v1", "leases", "Lease", True, generation=False,
          unconditional_update=False, create_on_update=True),
        R("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
          "MutatingWebhookConfiguration", False, categories=["api-extensions"]),
        R("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
          "ValidatingWebhookConfiguration", False, categories=["api-extensions"]),
        R("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
          short=["crd", "crds"], status=True, categories=["api-extensions"]),
    ]


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


def field_match(reqs, obj):
    for path, op, val in reqs:
        v = _field(obj, path)
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
    def __init__(self, history_size, state_dir=None):
        self.lock = threading.RLock()
        self.rv = 1
        self.objects = collections.defaultdict(dict)  # storage -> {(ns, name): obj}
        self.history = collections.deque()  # (rv, storage, type, obj, old)
        self.history_size = history_size
        self.compacted_rv = 0
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
            self.compacted_rv = self.rv

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
                    "userInfo": {"username": "admin", "groups": ["system:masters", "system:authenticated"]},
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
        self.store = Store(args.history, args.state)
        self.faults = Faults()
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
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            if not self.store.get(("", "namespaces"), "", ns):
                obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                self.prepare_create(self.res("", "v1", "namespaces"), obj)
                self.store.commit(("", "namespaces"), "ADDED", obj)

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
                self.resources[(group, v["name"], names["plural"])] = r
            self.reg_version += 1

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
        if q.get("force") and ctype != APPLY_PATCH:
            raise invalid_opts("force", "Forbidden: may not be specified for non-apply patch")
        if ctype == APPLY_PATCH:
            if not q.get("fieldManager"):
                raise ApiError(422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                               "Invalid", {"group": "meta.k8s.io", "kind": "PatchOptions",
                                           "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]})
            try:
                text = body.decode("utf-8")
                patch = yaml.safe_load(text) if yaml else json.loads(text)
            except Exception as e:
                raise bad_request("error decoding YAML: %s" % e)
            if not isinstance(patch, dict):
                raise bad_request("the object provided is unrecognized")
        else:
            try:
                patch = json.loads(body.decode("utf-8") or "null")
            except ValueError as e:
                raise bad_request("error decoding patch: %s" % e)
        if sub and not (sub == "status" and res.status):
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        cur_stored = self.store.get(res.storage, ns if res.namespaced else "", name)
        if cur_stored is None:
            if ctype == APPLY_PATCH and not sub:
                patch.setdefault("metadata", {})["name"] = name
                return 201, self.create(res, ns, patch, q, warnings)
            raise not_found(res, name)
        cur = res.to_view(cur_stored)
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
        elif ctype == MERGE_PATCH:
            if not isinstance(patch, dict):
                raise bad_request("json: cannot unmarshal %s into Go value of type map[string]interface {}" % jsonpatch_v4._gotype(patch))
            new = mergepatch.merge_patch(cur, patch)
        elif ctype == STRATEGIC_PATCH:
            if not isinstance(patch, dict):
                raise bad_request("json: cannot unmarshal %s into Go value of type map[string]interface {}" % jsonpatch_v4._gotype(patch))
            new = mergepatch.strategic_merge(cur, patch)
        else:  # apply: create-or-merge
            pm = patch.get("metadata") or {}
            if pm.get("name") and pm["name"] != name:
                raise bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (pm["name"], name))
            patch.pop("apiVersion", None)
            patch.pop("kind", None)
            new = mergepatch.strategic_merge(cur, patch) if res.builtin else mergepatch.merge_patch(cur, patch)
        if not isinstance(new, dict):
            raise bad_request("patched object is not an object")
        return self.update(res, ns, name, new, q, warnings, sub, precondition=False, created_ok=False)

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
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = parse_field_selector(q.get("fieldSelector", ""))
        limit = q.get("limit")
        try:
            limit = int(limit) if limit else 0
        except ValueError:
            raise bad_request("limit: Invalid value: %r" % limit)
        cont = q.get("continue")
        rvq = q.get("resourceVersion")
        match = q.get("resourceVersionMatch")
        if match and not rvq:
            raise invalid_opts("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")
        if match and cont:
            raise invalid_opts("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden when continue is provided")
        if match and match not in ("Exact", "NotOlderThan"):
            raise invalid_opts("resourceVersionMatch", 'Unsupported value: "%s": supported values: "Exact", "NotOlderThan"' % match)
        rv, items = self.store.items(res.storage, ns if res.namespaced else None)
        if rvq and rvq != "0":
            try:
                want = int(rvq)
            except ValueError:
                raise bad_request('resourceVersion: Invalid value: "%s": must be a non-negative integer' % rvq)
            if want > rv:
                raise ApiError(504, "Too large resource version: %d, current: %d" % (want, rv), "Timeout",
                               {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                "retryAfterSeconds": 1})
            if match == "Exact" and want < self.store.compacted_rv:
                raise ApiError(410, "too old resource version: %d (%d)" % (want, self.store.compacted_rv), "Expired")
        start = None
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
                rv, start = int(tok["rv"]), tok["start"]
            except Exception:
                raise bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        out, nxt = [], None
        for o in items:
            k = "%s/%s" % (o["metadata"].get("namespace", ""), o["metadata"]["name"])
            if start is not None and k <= start:
                continue
            if lsel and not label_match(lsel, o["metadata"].get("labels")):
                continue
            if fsel and not field_match(fsel, o):
                continue
            if limit and len(out) >= limit:
                nxt = "%s/%s" % (out[-1]["metadata"].get("namespace", ""), out[-1]["metadata"]["name"])
                break
            out.append(o)
        lm = {"resourceVersion": str(rv)}
        if nxt:
            lm["continue"] = base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": nxt}).encode()).decode().rstrip("=")
            if not lsel and not fsel:
                idx = next(i for i, o in enumerate(items) if "%s/%s" % (o["metadata"].get("namespace", ""), o["metadata"]["name"]) == nxt)
                lm["remainingItemCount"] = len(items) - idx - 1
        return {"kind": res.list_kind, "apiVersion": res.gv, "metadata": lm,
                "items": [res.to_view(o) for o in out]}


def invalid_opts(field, msg):
    return ApiError(422, 'ListOptions.meta.k8s.io "" is invalid: %s: %s' % (field, msg), "Invalid",
                    {"group": "meta.k8s.io", "kind": "ListOptions", "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": field}]})


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
    def read_body(self):
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
        for w in warnings:
            esc = w.replace("\\", "\\\\").replace('"', '\\"')
            self.send_header("Warning", '299 - "%s"' % esc)
        self.end_headers()
        self.wfile.write(data)

    def send_error_status(self, err, warnings=()):
        self.send_json(err.code, err.status(), warnings)

    # -- main entry
    def handle_api(self, method):
        api = self.server.api
        warnings = []
        try:
            u = urllib.parse.urlsplit(self.path)
            path = u.path
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
            api.requests.append({"time": time.time(), "method": method, "path": self.path,
                                 "userAgent": self.headers.get("User-Agent", ""),
                                 "contentType": self.headers.get("Content-Type", "")})
            auth = self.headers.get("Authorization")
            anonymous_ok = path in ("/version", "/healthz", "/livez", "/readyz")
            if auth is not None or not anonymous_ok:
                if auth != "Bearer " + api.token:
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            if path.startswith("/_control/"):
                return self.control(method, path[len("/_control/"):].strip("/"), q)
            if time.time() < api.faults.down_until:
                raise ApiError(503, "the server is currently unable to handle the request", "ServiceUnavailable")
            return self.route(method, path, q, warnings)
        except ApiError as e:
            try:
                self.send_error_status(e, warnings)
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # pragma: no cover - surfaced as InternalError
            import traceback
            traceback.print_exc()
            try:
                self.send_error_status(internal_error(repr(e)), warnings)
            except OSError:
                pass

    def route(self, method, path, q, warnings):
        api = self.server.api
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if method == "GET":
            if path == "/version":
                return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0",
                                            "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
                                            "gitTreeState": "clean", "buildDate": "2024-12-11T17:55:49Z",
                                            "goVersion": "go1.23.3", "compiler": "gc", "platform": "linux/amd64"})
            if path in ("/healthz", "/livez", "/readyz"):
                data = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(data)
                return
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
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        res = api.res(group, version, plural)
        if res is None or len(rest) > 3 or (ns and not res.namespaced) or (name and res.namespaced and not ns):
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        if sub and not (sub == "status" and res.status):
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        watch = qbool(q, "watch")
        verb = {"GET": "get" if name else ("watch" if watch else "list"), "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}[method]
        if method == "POST" and name:
            raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed", {})
        if method in ("PUT", "PATCH") and not name:
            raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed", {})
        api.faults.delay(verb, plural)
        rule = api.faults.take_failure(verb, plural)
        if rule:
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
        if verb == "get":
            o = api.store.get(res.storage, ns, name)
            if o is None:
                raise not_found(res, name)
            return self.send_json(200, res.to_view(o))
        if verb == "list":
            return self.send_json(200, api.list(res, ns, q))
        if verb == "watch":
            return self.watch(res, ns, q)
        if verb in ("create", "update"):
            try:
                obj = json.loads(body.decode("utf-8")) if body else None
            except ValueError as e:
                raise bad_request("json: %s" % e)
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
                 "verbs": ALL_VERBS}
            if r.short:
                e["shortNames"] = r.short
            if r.categories:
                e["categories"] = r.categories
            out.append(e)
            if r.status:
                out.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
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

    def watch(self, res, ns, q):
        api = self.server.api
        store = api.store
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = parse_field_selector(q.get("fieldSelector", ""))
        rvq = q.get("resourceVersion", "")
        try:
            timeout = float(q.get("timeoutSeconds") or 0)
        except ValueError:
            timeout = 0
        if not timeout:
            timeout = api.args.watch_timeout  # the real server picks 30-60 min
        bookmarks = qbool(q, "allowWatchBookmarks")
        send_initial = q.get("sendInitialEvents")
        if send_initial is not None:
            send_initial = qbool(q, "sendInitialEvents")
            if q.get("resourceVersionMatch") != "NotOlderThan":
                raise invalid_opts("resourceVersionMatch", "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
        elif q.get("resourceVersionMatch"):
            raise invalid_opts("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
        if rvq and rvq != "0":
            try:
                since = int(rvq)
            except ValueError:
                raise bad_request('resourceVersion: Invalid value: "%s": must be a non-negative integer' % rvq)
        else:
            since = None
        if send_initial is None:
            send_initial = since is None
        err = None
        w = Watcher(res.storage)
        with store.lock:
            with api.faults.lock:
                if api.faults.expire_watches > 0:
                    api.faults.expire_watches -= 1
                    err = "too old resource version: %s (%d)" % (rvq or "0", store.rv)
            if err is None and since is not None and since < store.compacted_rv:
                err = "too old resource version: %d (%d)" % (since, store.compacted_rv)
            initial = []
            if err is None:
                if send_initial:
                    for o in store.objects[res.storage].values():
                        initial.append(("ADDED", o, None))
                    initial.sort(key=lambda e: int(e[1]["metadata"]["resourceVersion"]))
                if since is not None:
                    for (rv, st, typ, o, old) in store.history:
                        if rv > since and st == res.storage:
                            initial.append((typ, o, old))
                store.watchers.add(w)
            start_rv = store.rv
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.close_connection = True
        try:
            if err:
                st = ApiError(410, err, "Expired").status()
                self.write_chunk(dumps({"type": "ERROR", "object": st}) + b"\n")
                self.write_chunk(b"")
                return
            for typ, o, old in initial:
                self.emit(res, ns, lsel, fsel, typ, o, old)
            if bookmarks and q.get("sendInitialEvents") is not None and send_initial:
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
                    self.emit(res, ns, lsel, fsel, *ev)
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
                        self.emit(res, ns, lsel, fsel, *ev)
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

    def emit(self, res, ns, lsel, fsel, typ, obj, old):
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
        if typ == "MODIFIED":
            old_ok = ok(old)
            if cur_ok and not old_ok:
                typ = "ADDED"
            elif old_ok and not cur_ok:
                typ, cur_ok = "DELETED", True
        if not cur_ok:
            return
        self.write_chunk(dumps({"type": typ, "object": res.to_view(obj)}) + b"\n")

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
                    "code": int(req.get("code", 500)), "count": int(req.get("count", 1)), "message": req.get("message")}
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
                api.store.compacted_rv = api.store.rv
                api.store.dirty = True
            for w in ws:
                w.close()
            with f.lock:
                f.down_until = time.time() + float(req.get("downSeconds", 0))
            return self.send_json(200, {"keepState": keep, "resourceVersion": str(api.store.rv)})
        if what == "bulk":
            return self.bulk(req)
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

    def on_signal(signum, frame):
        stop.set()
        threading.Thread(target=lambda: [s.shutdown() for s in servers], daemon=True).start()

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
