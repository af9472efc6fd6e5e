#!/usr/bin/env python3
"""Checks a rendered chart against what the issue and the operator's contract ask for.

usage: check_render.py RENDER.json VALUES.json NAMESPACE [RELEASE] [--sar SERVER TOKEN_FILE CA_FILE]
  RENDER.json  `helm-render template ... -o json` (without CRDs)
  VALUES.json  `helm-render values ...` with the same -f/--set (the values the templates saw)
  --sar        also ask the API server (SubjectAccessReview, as the ServiceAccount) about every
               call below; the rendered RBAC must have been applied there

Prints "ok   - ..." / "FAIL - ..." lines and exits 1 when anything failed. The RBAC part
evaluates the rendered ClusterRole/Role rules the way the RBAC authorizer does (verbs, API
groups, resources/subresources, resourceNames, namespace of a RoleBinding) for every API call
the operator makes (the list below, from the operator's contract), and for calls it must not be
able to make.
"""
import json
import re
import sys

argv = sys.argv[1:]
SAR = None
if "--sar" in argv:
    i = argv.index("--sar")
    SAR = argv[i + 1:i + 4]
    del argv[i:i + 4]
render = json.load(open(argv[0]))
V = json.load(open(argv[1]))
NS = argv[2]
RELEASE = argv[3] if len(argv) > 3 else "meshmetric-operator"

objs = [e["object"] for e in render]
failures = 0


def ok(cond, name, detail=""):
    global failures
    if cond:
        print(f"ok   - {name}")
    else:
        failures += 1
        print(f"FAIL - {name}" + (f": {detail}" if detail else ""))


def find(kind, name=None):
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(kind):
    found = find(kind)
    return found[0] if len(found) == 1 else None


# Every flag `meshmetric-operator serve` accepts (the existing ones and those the operator adds).
KNOWN_FLAGS = {
    "webhook-addr", "tls-cert-file", "tls-key-file", "policies-dir", "system-namespace",
    "default-tls-secret", "metrics-cert-dir", "prometheus-annotations", "log-level", "log-format",
    "thread-pool", "connection-limit", "header-timeout", "idle-timeout", "read-timeout",
    "shutdown-timeout", "reload-interval-ms",
    "zone", "metrics-addr", "kubeconfig", "context", "namespace", "leader-elect",
    "leader-election-id", "leader-election-namespace", "lease-duration", "renew-deadline",
    "retry-period", "manage-webhook-certs", "webhook-secret", "webhook-service",
    "mutating-webhook-configuration", "validating-webhook-configuration", "restart-out-of-sync",
    "restart-rate", "restart-max-unavailable", "resync-period",
}
# In a cluster the operator reads everything through the API with the in-cluster config.
NEVER_SET = {"policies-dir", "kubeconfig", "context"}

fullname = V.get("fullnameOverride") or (RELEASE if "meshmetric-operator" in RELEASE else f"{RELEASE}-meshmetric-operator")
mode = V["webhook"]["certificate"]["mode"]
secret_name = V["webhook"]["certificate"]["secretName"] or f"{fullname}-webhook-tls"
replicas = V["replicaCount"]
sa_name = V["serviceAccount"]["name"] or fullname

# ---- every object ----------------------------------------------------------------------------
cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
                  "ValidatingWebhookConfiguration", "CustomResourceDefinition", "Namespace"}
other_ns = {("ServiceMonitor", V["serviceMonitor"]["namespace"]), ("PodMonitor", V["podMonitor"]["namespace"]),
            ("ConfigMap", V["dashboard"]["namespace"])}
for o in objs:
    md = o["metadata"]
    labels = md.get("labels", {})
    ok(labels.get("app.kubernetes.io/managed-by") == "Helm" and labels.get("app.kubernetes.io/instance") == RELEASE
       and labels.get("app.kubernetes.io/name"), f"{o['kind']}/{md['name']}: standard labels")
    if o["kind"] in cluster_scoped:
        ok("namespace" not in md, f"{o['kind']}/{md['name']}: cluster-scoped, no namespace")
    else:
        want = next((n for k, n in other_ns if k == o["kind"] and n), NS)
        ok(md.get("namespace") == want, f"{o['kind']}/{md['name']}: in namespace {want}", md.get("namespace"))

# Nothing random or secret is rendered: GitOps tools see the same output every time.
ok(not find("Secret"), "no Secret is rendered (no generated keys or certificates)")

