#!/usr/bin/env python3
"""json-patch v4 behaviour (kubernetes-api.md section 2.6), cross-checked with
`kubectl patch --local --type=json -o json`, which uses the same library as the
1.32 apiserver. Set KUBECTL to the kubectl 1.32 binary (found automatically
next to `kubectl` otherwise); without it only the table is checked."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jsonpatch_v4  # noqa: E402

P1 = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "demo", "labels": {"app": "demo"}},
      "spec": {"containers": [{"name": "app", "image": "nginx"}]}}
P3 = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "abc"},
      "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}, {"name": "c", "image": "x"}]}}
PN = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "demo", "annotations": None},
      "spec": {"containers": [{"name": "app", "image": "nginx"}]}}


def names(d):
    return [c["name"] for c in d["spec"]["containers"]]


def c(name):
    return {"name": name, "image": "busybox"}


# (description, doc, patch, expected error text or None, check(result))
CASES = [
    ("append container", P1, [{"op": "add", "path": "/spec/containers/-", "value": {"name": "sidecar", "image": "busybox"}}],
     None, lambda d: names(d) == ["app", "sidecar"]),
    ("add into missing annotations", P1, [{"op": "add", "path": "/metadata/annotations/foo", "value": "bar"}],
     'add operation does not apply: doc is missing path: "/metadata/annotations/foo": missing value', None),
    ("add into null annotations", PN, [{"op": "add", "path": "/metadata/annotations/foo", "value": "bar"}],
     'add operation does not apply: doc is missing path: "/metadata/annotations/foo": missing value', None),
    ("create map then escaped key", P1, [{"op": "add", "path": "/metadata/annotations", "value": {}},
                                         {"op": "add", "path": "/metadata/annotations/example.com~1inject", "value": "true"}],
     None, lambda d: d["metadata"]["annotations"] == {"example.com/inject": "true"}),
    ("~0 escape", P1, [{"op": "add", "path": "/metadata/labels/a~0b", "value": "x"}],
     None, lambda d: d["metadata"]["labels"]["a~b"] == "x"),
    ("~1 is not a separator", P1, [{"op": "add", "path": "/metadata/labels~1x", "value": "y"}],
     None, lambda d: d["metadata"]["labels/x"] == "y"),
    ("replace absent map creates it", P1, [{"op": "replace", "path": "/metadata/annotations", "value": {"a": "b"}}],
     None, lambda d: d["metadata"]["annotations"] == {"a": "b"}),
    ("replace absent key creates it", P1, [{"op": "replace", "path": "/metadata/labels/nope", "value": "x"}],
     None, lambda d: d["metadata"]["labels"] == {"app": "demo", "nope": "x"}),
    ("replace with missing parent", P1, [{"op": "replace", "path": "/metadata/annotations/foo", "value": "x"}],
     "replace operation does not apply: doc is missing path: /metadata/annotations/foo: missing value", None),
    ("remove missing key", P1, [{"op": "remove", "path": "/metadata/labels/nope"}],
     "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: nope: missing value", None),
    ("failing test", P1, [{"op": "test", "path": "/metadata/name", "value": "other"}],
     "testing value /metadata/name failed: test failed", None),
    ("test then add", P1, [{"op": "test", "path": "/metadata/name", "value": "demo"},
                           {"op": "add", "path": "/metadata/labels/x", "value": "y"}],
     None, lambda d: d["metadata"]["labels"]["x"] == "y"),
    ("test missing path with null", P3, [{"op": "test", "path": "/metadata/labels", "value": None}],
     None, lambda d: d == P3),
    ("insert at 0", P1, [{"op": "add", "path": "/spec/containers/0", "value": c("first")}],
     None, lambda d: names(d) == ["first", "app"]),
    ("insert at length", P1, [{"op": "add", "path": "/spec/containers/1", "value": c("last")}],
     None, lambda d: names(d) == ["app", "last"]),
    ("insert past length", P1, [{"op": "add", "path": "/spec/containers/2", "value": c("x")}],
     "error in add for path: '/spec/containers/2': Unable to access invalid index: 2: invalid index referenced", None),
    ("add at -1 appends", P3, [{"op": "add", "path": "/spec/containers/-1", "value": c("neg")}],
     None, lambda d: names(d) == ["a", "b", "c", "neg"]),
    ("remove -1", P3, [{"op": "remove", "path": "/spec/containers/-1"}],
     None, lambda d: names(d) == ["a", "b"]),
    ("leading zero index", P3, [{"op": "add", "path": "/spec/containers/01", "value": c("lead0")}],
     None, lambda d: names(d) == ["a", "lead0", "b", "c"]),
    ("remove dash", P3, [{"op": "remove", "path": "/spec/containers/-"}],
     "error in remove for path: '/spec/containers/-': strconv.Atoi: parsing \"-\": invalid syntax", None),
    ("remove only container", P1, [{"op": "remove", "path": "/spec/containers/0"}],
     None, lambda d: d["spec"]["containers"] == []),
    ("append to absent list", P1, [{"op": "add", "path": "/spec/initContainers/-", "value": c("init")}],
     'add operation does not apply: doc is missing path: "/spec/initContainers/-": missing value', None),
    ("add whole list", P1, [{"op": "add", "path": "/spec/initContainers", "value": [c("init")]}],
     None, lambda d: [x["name"] for x in d["spec"]["initContainers"]] == ["init"]),
    ("copy", P1, [{"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"}],
     None, lambda d: d["metadata"]["annotations"] == {"app": "demo"}),
    ("move", P1, [{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/app2"}],
     None, lambda d: d["metadata"]["labels"] == {"app2": "demo"}),
    ("add replaces map", P1, [{"op": "add", "path": "/metadata/labels", "value": {"only": "me"}}],
     None, lambda d: d["metadata"]["labels"] == {"only": "me"}),
    ("empty patch", P1, [], None, lambda d: d == P1),
    ("bogus op", P1, [{"op": "bogus", "path": "/x"}], "Unexpected kind: bogus", None),
    ("object instead of array", P1, {"op": "add", "path": "/x", "value": 1},
     "json: cannot unmarshal object into Go value of type jsonpatch.Patch", None),
    ("no leading slash", P1, [{"op": "add", "path": "metadata/labels/x", "value": "y"}],
     'add operation does not apply: doc is missing path: "metadata/labels/x": missing value', None),
    ("add at root", P1, [{"op": "add", "path": "", "value": {}}],
     'add operation does not apply: doc is missing path: "": missing value', None),
    ("add without value", P1, [{"op": "add", "path": "/metadata/labels/x"}],
     None, lambda d: "x" in d["metadata"]["labels"] and d["metadata"]["labels"]["x"] is None),
    ("replace index out of range", P3, [{"op": "replace", "path": "/spec/containers/5", "value": c("z")}],
     "replace operation does not apply: doc is missing key: /spec/containers/5: missing value", None),
    ("replace negative index", P3, [{"op": "replace", "path": "/spec/containers/-1", "value": c("z")}],
     None, lambda d: names(d) == ["a", "b", "z"]),
]


def find_kubectl():
    k = os.environ.get("KUBECTL")
    if k:
        return k
    base = shutil.which("kubectl")
    if base:
        cand = os.path.join(os.path.dirname(os.path.realpath(base)), "kubectl.1.32")
        if os.path.exists(cand):
            return cand
        return base
    return None


class TestJsonPatchV4(unittest.TestCase):
    kubectl = find_kubectl()
    tmp = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="jp4-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def kubectl_patch(self, doc, patch):
        f = os.path.join(self.tmp, "doc.json")
        with open(f, "w") as fh:
            json.dump(doc, fh)
        env = dict(os.environ, HOME=self.tmp, KUBECONFIG=os.path.join(self.tmp, "none"))
        p = subprocess.run([self.kubectl, "patch", "--local", "-f", f, "--type=json", "-p", json.dumps(patch),
                            "-o", "json", "--cache-dir", os.path.join(self.tmp, "cache")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=30)
        return p.returncode, (json.loads(p.stdout) if p.returncode == 0 else None), p.stderr.strip()

    def test_table(self):
        for desc, doc, patch, err, check in CASES:
            with self.subTest(desc):
                before = json.dumps(doc, sort_keys=True)
                if err:
                    with self.assertRaises(jsonpatch_v4.PatchError) as cm:
                        jsonpatch_v4.apply(doc, patch)
                    self.assertEqual(str(cm.exception), err)
                else:
                    out = jsonpatch_v4.apply(doc, patch)
                    self.assertTrue(check(out), "unexpected result %s" % json.dumps(out))
                self.assertEqual(before, json.dumps(doc, sort_keys=True), "input was mutated")

    def test_against_kubectl(self):
        if not self.kubectl:
            self.skipTest("kubectl not found")
        for desc, doc, patch, err, _check in CASES:
            with self.subTest(desc):
                rc, kout, kerr = self.kubectl_patch(doc, patch)
                try:
                    mine, merr = jsonpatch_v4.apply(doc, patch), None
                except jsonpatch_v4.PatchError as e:
                    mine, merr = None, str(e)
                if rc == 0:
                    self.assertIsNone(merr, "kubectl succeeded, we failed: %s" % merr)
                    self.assertEqual(json.dumps(kout, sort_keys=True), json.dumps(mine, sort_keys=True))
                else:
                    self.assertIsNotNone(merr, "kubectl failed (%s), we succeeded" % kerr)
                    if "doc is missing key" in merr:
                        # kubectl's patch.go rewrites this one library error for display
                        merr = "Object to be patched is missing field (%s)" % merr[merr.index("key:") + 5:]
                    self.assertEqual(kerr, "error: " + merr)

    def test_unpadded_base64_is_rejected_like_go(self):
        import server
        good = "W3sib3AiOiJhZGQiLCJwYXRoIjoiL21ldGFkYXRhL2xhYmVscy90aWVyIiwidmFsdWUiOiJkYiJ9XQ=="
        self.assertEqual(json.loads(server.go_b64decode(good))[0]["value"], "db")
        self.assertEqual(json.loads(server.go_b64decode(good[:40] + "\n" + good[40:]))[0]["op"], "add")
        with self.assertRaises(ValueError) as cm:
            server.go_b64decode(good.rstrip("="))
        self.assertEqual(str(cm.exception), "illegal base64 data at input byte %d" % (len(good) - 4))
        with self.assertRaises(ValueError) as cm:
            server.go_b64decode('[{"op":"add"}]')
        self.assertEqual(str(cm.exception), "illegal base64 data at input byte 0")


if __name__ == "__main__":
    unittest.main(verbosity=1)
