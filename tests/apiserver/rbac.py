"""RBAC authorization and ServiceAccount tokens for the test API server.

Follows
  kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/rbac.go       Authorize, RuleAllows, allow/deny reasons
  kubernetes/kubernetes pkg/apis/rbac/v1/evaluation_helpers.go        VerbMatches, APIGroupMatches, ResourceMatches
                                                                      ("*/status"), ResourceNameMatches,
                                                                      NonResourceURLMatches (trailing "*")
  kubernetes/kubernetes pkg/registry/rbac/validation/rule.go          appliesTo (User, Group, ServiceAccount with
                                                                      the binding's namespace as default),
                                                                      describers for the reasons
  kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go
                                                                      cluster-admin, system:discovery,
                                                                      system:basic-user, system:public-info-viewer
  kubernetes/apiserver v0.32.0 pkg/endpoints/handlers/responsewriters/errors.go   forbiddenMessage
  kubernetes/apiserver v0.32.0 pkg/endpoints/request/requestinfo.go   the request attributes
  kubernetes/apiserver v0.32.0 pkg/authentication/serviceaccount/util.go  system:serviceaccount:<ns>:<name>
Tokens are JWT-shaped (HS256 over a server key); they are opaque to clients, carry the
ServiceAccount's uid and an expiry, and stop working when the ServiceAccount is deleted.
"""
import base64
import hashlib
import hmac
import json
import time

