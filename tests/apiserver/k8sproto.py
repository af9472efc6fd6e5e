"""Decoding of the Kubernetes protobuf wire format for the few objects that kubectl's
typed clients send as protobuf (`kubectl create namespace|configmap|secret|serviceaccount|role|
rolebinding|clusterrole|clusterrolebinding|token`, `kubectl run`, `kubectl auth can-i`).

Wire format: magic "k8s\\0", then a runtime.Unknown {typeMeta{apiVersion=1,kind=2}=1, raw=2,
contentEncoding=3, contentType=4}; raw is the object's own message (field numbers from
k8s.io/api/core/v1/generated.proto). Unknown fields are skipped, so only the schema below is
decoded; everything the tests and demos send fits it.
"""
import base64

MAGIC = b"k8s\x00"


def _varint(b, i):
    shift = result = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if not c & 0x80:
            return result, i
        shift += 7


def _fields(b):
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield num, wt, v


def _int(v):
    return v - (1 << 64) if v >= 1 << 63 else v


S, B, I, BOOL = "string", "bytes", "int", "bool"
MAP_SS = ("map", S, S)
MAP_SB = ("map", S, B)

OWNER = {1: ("kind", S), 3: ("name", S), 4: ("uid", S), 5: ("apiVersion", S), 6: ("controller", BOOL),
         7: ("blockOwnerDeletion", BOOL)}
META = {1: ("name", S), 2: ("generateName", S), 3: ("namespace", S), 5: ("uid", S), 6: ("resourceVersion", S),
        7: ("generation", I), 11: ("labels", MAP_SS), 12: ("annotations", MAP_SS),
        13: ("ownerReferences", ("rep", OWNER)), 14: ("finalizers", ("rep", S))}
ENV = {1: ("name", S), 2: ("value", S)}
PORT = {1: ("name", S), 2: ("hostPort", I), 3: ("containerPort", I), 4: ("protocol", S), 5: ("hostIP", S)}
QUANT = {}  # resources are skipped
CONTAINER = {1: ("name", S), 2: ("image", S), 3: ("command", ("rep", S)), 4: ("args", ("rep", S)),
             5: ("workingDir", S), 6: ("ports", ("rep", PORT)), 7: ("env", ("rep", ENV)),
             14: ("imagePullPolicy", S), 16: ("stdin", BOOL), 18: ("tty", BOOL)}
PODSPEC = {2: ("containers", ("rep", CONTAINER)), 3: ("restartPolicy", S), 4: ("terminationGracePeriodSeconds", I),
           6: ("dnsPolicy", S), 7: ("nodeSelector", MAP_SS), 8: ("serviceAccountName", S), 10: ("nodeName", S),
           20: ("initContainers", ("rep", CONTAINER)), 22: ("serviceAccount", S)}
SVCPORT = {1: ("name", S), 2: ("protocol", S), 3: ("port", I), 4: ("targetPort", "intorstr"), 5: ("nodePort", I)}
SVCSPEC = {1: ("ports", ("rep", SVCPORT)), 2: ("selector", MAP_SS), 3: ("clusterIP", S), 4: ("type", S)}
OBJREF = {1: ("kind", S), 2: ("namespace", S), 3: ("name", S), 4: ("uid", S), 5: ("apiVersion", S),
          6: ("resourceVersion", S), 7: ("fieldPath", S)}
LABELSEL = {1: ("matchLabels", MAP_SS),
            2: ("matchExpressions", ("rep", {1: ("key", S), 2: ("operator", S), 3: ("values", ("rep", S))}))}
RULE = {1: ("verbs", ("rep", S)), 2: ("apiGroups", ("rep", S)), 3: ("resources", ("rep", S)),
        4: ("resourceNames", ("rep", S)), 5: ("nonResourceURLs", ("rep", S))}
SUBJECT = {1: ("kind", S), 2: ("apiGroup", S), 3: ("name", S), 4: ("namespace", S)}
ROLEREF = {1: ("apiGroup", S), 2: ("kind", S), 3: ("name", S)}
RESATTR = {1: ("namespace", S), 2: ("verb", S), 3: ("group", S), 4: ("version", S), 5: ("resource", S),
           6: ("subresource", S), 7: ("name", S)}