# ---- Deployment ------------------------------------------------------------------------------
dep = one("Deployment")
ok(dep is not None, "one Deployment")
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
ok(len(pod["containers"]) == 1 and c["args"][0] == "serve", "one container running `serve`")
ok(dep["spec"]["replicas"] == replicas, f"replicas {replicas}")
args = {}
for a in c["args"][1:]:
    m = re.match(r"^--([a-z0-9-]+)=(.*)$", a)
    ok(m is not None, f"argument {a!r} has the --flag=value form")
    if m:
        args[m.group(1)] = m.group(2)  # the last occurrence wins, as in the binary
unknown = sorted(set(args) - KNOWN_FLAGS)
ok(not unknown, "every argument is a flag `serve` accepts", unknown)
ok(not (set(args) & NEVER_SET), "no --policies-dir/--kubeconfig/--context (in-cluster API mode)")
ok(args.get("namespace") == NS, "--namespace is the release namespace")
ok(args.get("system-namespace") == V["systemNamespace"] and args.get("zone") == V["zone"],
   "--system-namespace and --zone from values")
ok(args.get("default-tls-secret") == V["defaultMetricsTLSSecret"], "--default-tls-secret from values")
ok(args.get("prometheus-annotations") == str(V["prometheusAnnotations"]).lower(), "--prometheus-annotations from values")
ok(args.get("log-level") == V["log"]["level"] and args.get("log-format") == V["log"]["format"], "log flags from values")
ok(args.get("leader-elect") == str(V["leaderElection"]["enabled"]).lower(), "--leader-elect from values")
if replicas > 1:
    ok(args.get("leader-elect") == "true", "leader election on with more than one replica")
if V["leaderElection"]["enabled"]:
    ok(args.get("leader-election-namespace") == NS, "the Lease lives in the release namespace")
ok(args.get("restart-out-of-sync") == str(V["repair"]["enabled"]).lower(), "--restart-out-of-sync from values")
if V["repair"]["enabled"]:
    ok(args.get("restart-rate") == str(V["repair"]["rate"]) and
       args.get("restart-max-unavailable") == str(V["repair"]["maxUnavailable"]), "repair rate flags")
ok(args.get("resync-period") == str(V["resyncPeriod"]), "--resync-period from values")
ok(args.get("webhook-addr") == f":{V['webhook']['port']}" and args.get("metrics-addr") == f":{V['metrics']['port']}",
   "listen addresses on the container ports")
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
ok(ports == {"webhook": V["webhook"]["port"], "metrics": V["metrics"]["port"]}, "container ports webhook and metrics", ports)

