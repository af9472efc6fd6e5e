#!/usr/bin/env python3
"""A stand-in for Kuma's sidecar injector (kuma-cp's /inject-sidecar webhook, v2.14.3).

    kuma_injector.py certs  --dir D                    # its own CA + serving certificate
    kuma_injector.py serve  --dir D --port-file F [--log L]
    kuma_injector.py config --dir D --name N           # the MutatingWebhookConfiguration (JSON)

`serve` is an HTTPS admission webhook (its own CA; SAN kuma-control-plane.kuma-system.svc,
the Service Kuma's chart registers) that does, in small, what
pkg/plugins/runtime/k8s/webhooks/injector/injector.go does with the native-sidecar feature
(experimental.sidecarContainers, default true in 2.14): pods that have no kuma-sidecar yet get

  - the init container kuma-init (transparent proxy set-up), then kuma-sidecar in
    initContainers with restartPolicy Always (before the user's init containers), with
    Kuma's image, args, env (INSTANCE_IP, KUMA_CONTROL_PLANE_URL, KUMA_DATAPLANE_MESH,
    KUMA_DATAPLANE_DRAIN_TIME, KUMA_DNS_ENABLED, POD_NAME, POD_NAMESPACE, ... as in the
    golden file testdata/inject.sidecar-feature.08.golden.yaml), the /ready probes on 9901,
    the preStop hook, security context and resources;
  - the volumes kuma-init-tmp and kuma-sidecar-tmp;
  - the label kuma.io/mesh and the annotations kuma.io/sidecar-injected: "true",
    kuma.io/envoy-admin-port, kuma.io/sidecar-uid and the transparent-proxying ones.

The mesh is the pod's kuma.io/mesh label, else its annotation, else "default" (Kuma also
reads the namespace; the test's namespaces carry no mesh). Pods labelled or annotated
kuma.io/sidecar-injection: disabled are left alone. The patch replaces whole members
(labels, annotations, initContainers, volumes), like the jsonpatch diff Kuma returns.

`config` prints the registration: one webhook namespace-kuma-injector.kuma.io on pods
CREATE for namespaces labelled kuma.io/sidecar-injection in (enabled, true), failurePolicy
Fail, and deliberately NO reinvocationPolicy (Kuma's chart sets none, so it is Never).
Every admission request is appended to --log as one JSON line.
"""
import argparse
import base64
import copy
import http.server
import json
import os
import socketserver
import ssl
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "apiserver"))
import pki  # noqa: E402  (tests/apiserver/pki.py: openssl CLI wrappers)

SERVICE, NAMESPACE, PATH = "kuma-control-plane", "kuma-system", "/inject-sidecar"
IMAGE = "docker.io/kumahq/kuma-dp:2.14.3"
INIT_IMAGE = "docker.io/kumahq/kuma-init:2.14.3"


def certs(d):
    ca_key, ca_crt = pki.ensure_ca(d, "ca", cn="kuma-injector-standin-ca")
    host = "%s.%s.svc" % (SERVICE, NAMESPACE)
    pki.ensure_leaf(d, "tls", ca_key, ca_crt, ["DNS:" + host, "DNS:%s.%s" % (SERVICE, NAMESPACE)], cn=host)
    return os.path.join(d, "tls.crt"), os.path.join(d, "tls.key"), ca_crt


def field_ref(name, path):
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def sidecar(mesh):
    probe = {"httpGet": {"path": "/ready", "port": 9901}}
    return {
        "name": "kuma-sidecar",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["run", "--log-level=info", "--concurrency=2"],
        "env": [
            field_ref("INSTANCE_IP", "status.podIP"),
            {"name": "KUMA_CONTROL_PLANE_CA_CERT", "value": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"},
            {"name": "KUMA_CONTROL_PLANE_URL", "value": "https://kuma-control-plane.kuma-system:5678"},
            {"name": "KUMA_DATAPLANE_DRAIN_TIME", "value": "31s"},
            {"name": "KUMA_DATAPLANE_MESH", "value": mesh},
            {"name": "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH", "value": "/var/run/secrets/kubernetes.io/serviceaccount/token"},
            {"name": "KUMA_DNS_ENABLED", "value": "false"},
            field_ref("POD_NAME", "metadata.name"),
            field_ref("POD_NAMESPACE", "metadata.namespace"),
        ],
        "lifecycle": {"preStop": {"exec": {"command": ["killall", "-USR2", "kuma-dp"]}}},
        "readinessProbe": dict(probe, initialDelaySeconds=1, periodSeconds=5, failureThreshold=12,
                               successThreshold=1, timeoutSeconds=3),
        "startupProbe": dict(probe, initialDelaySeconds=1, periodSeconds=1, failureThreshold=600,
                             successThreshold=1, timeoutSeconds=3),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1000m", "memory": "512Mi"}},
        "restartPolicy": "Always",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True, "runAsGroup": 5678, "runAsUser": 5678},
        "volumeMounts": [{"name": "kuma-sidecar-tmp", "mountPath": "/tmp"}],
    }


