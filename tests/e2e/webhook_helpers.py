#!/usr/bin/env python3
"""JSON helpers for tests/e2e/webhook_test.sh (no third-party modules).

  jget FILE EXPR           print EXPR evaluated with d = the JSON in FILE ("-" = stdin);
                           strings print raw, everything else as compact JSON
  mkreview POD [opts]      print an admission.k8s.io/v1 AdmissionReview around POD (a file,
                           "-", or "none" for no object): --uid U --op OP --kind K --group G
                           --resource R --ns NS --dry-run
  patch FILE               print the decoded JSON Patch of the review response in FILE;
                           exit 3 when there is none, 4 when patch/patchType disagree or the
                           base64 is not padded standard base64
  edit FILE EXPR           apply a Python statement to d (the JSON in FILE) and print d
"""
import base64
import binascii
import json
import sys


def load(path):
    if path == "-":
        return json.load(sys.stdin)
    with open(path) as f:
        return json.load(f)


def out(v):
    if isinstance(v, str):
        print(v)
    else:
        print(json.dumps(v, separators=(",", ":")))


def cmd_jget(args):
    d = load(args[0])
    out(eval(args[1], {"d": d, "json": json}))


def cmd_edit(args):
    d = load(args[0])
    exec(args[1], {"d": d, "json": json})
    out(d)


def cmd_mkreview(args):
    pod_arg = args[0]
    opts = {"uid": "e2e-uid", "op": "CREATE", "kind": "Pod", "group": "", "resource": "pods",
            "ns": "default", "dry-run": False}
    i = 1
    while i < len(args):
        key = args[i][2:]
        if key == "dry-run":
            opts[key] = True
            i += 1
        else:
            opts[key] = args[i + 1]
            i += 2
    obj = None if pod_arg == "none" else load(pod_arg)
    version = "v1alpha1" if opts["group"] == "kuma.io" else "v1"
    req = {
        "uid": opts["uid"],
        "kind": {"group": opts["group"], "version": version, "kind": opts["kind"]},
        "resource": {"group": opts["group"], "version": version, "resource": opts["resource"]},
        "namespace": opts["ns"],
        "operation": opts["op"],
        "userInfo": {"username": "e2e"},
        "object": obj,
        "oldObject": obj if opts["op"] == "UPDATE" else None,
        "dryRun": opts["dry-run"],
    }
    if opts["op"] == "DELETE":
        req["oldObject"], req["object"] = obj, None
    out({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})


def cmd_patch(args):
    d = load(args[0])
    r = d.get("response", {})
    p, t = r.get("patch"), r.get("patchType")
    if p is None and t is None:
        sys.exit(3)
    if p is None or t != "JSONPatch":
        print("patch/patchType mismatch: %r %r" % (p, t), file=sys.stderr)
        sys.exit(4)
    if len(p) % 4 != 0:
        print("patch is not padded base64", file=sys.stderr)
        sys.exit(4)
    try:
        raw = base64.b64decode(p, validate=True)
    except binascii.Error as e:
        print("patch is not standard base64: %s" % e, file=sys.stderr)
        sys.exit(4)
    out(json.loads(raw))


if __name__ == "__main__":
    cmds = {"jget": cmd_jget, "mkreview": cmd_mkreview, "patch": cmd_patch, "edit": cmd_edit}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmds[sys.argv[1]](sys.argv[2:])