sc = c["securityContext"]
psc = pod.get("securityContext", {})
ok(sc.get("allowPrivilegeEscalation") is False, "no privilege escalation")
ok(sc.get("readOnlyRootFilesystem") is True, "read-only root filesystem")
ok(sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"), "all capabilities dropped")
ok((sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True and psc.get("runAsUser", 1) != 0, "non-root")
ok((sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")
ok(not sc.get("privileged"), "not privileged")
shutdown = int(args.get("shutdown-timeout", 25))
ok(pod["terminationGracePeriodSeconds"] > shutdown,
   f"terminationGracePeriodSeconds ({pod['terminationGracePeriodSeconds']}) above --shutdown-timeout ({shutdown})")
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    p = c.get(probe, {}).get("httpGet", {})
    ok(p.get("path") == path and p.get("port") == "metrics" and p.get("scheme", "HTTP") == "HTTP",
       f"{probe} on {path} of the plain-HTTP metrics port")
ok(c.get("resources", {}).get("requests") and c["resources"].get("limits"), "resources set")
mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
ok("tmp" in mounts, "a writable /tmp (emptyDir) with the read-only root")
aff = pod.get("affinity", {})
if V["affinity"]:
    ok(aff == V["affinity"], "affinity from values")
elif V["podAntiAffinity"] == "soft":
    ok("preferredDuringSchedulingIgnoredDuringExecution" in aff.get("podAntiAffinity", {}), "soft pod anti-affinity")
elif V["podAntiAffinity"] == "hard":
    ok("requiredDuringSchedulingIgnoredDuringExecution" in aff.get("podAntiAffinity", {}), "hard pod anti-affinity")
for tsc in pod.get("topologySpreadConstraints", []):
    ok(tsc.get("labelSelector", {}).get("matchLabels") == dep["spec"]["selector"]["matchLabels"],
       "topology spread constraint selects the operator's pods")
ok(pod.get("serviceAccountName") == sa_name, f"ServiceAccount {sa_name}")
tpl_labels = dep["spec"]["template"]["metadata"]["labels"]
ok(tpl_labels.get("meshmetric.kuma.io/inject") == "disabled", "the operator's own pods opt out of its webhook")
ok(all(tpl_labels.get(k) == v for k, v in dep["spec"]["selector"]["matchLabels"].items()), "selector matches the pod labels")
anns = dep["spec"]["template"]["metadata"].get("annotations", {})
if V["metrics"]["podAnnotations"]:
    ok(anns.get("prometheus.io/scrape") == "true" and anns.get("prometheus.io/port") == str(V["metrics"]["port"]),
       "prometheus.io annotations on the operator's pods")
else:
    ok(not any(k.startswith("prometheus.io/") for k in anns), "no prometheus.io annotations unless asked")

# ---- Service and webhook configurations --------------------------------------------------------
svc = one("Service")
ok(svc is not None and svc["metadata"]["name"] == fullname, "one Service named like the release")
sports = {p["name"]: p for p in svc["spec"]["ports"]}
ok(sports["webhook"]["port"] == V["webhook"]["servicePort"] and sports["webhook"]["targetPort"] == "webhook",
   "Service webhook port -> the container's webhook port")
ok(sports["metrics"]["targetPort"] == "metrics", "Service metrics port -> the container's metrics port")
ok(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], "Service selects the Deployment's pods")

mwc = one("MutatingWebhookConfiguration")
vwc = one("ValidatingWebhookConfiguration")
ok(mwc is not None and mwc["metadata"]["name"] == fullname, "MutatingWebhookConfiguration named like the release")
ok((vwc is not None) == V["webhook"]["validating"]["enabled"], "ValidatingWebhookConfiguration iff enabled")
hooks = [(mwc, "/mutate")] + ([(vwc, "/validate")] if vwc else [])
for cfg, path in hooks:
    for w in cfg["webhooks"]:
        s = w["clientConfig"].get("service", {})
        ok(s == {"name": fullname, "namespace": NS, "path": path, "port": V["webhook"]["servicePort"]},
           f"{cfg['kind']}: calls the Service at {path}", s)
        ok(w["sideEffects"] == "None" and w["admissionReviewVersions"] == ["v1"], f"{cfg['kind']}: sideEffects None, v1 reviews")
        ok(1 <= w["timeoutSeconds"] <= 30 and w["timeoutSeconds"] == V["webhook"]["timeoutSeconds"], f"{cfg['kind']}: timeoutSeconds")
        ann = cfg["metadata"].get("annotations", {})
        if mode == "secret":
            ok(w["clientConfig"].get("caBundle") == V["webhook"]["certificate"]["caBundle"], f"{cfg['kind']}: caBundle from values")
        else:
            ok("caBundle" not in w["clientConfig"], f"{cfg['kind']}: no caBundle rendered ({mode} fills it in)")
        if mode == "certManager":
            ok(ann.get("cert-manager.io/inject-ca-from") == f"{NS}/{fullname}-webhook", f"{cfg['kind']}: cert-manager CA injection")
        else:
            ok("cert-manager.io/inject-ca-from" not in ann, f"{cfg['kind']}: no cert-manager annotation")
w = mwc["webhooks"][0]
ok(w["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}],
   "mutating: pods, CREATE only")
ok(w["reinvocationPolicy"] == V["webhook"]["reinvocationPolicy"] and w["failurePolicy"] == V["webhook"]["failurePolicy"],
   "mutating: reinvocationPolicy and failurePolicy from values")
exprs = w["namespaceSelector"]["matchExpressions"]
skipped = next((e["values"] for e in exprs if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"), [])
ok({"kube-system", NS} <= set(skipped), "mutating: skips kube-system and the release namespace", skipped)
optout = {"key": "meshmetric.kuma.io/inject", "operator": "NotIn", "values": ["disabled", "false"]}
ok(optout in exprs, "mutating: namespaces opt out with the label")
ok(optout in w["objectSelector"]["matchExpressions"], "mutating: pods opt out with the label (objectSelector)")
if vwc:
    vw = vwc["webhooks"][0]
    ok(vw["rules"] == [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["kuma.io"], "apiVersions": ["v1alpha1"],
                        "resources": ["meshmetrics", "meshes"], "scope": "*"}], "validating: meshmetrics and meshes, CREATE and UPDATE")
    ok(vw["failurePolicy"] == V["webhook"]["validating"]["failurePolicy"], "validating: failurePolicy from values")

# ---- certificate modes ------------------------------------------------------------------------
vols = {v["name"]: v for v in pod.get("volumes", [])}
if mode == "operator":
    ok(args.get("manage-webhook-certs") == "true" and args.get("webhook-secret") == secret_name
       and args.get("webhook-service") == fullname and args.get("mutating-webhook-configuration") == fullname
       and args.get("validating-webhook-configuration") == fullname, "operator mode: the operator manages our Secret and caBundles")
    ok("webhook-tls" not in vols and "tls-cert-file" not in args, "operator mode: no certificate volume (read through the API)")
    ok(not find("Certificate") and not find("Issuer"), "operator mode: no cert-manager objects")
else:
    ok(args.get("manage-webhook-certs") == "false", f"{mode} mode: the operator does not manage certificates")
    ok(vols.get("webhook-tls", {}).get("secret", {}).get("secretName") == secret_name, f"{mode} mode: the Secret {secret_name} is mounted")
    m = mounts.get("webhook-tls", {})
    ok(m.get("readOnly") is True and "subPath" not in m, f"{mode} mode: mounted read-only as a directory (rotation reaches the pod)")
    ok(args.get("tls-cert-file") == m.get("mountPath", "?") + "/tls.crt" and args.get("tls-key-file") == m.get("mountPath", "?") + "/tls.key",
       f"{mode} mode: --tls-cert-file/--tls-key-file point into the mount")
if mode == "certManager":
    cert = one("Certificate")
    ok(cert is not None and cert["spec"]["secretName"] == secret_name, "certManager: a Certificate writing the mounted Secret")
    ok(f"{fullname}.{NS}.svc" in cert["spec"]["dnsNames"], "certManager: SAN <service>.<namespace>.svc")
    ok(cert["metadata"]["name"] == f"{fullname}-webhook", "certManager: the Certificate the annotation names")
    issuer = V["webhook"]["certificate"]["certManager"]["issuerRef"]
    if issuer.get("name"):
        ok(cert["spec"]["issuerRef"]["name"] == issuer["name"] and not find("Issuer"), "certManager: the given issuer, no Issuer rendered")
    else:
        iss = one("Issuer")
        ok(iss is not None and "selfSigned" in iss["spec"] and cert["spec"]["issuerRef"]["name"] == iss["metadata"]["name"],
           "certManager: a self-signed Issuer")

# ---- PodDisruptionBudget ----------------------------------------------------------------------
pdb = one("PodDisruptionBudget")
ok((pdb is not None) == (V["podDisruptionBudget"]["enabled"] and replicas > 1), "PodDisruptionBudget iff enabled and replicas > 1")
if pdb:
    ok(pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"], "PDB selects the operator's pods")
    ma = pdb["spec"].get("minAvailable")
    ok(not isinstance(ma, int) or ma < replicas, "PDB leaves room for one eviction")

# ---- monitoring and dashboard -------------------------------------------------------------------
KNOWN_METRICS = {
    "meshmetric_webhook_requests_total", "meshmetric_webhook_admissions_total",
    "meshmetric_webhook_admission_duration_seconds_bucket", "meshmetric_webhook_patches_total",
    "meshmetric_webhook_engine_errors_total", "meshmetric_webhook_certificate_expiry_timestamp_seconds",
    "meshmetric_webhook_ready", "meshmetric_policy_reloads_total",
    "meshmetric_policy_last_reload_success_timestamp_seconds", "meshmetric_operator_dataplanes",
    "meshmetric_operator_reconcile_queue_depth", "meshmetric_operator_reconcile_total",
    "meshmetric_operator_reconcile_duration_seconds_bucket", "meshmetric_operator_leader",
    "meshmetric_operator_workload_restarts_total", "process_cpu_seconds_total",
    "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds",
    "process_virtual_memory_bytes",
}
sm = one("ServiceMonitor")
ok((sm is not None) == V["serviceMonitor"]["enabled"], "ServiceMonitor iff enabled")
if sm:
    ok(sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(), "ServiceMonitor selects the Service")
    ok(sm["spec"]["endpoints"][0]["port"] in sports and sm["spec"]["endpoints"][0]["port"] == "metrics", "ServiceMonitor scrapes the metrics port")
    ok(sm["spec"]["namespaceSelector"]["matchNames"] == [NS], "ServiceMonitor looks in the release namespace")
pm = one("PodMonitor")
ok((pm is not None) == V["podMonitor"]["enabled"], "PodMonitor iff enabled")
if pm:
    ok(pm["spec"]["selector"]["matchLabels"].items() <= tpl_labels.items(), "PodMonitor selects the operator's pods")
    ok(pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics", "PodMonitor scrapes the container's metrics port")
cms = [o for o in find("ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]
ok(bool(cms) == V["dashboard"]["enabled"], "dashboard ConfigMap iff enabled")
if cms:
    cm = cms[0]
    ok(all(cm["metadata"]["labels"].get(k) == v for k, v in V["dashboard"]["labels"].items()), "dashboard carries the sidecar label")
    dash = json.loads(next(iter(cm["data"].values())))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    used = set()
    for e in exprs:
        used |= set(re.findall(r"\b((?:meshmetric|process)_[a-z_]+)\b", e))
    ok(used and used <= KNOWN_METRICS, "dashboard uses only metrics the operator exposes", sorted(used - KNOWN_METRICS))
    want_panels = ["admission", "latency", "error", "patched", "out-of-sync", "queue", "certificate"]
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    ok(all(w in titles for w in want_panels), "dashboard has admissions, latency, errors, patched pods, out-of-sync, queue, certificate panels")
    unsplit = [p["title"] for p in dash["panels"] for t in p.get("targets", []) if "pod" not in t["expr"] or "{{pod}}" not in t.get("legendFormat", "")]
    ok(not unsplit, "every dashboard query is split by pod", unsplit)

# ---- RBAC ------------------------------------------------------------------------------------
roles = find("ClusterRole") + find("Role")
if not V["rbac"]["create"]:
    ok(not roles and not find("ClusterRoleBinding") and not find("RoleBinding"), "rbac.create=false: no RBAC objects")
else:
    bound = []  # (rules, namespace or None)
    for b in find("ClusterRoleBinding") + find("RoleBinding"):
        if not any(s["kind"] == "ServiceAccount" and s["name"] == sa_name and s["namespace"] == NS for s in b["subjects"]):
            continue
        ref = b["roleRef"]
        role = next((r for r in roles if r["kind"] == ref["kind"] and r["metadata"]["name"] == ref["name"]
                     and (r["kind"] == "ClusterRole" or r["metadata"].get("namespace") == b["metadata"].get("namespace"))), None)
        ok(role is not None, f"{b['kind']}/{b['metadata']['name']} binds a rendered role")
        if role:
            bound.append((role.get("rules", []), b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None))

    def allowed(verb, group, resource, ns=None, name=None):
        for rules, bns in bound:
            if bns is not None and ns != bns:
                continue
            for r in rules:
                if verb not in r["verbs"] and "*" not in r["verbs"]:
                    continue
                if group not in r.get("apiGroups", []) and "*" not in r.get("apiGroups", []):
                    continue
                if resource not in r.get("resources", []) and "*" not in r.get("resources", []):
                    continue
                if r.get("resourceNames") and name not in r["resourceNames"]:
                    continue
                return True
        return False

    for rules, _ in bound:
        for r in rules:
            ok("*" not in r["verbs"] and "*" not in r.get("resources", []) and "*" not in r.get("apiGroups", []),
               f"no wildcard in rule {r.get('resources')}")
            ok(not set(r["verbs"]) & {"escalate", "bind", "impersonate", "delete", "deletecollection"},
               f"no escalate/bind/impersonate/delete in rule {r.get('resources')}")
    lease = V["leaderElection"]["id"] or fullname
    need = [
        # informer caches
        *[(v, "kuma.io", "meshmetrics", None, None) for v in ("get", "list", "watch")],
        *[(v, "kuma.io", r, None, None) for r in ("meshes", "dataplanes") for v in ("list", "watch")],
        *[(v, "", r, None, None) for r in ("namespaces", "services", "pods") for v in ("get", "list", "watch")],
        *[(v, "apps", "replicasets", None, None) for v in ("get", "list", "watch")],
        *[(v, "batch", "jobs", None, None) for v in ("get", "list", "watch")],
        *[(v, "apiextensions.k8s.io", "customresourcedefinitions", None, None) for v in ("get", "list", "watch")],
        # owners of out-of-sync pods
        *[("get", "apps", r, "shop", "web") for r in ("deployments", "statefulsets", "daemonsets")],
        # status: main resource (Kuma's CRD) and subresource (the chart's)
        ("update", "kuma.io", "meshmetrics", "shop", "mm"), ("patch", "kuma.io", "meshmetrics", "shop", "mm"),
        ("update", "kuma.io", "meshmetrics/status", "shop", "mm"), ("patch", "kuma.io", "meshmetrics/status", "shop", "mm"),
        # Events
        ("create", "", "events", "shop", None), ("patch", "", "events", "shop", "e1"), ("update", "", "events", "shop", "e1"),
        ("create", "events.k8s.io", "events", "shop", None), ("patch", "events.k8s.io", "events", "shop", "e1"),
    ]
    if V["leaderElection"]["enabled"]:
        need += [("get", "coordination.k8s.io", "leases", NS, lease), ("create", "coordination.k8s.io", "leases", NS, None),
                 ("update", "coordination.k8s.io", "leases", NS, lease)]
    if mode == "operator":
        need += [(v, "admissionregistration.k8s.io", r, None, fullname)
                 for r in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
                 for v in ("get", "list", "watch", "update", "patch")]
        need += [(v, "", "secrets", NS, secret_name) for v in ("get", "list", "watch", "update", "patch")]
        need += [("create", "", "secrets", NS, None)]
    if V["repair"]["enabled"]:
        need += [("patch", "apps", r, "shop", "web") for r in ("deployments", "statefulsets", "daemonsets")]
    missing = [n for n in need if not allowed(*n)]
    ok(not missing, f"RBAC allows all {len(need)} calls the operator makes", missing)

    deny = [
        ("patch", "", "pods", "shop", "p1"), ("update", "", "pods", "shop", "p1"), ("create", "", "pods", "shop", None),
        ("get", "", "secrets", NS, "some-other-secret"), ("get", "", "secrets", "shop", secret_name),
        ("list", "", "secrets", "shop", None), ("update", "", "secrets", NS, "some-other-secret"),
        ("update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", None, "kuma-admission-mutating-webhook-configuration"),
        ("patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", None, "kuma-validating-webhook-configuration"),
        ("update", "coordination.k8s.io", "leases", NS, "some-other-lease"), ("update", "coordination.k8s.io", "leases", "kube-system", lease),
        ("update", "kuma.io", "meshes", None, "default"), ("create", "kuma.io", "meshmetrics", "shop", None),
        ("update", "apiextensions.k8s.io", "customresourcedefinitions", None, "meshmetrics.kuma.io"),
        ("get", "", "configmaps", NS, "x"), ("create", "", "serviceaccounts/token", NS, sa_name),
    ]
    if not V["repair"]["enabled"]:
        deny += [("patch", "apps", r, "shop", "web") for r in ("deployments", "statefulsets", "daemonsets")]
    if mode != "operator":
        deny += [("get", "", "secrets", NS, secret_name), ("patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", None, fullname)]
    granted = [d for d in deny if allowed(*d)]
    ok(not granted, f"RBAC denies {len(deny)} calls the operator must not make", granted)

    if SAR:
        import ssl
        import urllib.request
        server, token_file, ca_file = SAR
        token = open(token_file).read().strip()
        ctx = ssl.create_default_context(cafile=ca_file)

        def server_allows(verb, group, resource, ns=None, name=None):
            res, _, sub = resource.partition("/")
            body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                    "spec": {"user": f"system:serviceaccount:{NS}:{sa_name}",
                             "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NS}", "system:authenticated"],
                             "resourceAttributes": {"verb": verb, "group": group, "resource": res, "subresource": sub,
                                                    "namespace": ns or "", "name": name or ""}}}
            req = urllib.request.Request(server + "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                         data=json.dumps(body).encode(), method="POST",
                                         headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return json.load(r)["status"]["allowed"]

        wrong = [n for n in need if not server_allows(*n)]
        ok(not wrong, f"the API server's RBAC authorizer allows the {len(need)} calls", wrong)
        wrong = [d for d in deny if server_allows(*d)]
        ok(not wrong, f"the API server's RBAC authorizer denies the {len(deny)} forbidden calls", wrong)

print(f"check_render: {'FAILED' if failures else 'all checks passed'} ({failures} failed)")
sys.exit(1 if failures else 0)