MASTERS = "system:masters"
RBAC = "rbac.authorization.k8s.io"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
BOOTSTRAP_ANN = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def bootstrap_objects():
    """(plural, object) pairs of the default cluster roles and bindings this server seeds."""
    def role(name, rules):
        return ("clusterroles", {"apiVersion": RBAC + "/v1", "kind": "ClusterRole",
                                 "metadata": {"name": name, "labels": dict(BOOTSTRAP_LABELS), "annotations": dict(BOOTSTRAP_ANN)},
                                 "rules": rules})

    def binding(name, role_name, groups):
        return ("clusterrolebindings", {"apiVersion": RBAC + "/v1", "kind": "ClusterRoleBinding",
                                        "metadata": {"name": name, "labels": dict(BOOTSTRAP_LABELS), "annotations": dict(BOOTSTRAP_ANN)},
                                        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role_name},
                                        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in groups]})
    return [
        role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                               {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        role("system:discovery", [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                                       "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                                   "verbs": ["get"]}]),
        role("system:basic-user", [{"apiGroups": ["authorization.k8s.io"],
                                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                                   {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
        role("system:public-info-viewer", [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                                            "verbs": ["get"]}]),
        binding("cluster-admin", "cluster-admin", [MASTERS]),
        binding("system:discovery", "system:discovery", ["system:authenticated"]),
        binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        binding("system:public-info-viewer", "system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
    ]


# ----------------------------------------------------------------------------- users and tokens

def admin_user():
    return {"username": "admin", "groups": [MASTERS, "system:authenticated"]}


def sa_username(ns, name):
    return "system:serviceaccount:%s:%s" % (ns, name)


def sa_user(ns, name, uid):
    return {"username": sa_username(ns, name), "uid": uid,
            "groups": ["system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"],
            "extra": {"authentication.kubernetes.io/credential-id": ["JTI=" + uid]}}


def _b64(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


ISSUER = "https://kubernetes.default.svc.cluster.local"


def mint_token(key, ns, name, uid, seconds, audiences=None):
    now = int(time.time())
    header = {"alg": "HS256", "kid": "meshmetric-test-apiserver"}
    payload = {"aud": audiences or [ISSUER], "exp": now + int(seconds), "iat": now, "iss": ISSUER,
               "jti": hashlib.sha1(("%s/%s/%s/%f" % (ns, name, uid, time.time())).encode()).hexdigest(),
               "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": uid}},
               "nbf": now, "sub": sa_username(ns, name)}
    signing = _b64(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return signing + "." + _b64(sig), payload["exp"]


def verify_token(key, token):
    """-> (namespace, name, uid) or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        want = hmac.new(key, (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(want, _unb64(parts[2])):
            return None
        payload = json.loads(_unb64(parts[1]))
    except (ValueError, TypeError):
        return None
    if int(payload.get("exp", 0)) <= time.time():
        return None
    k = payload.get("kubernetes.io") or {}
    sa = k.get("serviceaccount") or {}
    return k.get("namespace"), sa.get("name"), sa.get("uid")


# ----------------------------------------------------------------------------- rule evaluation

def verb_matches(rule, verb):
    return any(v in ("*", verb) for v in rule.get("verbs") or [])


def group_matches(rule, group):
    return any(g in ("*", group) for g in rule.get("apiGroups") or [])


def resource_matches(rule, combined, sub):
    for r in rule.get("resources") or []:
        if r == "*" or r == combined:
            return True
        if sub and len(r) == len(sub) + 2 and r.startswith("*/") and r.endswith(sub):
            return True
    return False


def name_matches(rule, name):
    names = rule.get("resourceNames") or []
    return not names or name in names


def url_matches(rule, path):
    for u in rule.get("nonResourceURLs") or []:
        if u == "*" or u == path:
            return True
        if u.endswith("*") and path.startswith(u.rstrip("*")):
            return True
    return False


def rule_allows(attrs, rule):
    if attrs["resourceRequest"]:
        combined = attrs["resource"] + ("/" + attrs["subresource"] if attrs["subresource"] else "")
        return (verb_matches(rule, attrs["verb"]) and group_matches(rule, attrs["group"])
                and resource_matches(rule, combined, attrs["subresource"]) and name_matches(rule, attrs["name"]))
    return verb_matches(rule, attrs["verb"]) and url_matches(rule, attrs["path"])


def applies_to(user, subject, namespace):
    kind = subject.get("kind")
    if kind == "User":
        return user["username"] == subject.get("name")
    if kind == "Group":
        return subject.get("name") in user.get("groups", [])
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or namespace
        if not ns:
            return False
        return user["username"] == sa_username(ns, subject.get("name", ""))
    return False


def _describe_subject(s, ns):
    if s.get("kind") == "ServiceAccount":
        return '%s "%s"' % (s["kind"], (s.get("namespace") or ns) + "/" + s.get("name", ""))
    return '%s "%s"' % (s.get("kind"), s.get("name", ""))


def _label_match(sel, labels):
    labels = labels or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
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


class Authorizer:
    """get(plural, namespace, name) and items(plural, namespace) read rbac.authorization.k8s.io objects."""

    def __init__(self, get, items):
        self.get = get
        self.items = items

    def _role_rules(self, ref, namespace, errors):
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "Role":
            r = self.get("roles", namespace, name)
            if r is None:
                errors.append('role.rbac.authorization.k8s.io "%s" not found' % name)
                return []
            return r.get("rules") or []
        if kind == "ClusterRole":
            r = self.get("clusterroles", "", name)
            if r is None:
                errors.append('clusterrole.rbac.authorization.k8s.io "%s" not found' % name)
                return []
            return self._cluster_role_rules(r)
        errors.append("unsupported role reference kind: %q" % kind)
        return []

    def _cluster_role_rules(self, r):
        agg = r.get("aggregationRule")
        if not agg:
            return r.get("rules") or []
        rules = list(r.get("rules") or [])
        for other in self.items("clusterroles", ""):
            if other["metadata"]["name"] == r["metadata"]["name"]:
                continue
            for sel in agg.get("clusterRoleSelectors") or []:
                if _label_match(sel, other["metadata"].get("labels")):
                    rules.extend(other.get("rules") or [])
                    break
        return rules

    def visit(self, user, namespace, fn):
        """Calls fn(source_description, rule) for every rule that applies to the user; stops when
        fn returns True. Returns the resolution errors."""
        errors = []
        for b in sorted(self.items("clusterrolebindings", ""), key=lambda o: o["metadata"]["name"]):
            for s in b.get("subjects") or []:
                if applies_to(user, s, ""):
                    desc = 'ClusterRoleBinding "%s" of %s "%s" to %s' % (
                        b["metadata"]["name"], (b.get("roleRef") or {}).get("kind"), (b.get("roleRef") or {}).get("name"),
                        _describe_subject(s, ""))
                    for rule in self._role_rules(b.get("roleRef") or {}, "", errors):
                        if fn(desc, rule):
                            return errors
                    break
        if namespace:
            for b in sorted(self.items("rolebindings", namespace), key=lambda o: o["metadata"]["name"]):
                for s in b.get("subjects") or []:
                    if applies_to(user, s, namespace):
                        desc = 'RoleBinding "%s" of %s "%s" to %s' % (
                            b["metadata"]["name"] + "/" + namespace, (b.get("roleRef") or {}).get("kind"),
                            (b.get("roleRef") or {}).get("name"), _describe_subject(s, namespace))
                        for rule in self._role_rules(b.get("roleRef") or {}, namespace, errors):
                            if fn(desc, rule):
                                return errors
                        break
        return errors

    def authorize(self, user, attrs):
        """-> (allowed, reason). system:masters is allowed without a reason, as by the
        privileged-group authorizer in front of RBAC."""
        if MASTERS in user.get("groups", []):
            return True, ""
        found = []

        def fn(desc, rule):
            if rule_allows(attrs, rule):
                found.append(desc)
                return True
            return False
        errors = self.visit(user, attrs.get("namespace", "") if attrs["resourceRequest"] else "", fn)
        if found:
            return True, "RBAC: allowed by %s" % found[0]
        if errors:
            agg = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            return False, "RBAC: " + agg
        return False, ""

    def rules_for(self, user, namespace):
        """SelfSubjectRulesReview: (resourceRules, nonResourceRules, errors)."""
        if MASTERS in user.get("groups", []):
            return ([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                    [{"verbs": ["*"], "nonResourceURLs": ["*"]}], [])
        res, nonres = [], []

        def fn(_desc, rule):
            if rule.get("nonResourceURLs"):
                nonres.append({"verbs": rule.get("verbs") or [], "nonResourceURLs": rule["nonResourceURLs"]})
            else:
                r = {"verbs": rule.get("verbs") or [], "apiGroups": rule.get("apiGroups") or [],
                     "resources": rule.get("resources") or []}
                if rule.get("resourceNames"):
                    r["resourceNames"] = rule["resourceNames"]
                res.append(r)
            return False
        errors = self.visit(user, namespace, fn)
        return res, nonres, errors


def forbidden_message(user, attrs):
    """responsewriters.forbiddenMessage."""
    u = user["username"]
    if not attrs["resourceRequest"]:
        return 'User "%s" cannot %s path "%s"' % (u, attrs["verb"], attrs["path"])
    res = attrs["resource"] + ("/" + attrs["subresource"] if attrs["subresource"] else "")
    if attrs.get("namespace"):
        return 'User "%s" cannot %s resource "%s" in API group "%s" in the namespace "%s"' % (
            u, attrs["verb"], res, attrs["group"], attrs["namespace"])
    return 'User "%s" cannot %s resource "%s" in API group "%s" at the cluster scope' % (
        u, attrs["verb"], res, attrs["group"])
