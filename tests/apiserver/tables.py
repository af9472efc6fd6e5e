"""Server-side Table output (Accept: application/json;as=Table;v=v1;g=meta.k8s.io).

Follows
  kubernetes/apiserver v0.32.0 pkg/endpoints/handlers/response.go   asTable: includeObject
                                                                    (Metadata by default -> PartialObjectMetadata)
  kubernetes/apiserver v0.32.0 pkg/registry/rest/table.go           default convertor: Name, Created At
  kubernetes/apiextensions-apiserver v0.32.0
      pkg/registry/customresource/tableconvertor/tableconvertor.go  CRD additionalPrinterColumns, Name first,
                                                                    date cells as human durations
      pkg/apiserver/customresource_handler.go                       default columns (Age) when none are defined
  kubernetes/kubernetes pkg/printers/internalversion/printers.go    the built-in printers used here
                                                                    (pods, namespaces, services, configmaps,
                                                                    secrets, events, leases, serviceaccounts,
                                                                    webhook configurations, RBAC)
  kubernetes/client-go util/jsonpath                                the JSONPath subset printer columns use
The server always generates the wide columns (priority > 0); kubectl drops them unless -o wide.
"""
import json
import re

import gotime
import schema

NAME_DESC = ("Name must be unique within a namespace. Is required when creating resources, although some resources "
             "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
             "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
             "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
AGE_DESC = ("CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
            "guaranteed to be set in happens-before order across separate operations. Clients may not set this value. "
            "It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. "
            "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")


def col(name, typ="string", desc="", fmt="", priority=0):
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


NAME_COL = col("Name", "string", NAME_DESC, "name")
AGE_COL = col("Age", "string", AGE_DESC)


def _meta(o):
    return o.get("metadata") or {}


def _age(o):
    return gotime.age(_meta(o).get("creationTimestamp"))


def _created_at(o):
    ts = _meta(o).get("creationTimestamp")
    dt = gotime.parse_any_rfc3339(ts) if isinstance(ts, str) else None
    return gotime.format_time(dt) if dt else "0001-01-01T00:00:00Z"


def _labels(m):
    if not m:
        return "<none>"
    return ",".join("%s=%s" % (k, m[k]) for k in sorted(m))


# ----------------------------------------------------------------------------- built-in printers

def _pod(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    containers = spec.get("containers") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or [] if isinstance(c, dict)}
    total = len(containers) + sum(1 for c in init_specs.values() if c.get("restartPolicy") == "Always")
    ready = 0
    restarts = 0
    last_restart = None
    phase = st.get("phase") or ""
    reason = st.get("reason") or phase
    for c in st.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def note_restart(cs):
        nonlocal last_restart
        t = (((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if t and (last_restart is None or t > last_restart):
            last_restart = t
    initializing = False
    inits = st.get("initContainerStatuses") or []
    for i, cs in enumerate(inits):
        restarts += int(cs.get("restartCount") or 0)
        note_restart(cs)
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        sidecar = (init_specs.get(cs.get("name")) or {}).get("restartPolicy") == "Always"
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                reason = "Init:Signal:%d" % term["signal"] if term.get("signal") else "Init:ExitCode:%d" % int(term.get("exitCode") or 0)
            else:
                reason = "Init:" + term["reason"]
        elif wait is not None and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = "Init:%d/%d" % (i, len(init_specs))
        initializing = True
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in st.get("conditions") or [])
    if not initializing or initialized:
        restarts = 0
        last_restart = None
        has_running = False
        for cs in reversed(st.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            note_restart(cs)
            state = cs.get("state") or {}
            term, wait = state.get("terminated"), state.get("waiting")
            if wait is not None and wait.get("reason"):
                reason = wait["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = "Signal:%d" % term["signal"] if term.get("signal") else "ExitCode:%d" % int(term.get("exitCode") or 0)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if any(c.get("type") == "Ready" and c.get("status") == "True"
                                      for c in st.get("conditions") or []) else "NotReady"
    if _meta(o).get("deletionTimestamp") and st.get("reason") == "NodeLost":
        reason = "Unknown"
    elif _meta(o).get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    rs = str(restarts)
    if restarts and last_restart:
        rs = "%d (%s ago)" % (restarts, gotime.age(last_restart))
    ips = st.get("podIPs") or []
    ip = (ips[0].get("ip") if ips and isinstance(ips[0], dict) else "") or st.get("podIP") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_s = "<none>"
    if gates:
        conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
        gates_s = "%d/%d" % (sum(1 for g in gates if conds.get(g.get("conditionType")) == "True"), len(gates))
    return [_meta(o).get("name"), "%d/%d" % (ready, total), reason, rs, _age(o), ip,
            spec.get("nodeName") or "<none>", st.get("nominatedNodeName") or "<none>", gates_s]


def _pod_conditions(o):
    phase = (o.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


def _svc_external_ip(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    t = spec.get("type") or "ClusterIP"
    ext = spec.get("externalIPs") or []
    if t in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else "<none>"
    if t == "LoadBalancer":
        ips = [i.get("ip") or i.get("hostname") for i in (st.get("loadBalancer") or {}).get("ingress") or []]
        ips = [i for i in ips if i] + ext
        return ",".join(ips) if ips else "<pending>"
    if t == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def _svc(o):
    spec = o.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            ports.append("%d:%d/%s" % (p.get("port", 0), p["nodePort"], proto))
        else:
            ports.append("%d/%s" % (p.get("port", 0), proto))
    ips = spec.get("clusterIPs") or []
    return [_meta(o).get("name"), spec.get("type") or "ClusterIP", ips[0] if ips else "<none>",
            _svc_external_ip(o), ",".join(ports) or "<none>", _age(o), _labels(spec.get("selector"))]


def _event_source(src, controller, instance):
    comp = (src or {}).get("component") or controller or ""
    host = (src or {}).get("host") or instance or ""
    return comp if not host else comp + ", " + host


def _event(o, v1=False):
    """printEvent; o is the core/v1 form (events.k8s.io views are converted back first)."""
    first = gotime.age(o.get("firstTimestamp")) if o.get("firstTimestamp") else gotime.age(o.get("eventTime"))
    last = gotime.age(o.get("lastTimestamp")) if o.get("lastTimestamp") else gotime.age(o.get("eventTime"))
    count = int(o.get("count") or 0)
    series = o.get("series")
    if isinstance(series, dict):
        last = gotime.age(series.get("lastObservedTime"))
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1
    inv = o.get("involvedObject") or {}
    target = "%s/%s" % ((inv.get("kind") or "").lower(), inv.get("name") or "")
    return [last, o.get("type") or "", o.get("reason") or "", target, inv.get("fieldPath") or "",
            _event_source(o.get("source"), o.get("reportingComponent"), o.get("reportingInstance")),
            (o.get("message") or "").strip(), first, count, _meta(o).get("name")]


def _binding(o):
    ref = o.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in o.get("subjects") or []:
        k = s.get("kind")
        if k == "User":
            users.append(s.get("name", ""))
        elif k == "Group":
            groups.append(s.get("name", ""))
        elif k == "ServiceAccount":
            sas.append("%s/%s" % (s.get("namespace") or _meta(o).get("namespace") or "", s.get("name", "")))
    return [_meta(o).get("name"), "%s/%s" % (ref.get("kind", ""), ref.get("name", "")), _age(o),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


BINDING_COLS = [NAME_COL, col("Role", desc="RoleRef to the binding's role"), AGE_COL,
                col("Users", desc="Users in the binding", priority=1),
                col("Groups", desc="Groups in the binding", priority=1),
                col("ServiceAccounts", desc="ServiceAccounts in the binding", priority=1)]
CREATED_AT_STR = [NAME_COL, col("Created At", "string", AGE_DESC)]

# (group, plural) -> (columns, cells(obj), conditions(obj) or None)
PRINTERS = {
    ("", "pods"): ([NAME_COL, col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
                    col("Status", desc="The aggregate status of the containers in this pod."),
                    col("Restarts", desc="The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
                    AGE_COL,
                    col("IP", desc="podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", priority=1),
                    col("Node", desc="NodeName indicates in which node this pod is scheduled.", priority=1),
                    col("Nominated Node", desc="nominatedNodeName is set only when this pod preempts other pods on the node.", priority=1),
                    col("Readiness Gates", desc="If specified, all readiness gates will be evaluated for pod readiness.", priority=1)],
                   _pod, _pod_conditions),
    ("", "namespaces"): ([NAME_COL, col("Status", desc="The status of the namespace"), AGE_COL],
                         lambda o: [_meta(o).get("name"), (o.get("status") or {}).get("phase") or "", _age(o)], None),
    ("", "services"): ([NAME_COL, col("Type", desc="type determines how the Service is exposed."),
                        col("Cluster-IP", desc="clusterIP is the IP address of the service."),
                        col("External-IP", desc="externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
                        col("Port(s)", desc="The list of ports that are exposed by this service."), AGE_COL,
                        col("Selector", desc="Route service traffic to pods with label keys and values matching this selector.", priority=1)],
                       _svc, None),
    ("", "configmaps"): ([NAME_COL, col("Data", desc="Data contains the configuration data."), AGE_COL],
                         lambda o: [_meta(o).get("name"), len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o)], None),
    ("", "secrets"): ([NAME_COL, col("Type", desc="Used to facilitate programmatic handling of secret data."),
                       col("Data", desc="Data contains the secret data."), AGE_COL],
                      lambda o: [_meta(o).get("name"), o.get("type") or "", len(o.get("data") or {}), _age(o)], None),
    ("", "serviceaccounts"): ([NAME_COL, col("Secrets", desc="Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), AGE_COL],
                              lambda o: [_meta(o).get("name"), len(o.get("secrets") or []), _age(o)], None),
    ("", "events"): ([col("Last Seen", desc="The time at which the most recent occurrence of this event was recorded."),
                      col("Type", desc="Type of this event (Normal, Warning), new types could be added in the future"),
                      col("Reason", desc="This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
                      col("Object", desc="The object that this event is about."),
                      col("Subobject", desc="If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.", priority=1),
                      col("Source", desc="The component reporting this event. Should be a short machine understandable string.", priority=1),
                      col("Message", desc="A human-readable description of the status of this operation."),
                      col("First Seen", desc="The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", priority=1),
                      col("Count", desc="The number of times this event has occurred.", priority=1),
                      dict(NAME_COL, priority=1)],
                     _event, None),
    ("coordination.k8s.io", "leases"): ([NAME_COL, col("Holder", desc="holderIdentity contains the identity of the holder of a current lease."), AGE_COL],
                                        lambda o: [_meta(o).get("name"), (o.get("spec") or {}).get("holderIdentity") or "", _age(o)], None),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): (
        [NAME_COL, col("Webhooks", "integer", desc="Webhooks indicates the number of webhooks registered in this configuration"), AGE_COL],
        lambda o: [_meta(o).get("name"), len(o.get("webhooks") or []), _age(o)], None),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): (
        [NAME_COL, col("Webhooks", "integer", desc="Webhooks indicates the number of webhooks registered in this configuration"), AGE_COL],
        lambda o: [_meta(o).get("name"), len(o.get("webhooks") or []), _age(o)], None),
    ("rbac.authorization.k8s.io", "roles"): (CREATED_AT_STR, lambda o: [_meta(o).get("name"), _created_at(o)], None),
    ("rbac.authorization.k8s.io", "clusterroles"): (CREATED_AT_STR, lambda o: [_meta(o).get("name"), _created_at(o)], None),
    ("rbac.authorization.k8s.io", "rolebindings"): (BINDING_COLS, _binding, None),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (BINDING_COLS, _binding, None),
}
# rest.NewDefaultTableConvertor: what any other resource (CRDs included) gets
DEFAULT_PRINTER = ([NAME_COL, col("Created At", "date", AGE_DESC)], lambda o: [_meta(o).get("name"), _created_at(o)], None)


# ----------------------------------------------------------------------------- JSONPath (client-go util/jsonpath subset)

class JSONPathError(ValueError):
    pass


_FILTER_RE = re.compile(r"^\?\(\s*@((?:\.[A-Za-z0-9_\-/]+|\['[^']*'\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$")


def parse_jsonpath(expr):
    """'.status.conditions[?(@.type=="Ready")].status' -> list of steps."""
    s = expr.strip()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    if s.startswith("$"):
        s = s[1:]
    steps = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == ".":
            if s[i + 1:i + 2] == ".":
                raise JSONPathError("recursive descent is not supported")
            j = i + 1
            while j < len(s) and s[j] not in ".[":
                if s[j] == "\\" and j + 1 < len(s):
                    j += 1
                j += 1
            name = s[i + 1:j].replace("\\.", ".")
            if name == "*":
                steps.append(("all",))
            elif name:
                steps.append(("field", name))
            i = j
        elif c == "[":
            depth, j = 0, i
            while j < len(s):
                if s[j] == "[":
                    depth += 1
                elif s[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                elif s[j] in "\"'":
                    q = s[j]
                    j += 1
                    while j < len(s) and s[j] != q:
                        j += 1
                j += 1
            if j >= len(s):
                raise JSONPathError("unterminated [")
            inner = s[i + 1:j].strip()
            i = j + 1
            if inner == "*":
                steps.append(("all",))
            elif inner[:1] in "\"'" and inner[-1:] == inner[:1]:
                steps.append(("field", inner[1:-1]))
            elif inner.startswith("?"):
                m = _FILTER_RE.match(inner)
                if not m:
                    raise JSONPathError("unsupported filter %s" % inner)
                sub = parse_jsonpath(m.group(1) or "")
                lit = None
                if m.group(2):
                    lit = _literal(m.group(3))
                steps.append(("filter", sub, m.group(2), lit))
            elif ":" in inner:
                a, _, b = inner.partition(":")
                steps.append(("slice", int(a) if a.strip() else None, int(b.partition(":")[0]) if b.partition(":")[0].strip() else None))
            else:
                try:
                    steps.append(("index", int(inner)))
                except ValueError:
                    raise JSONPathError("bad index %s" % inner)
        else:
            raise JSONPathError("unexpected %r in %s" % (c, expr))
    return steps


def _literal(t):
    t = t.strip()
    if t[:1] in "\"'" and t[-1:] == t[:1]:
        return t[1:-1]
    if t in ("true", "false"):
        return t == "true"
    try:
        return int(t)
    except ValueError:
        try:
            return float(t)
        except ValueError:
            return t


def find_results(steps, data):
    cur = [data]
    for st in steps:
        nxt = []
        for v in cur:
            if st[0] == "field":
                if isinstance(v, dict) and st[1] in v:
                    nxt.append(v[st[1]])
            elif st[0] == "all":
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v[k] for k in sorted(v))
            elif st[0] == "index":
                if isinstance(v, list):
                    n = st[1] + len(v) if st[1] < 0 else st[1]
                    if 0 <= n < len(v):
                        nxt.append(v[n])
            elif st[0] == "slice":
                if isinstance(v, list):
                    nxt.extend(v[st[1]:st[2]])
            elif st[0] == "filter":
                if isinstance(v, list):
                    for e in v:
                        r = find_results(st[1], e)
                        if st[2] is None:
                            if r:
                                nxt.append(e)
                        elif r and _compare(r[0], st[2], st[3]):
                            nxt.append(e)
        cur = nxt
    return cur


def _compare(a, op, b):
    if isinstance(b, (int, float)) and isinstance(a, (int, float)) and not isinstance(a, bool):
        pass
    elif isinstance(b, str):
        a = a if isinstance(a, str) else (json.dumps(a) if not isinstance(a, (int, float)) else a)
    try:
        return {"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    except TypeError:
        return op == "!="


def print_value(v):
    """PrintResults for one value: strings as they are, maps/slices as JSON, scalars with %v."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%d" % v
    if isinstance(v, float):
        return schema.go_float(v)
    if v is None:
        return None
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def cell_for(typ, v):
    """tableconvertor.cellForJSONValue."""
    if v is None:
        return None
    if typ == "integer":
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return int(v)
        return None
    if typ == "number":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        return None
    if typ == "boolean":
        return v if isinstance(v, bool) else None
    if typ == "string":
        return v if isinstance(v, str) else None
    if typ == "date":
        if isinstance(v, str):
            dt = gotime.parse_any_rfc3339(v)
            if dt is None:
                return "<invalid>"
            return gotime.age(v)
        return None
    return None


def crd_printer(version):
    """Columns and cell function for one CRD version (tableconvertor.New with serveDefaultColumnsIfEmpty)."""
    cols = version.get("additionalPrinterColumns") or [
        {"name": "Age", "type": "date", "description": AGE_DESC, "jsonPath": ".metadata.creationTimestamp"}]
    headers = [dict(NAME_COL)]
    paths = []
    for c in cols:
        try:
            steps = parse_jsonpath(c.get("jsonPath") or "")
        except JSONPathError:
            steps = None
        paths.append(steps)
        headers.append({"name": c.get("name", ""), "type": c.get("type", "string"), "format": c.get("format", ""),
                        "description": c.get("description") or "Custom resource definition column (in JSONPath format): %s" % c.get("jsonPath", ""),
                        "priority": int(c.get("priority") or 0)})

    def cells(o):
        out = [_meta(o).get("name")]
        for h, steps in zip(headers[1:], paths):
            res = find_results(steps, o) if steps is not None else []
            if not res:
                out.append(None)
                continue
            v = res[0]
            out.append(print_value(v) if h["type"] == "string" else cell_for(h["type"], v))
        return out
    return headers, cells, None


def partial_metadata(obj, gv="meta.k8s.io/v1"):
    return {"kind": "PartialObjectMetadata", "apiVersion": gv, "metadata": obj.get("metadata") or {}}


def build_table(printer, objs, list_meta, include_object="Metadata", no_headers=False, gv="meta.k8s.io/v1",
                row_view=None):
    """objs are the API views; row_view(obj) gives the form the printer reads (core events)."""
    columns, cells_fn, cond_fn = printer
    rows = []
    for o in objs:
        src = row_view(o) if row_view else o
        row = {"cells": cells_fn(src)}
        conds = cond_fn(src) if cond_fn else None
        if conds:
            row["conditions"] = conds
        if include_object == "Object":
            row["object"] = o
        elif include_object == "None":
            row["object"] = None
        else:
            row["object"] = partial_metadata(o, gv)
        rows.append(row)
    meta = {k: v for k, v in list_meta.items() if k in ("resourceVersion", "continue", "remainingItemCount")}
    return {"kind": "Table", "apiVersion": gv, "metadata": meta,
            "columnDefinitions": None if no_headers else columns, "rows": rows}