def kuma_init():
    return {
        "name": "kuma-init",
        "image": INIT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/bin/kumactl", "install", "transparent-proxy"],
        "args": ["--config-file", "/tmp/kumactl/config", "--verbose"],
        "env": [{"name": "XTABLES_LOCKFILE", "value": "/tmp/xtables.lock"}],
        "resources": {"requests": {"cpu": "20m", "memory": "20M"}, "limits": {"memory": "50M"}},
        "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                            "readOnlyRootFilesystem": True, "runAsGroup": 0, "runAsUser": 0},
        "volumeMounts": [{"name": "kuma-init-tmp", "mountPath": "/tmp"}],
    }


def disabled(v):
    return str(v).lower() in ("disabled", "false")


def mutate(pod):
    """The JSON patch for pod (list of ops), [] when nothing is injected."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    labels = dict(meta.get("labels") or {})
    ann = dict(meta.get("annotations") or {})
    if disabled(labels.get("kuma.io/sidecar-injection", "")) or disabled(ann.get("kuma.io/sidecar-injection", "")):
        return []
    names = [c.get("name") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]
    if "kuma-sidecar" in names:
        return []
    mesh = labels.get("kuma.io/mesh") or ann.get("kuma.io/mesh") or "default"
    labels["kuma.io/mesh"] = mesh
    ann.update({"kuma.io/sidecar-injected": "true", "kuma.io/envoy-admin-port": "9901",
                "kuma.io/sidecar-uid": "5678", "kuma.io/transparent-proxying": "enabled",
                "kuma.io/transparent-proxying-inbound-port": "15006",
                "kuma.io/transparent-proxying-outbound-port": "15001"})
    inits = [kuma_init(), sidecar(mesh)] + copy.deepcopy(spec.get("initContainers") or [])
    vols = copy.deepcopy(spec.get("volumes") or []) + [
        {"name": "kuma-init-tmp", "emptyDir": {"sizeLimit": "10M"}},
        {"name": "kuma-sidecar-tmp", "emptyDir": {"sizeLimit": "10M"}}]
    return [{"op": "add", "path": "/metadata/labels", "value": labels},
            {"op": "add", "path": "/metadata/annotations", "value": ann},
            {"op": "add", "path": "/spec/initContainers", "value": inits},
            {"op": "add", "path": "/spec/volumes", "value": vols}]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.reply(200, b"ok", "text/plain")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            review = json.loads(self.rfile.read(n))
            req = review["request"]
        except (ValueError, KeyError, TypeError):
            return self.reply(400, b'{"error":"not an AdmissionReview"}')
        resp = {"uid": req.get("uid", ""), "allowed": True}
        ops = []
        if self.path.split("?")[0] == PATH and req.get("operation") == "CREATE" and \
                (req.get("kind") or {}).get("kind") == "Pod":
            ops = mutate(req.get("object") or {})
        if ops:
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
        obj = req.get("object") or {}
        with self.server.lock, open(self.server.logfile, "a") as f:
            f.write(json.dumps({"uid": req.get("uid"), "namespace": req.get("namespace"),
                                "name": req.get("name") or "", "generateName": (obj.get("metadata") or {}).get("generateName", ""),
                                "dryRun": req.get("dryRun"), "injected": bool(ops)}) + "\n")
        self.reply(200, json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                    "response": resp}).encode())

    def reply(self, code, data, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def webhook_config(d, name):
    _, _, ca = certs(d)
    with open(ca, "rb") as f:
        bundle = base64.b64encode(f.read()).decode()
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name, "labels": {"app": "kuma-injector-standin"}},
            "webhooks": [{
                "name": "namespace-kuma-injector.kuma.io",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 10,
                "namespaceSelector": {"matchExpressions": [
                    {"key": "kuma.io/sidecar-injection", "operator": "In", "values": ["enabled", "true"]},
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", NAMESPACE]}]},
                "clientConfig": {"service": {"namespace": NAMESPACE, "name": SERVICE, "path": PATH, "port": 443},
                                 "caBundle": bundle},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            }]}


def main():
    p = argparse.ArgumentParser(description="stand-in for Kuma's sidecar injector")
    p.add_argument("cmd", choices=["certs", "serve", "config"])
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log", default=os.devnull)
    p.add_argument("--name", default="kuma-admission-mutating-webhook-configuration")
    a = p.parse_args()
    crt, key, _ = certs(a.dir)
    if a.cmd == "certs":
        return 0
    if a.cmd == "config":
        json.dump(webhook_config(a.dir, a.name), sys.stdout)
        print()
        return 0
    s = Server(("127.0.0.1", a.port), Handler)
    s.logfile, s.lock = a.log, threading.Lock()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(s.server_address[1]))
        os.replace(a.port_file + ".tmp", a.port_file)
    try:
        s.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