NONRESATTR = {1: ("path", S), 2: ("verb", S)}
# k8s.io/api v0.32.0 rbac/v1, authentication/v1, authorization/v1 generated.proto
TYPES = {
    "ServiceAccount": {1: ("metadata", META), 2: ("secrets", ("rep", OBJREF)),
                       3: ("imagePullSecrets", ("rep", {1: ("name", S)})), 4: ("automountServiceAccountToken", BOOL)},
    "Role": {1: ("metadata", META), 2: ("rules", ("rep", RULE))},
    "ClusterRole": {1: ("metadata", META), 2: ("rules", ("rep", RULE)),
                    3: ("aggregationRule", {1: ("clusterRoleSelectors", ("rep", LABELSEL))})},
    "RoleBinding": {1: ("metadata", META), 2: ("subjects", ("rep", SUBJECT)), 3: ("roleRef", ROLEREF)},
    "ClusterRoleBinding": {1: ("metadata", META), 2: ("subjects", ("rep", SUBJECT)), 3: ("roleRef", ROLEREF)},
    "TokenRequest": {1: ("metadata", META), 2: ("spec", {1: ("audiences", ("rep", S)), 4: ("expirationSeconds", I),
                                                         3: ("boundObjectRef", {1: ("kind", S), 2: ("apiVersion", S),
                                                                                3: ("name", S), 4: ("uid", S)})})},
    "SelfSubjectAccessReview": {1: ("metadata", META), 2: ("spec", {1: ("resourceAttributes", RESATTR),
                                                                    2: ("nonResourceAttributes", NONRESATTR)})},
    "SelfSubjectRulesReview": {1: ("metadata", META), 2: ("spec", {1: ("namespace", S)})},
    "SubjectAccessReview": {1: ("metadata", META), 2: ("spec", {1: ("resourceAttributes", RESATTR),
                                                                2: ("nonResourceAttributes", NONRESATTR),
                                                                3: ("user", S), 4: ("groups", ("rep", S)), 6: ("uid", S)})},
    "Namespace": {1: ("metadata", META), 2: ("spec", {1: ("finalizers", ("rep", S))})},
    "ConfigMap": {1: ("metadata", META), 2: ("data", MAP_SS), 3: ("binaryData", MAP_SB), 4: ("immutable", BOOL)},
    "Secret": {1: ("metadata", META), 2: ("data", MAP_SB), 3: ("type", S), 4: ("stringData", MAP_SS), 5: ("immutable", BOOL)},
    "Pod": {1: ("metadata", META), 2: ("spec", PODSPEC)},
    "Service": {1: ("metadata", META), 2: ("spec", SVCSPEC)},
}


def _value(t, v):
    if t == S:
        return v.decode("utf-8")
    if t == B:
        return base64.b64encode(bytes(v)).decode()
    if t == I:
        return _int(v)
    if t == BOOL:
        return bool(v)
    if t == "intorstr":  # IntOrString {type=1, intVal=2, strVal=3}
        d = {n: x for n, _w, x in _fields(v)}
        return d.get(3, b"").decode() if d.get(1) == 1 else _int(d.get(2, 0))
    if isinstance(t, dict):
        return decode_message(v, t)
    raise ValueError(t)


def decode_message(b, schema):
    out = {}
    for num, _wt, v in _fields(b):
        if num not in schema:
            continue
        name, t = schema[num]
        if isinstance(t, tuple) and t[0] == "map":
            kv = {n: x for n, _w, x in _fields(v)}
            out.setdefault(name, {})[_value(t[1], kv.get(1, b""))] = _value(t[2], kv.get(2, b""))
        elif isinstance(t, tuple) and t[0] == "rep":
            out.setdefault(name, []).append(_value(t[1], v))
        else:
            val = _value(t, v)
            if val in ("", 0, False) and val is not None:  # Go omits empty non-pointer fields in JSON
                out.pop(name, None)
                continue
            out[name] = val
    return out


def decode(body):
    """Returns a JSON-shaped dict, or raises ValueError."""
    if not body.startswith(MAGIC):
        raise ValueError("missing protobuf magic")
    unknown = {n: v for n, _w, v in _fields(body[len(MAGIC):])}
    tm = {n: v for n, _w, v in _fields(unknown.get(1, b""))}
    api_version = tm.get(1, b"").decode()
    kind = tm.get(2, b"").decode()
    if kind not in TYPES:
        raise ValueError("protobuf decoding of %s is not supported by the test server; send JSON" % (kind or "this object"))
    obj = decode_message(unknown.get(2, b""), TYPES[kind])
    obj["apiVersion"], obj["kind"] = api_version, kind
    return obj
