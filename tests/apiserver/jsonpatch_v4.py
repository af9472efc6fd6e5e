"""JSON Patch (RFC 6902) with the behaviour of gopkg.in/evanphx/json-patch.v4 v4.12.0.

The Kubernetes 1.32 apiserver and kubectl 1.32 both apply JSON patches with that
library, which departs from the RFC in a few places (see the fact sheet,
kubernetes-api.md section 2.5):

* ``replace`` on a missing key whose parent exists creates the key;
* negative array indices count from the end (``SupportNegativeIndices``);
* indices are parsed with Go's ``strconv.Atoi`` (leading zeros and ``+`` allowed);
* ``add`` without ``value`` stores ``null``;
* ``test`` of a missing path with ``"value": null`` succeeds;
* the first path segment is skipped without being looked at, so a path without
  the leading ``/`` is "missing".

Error messages reproduce the library's (pkg/errors ``Wrapf`` => ``msg: cause``).
``apply(doc, patch)`` takes and returns plain Python JSON values; it never
mutates its input.
"""
import copy
import json
import re

__all__ = ["PatchError", "decode_patch", "apply", "apply_json"]

ERR_MISSING = "missing value"
ERR_INVALID_INDEX = "invalid index referenced"
ERR_TEST_FAILED = "test failed"

_MISSING = object()  # op has no "value" member (Go: op.value() == nil)
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_INT64_MAX = (1 << 63) - 1


class PatchError(Exception):
    """A patch could not be decoded or applied; str() is the Go error text."""


def _wrap(cause, msg):
    return PatchError("%s: %s" % (msg, cause))


def _atoi(key):
    """Go strconv.Atoi: returns int or raises PatchError with Go's message."""
    if not _INT_RE.match(key):
        raise PatchError('strconv.Atoi: parsing "%s": invalid syntax' % key)
    v = int(key, 10)
    if v > _INT64_MAX or v < -_INT64_MAX - 1:
        raise PatchError('strconv.Atoi: parsing "%s": value out of range' % key)
    return v


def decode_patch(data):
    """Decode a patch document (bytes/str or already-parsed). Returns a list of dicts."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as e:
            raise PatchError("invalid character in patch: %s" % e)
    if data is None:
        return []
    if isinstance(data, dict):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if not isinstance(data, list):
        raise PatchError("json: cannot unmarshal %s into Go value of type jsonpatch.Patch" % _gotype(data))
    for op in data:
        if not isinstance(op, dict):
            raise PatchError("json: cannot unmarshal %s into Go value of type jsonpatch.Operation" % _gotype(op))
    return data


def _gotype(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _decode_key(k):
    return k.replace("~1", "/").replace("~0", "~")


def _is_container(v):
    return isinstance(v, (dict, list))


class _Root:
    """Holder so that replace of "" can swap the whole document."""

    def __init__(self, doc):
        self.doc = doc


def _find_object(root, path):
    """findObject: returns (container, key) or (None, "")."""
    split = path.split("/")
    if len(split) < 2:
        return None, ""
    doc = root.doc
    for part in split[1:-1]:
        try:
            nxt = _get(doc, _decode_key(part))
        except PatchError:
            return None, ""
        if nxt is None or not _is_container(nxt):
            return None, ""
        doc = nxt
    return doc, _decode_key(split[-1])


def _get(con, key):
    """container.get: dict never errors (missing => None); list checks the index."""
    if isinstance(con, dict):
        return con.get(key)
    idx = _atoi(key)
    n = len(con)
    if idx < 0:
        if idx < -n:
            raise _wrap(ERR_INVALID_INDEX, "Unable to access invalid index: %d" % idx)
        idx += n
    if idx >= n:
        raise _wrap(ERR_INVALID_INDEX, "Unable to access invalid index: %d" % idx)
    return con[idx]


def _add(con, key, val):
    if isinstance(con, dict):
        con[key] = val
        return
    if key == "-":
        con.append(val)
        return
    try:
        idx = _atoi(key)
    except PatchError as e:
        raise _wrap(e, "value was not a proper array index: '%s'" % key)
    sz = len(con) + 1
    if idx >= sz:
        raise _wrap(ERR_INVALID_INDEX, "Unable to access invalid index: %d" % idx)
    if idx < 0:
        if idx < -sz:
            raise _wrap(ERR_INVALID_INDEX, "Unable to access invalid index: %d" % idx)
        idx += sz
    con.insert(idx, val)


def _remove(con, key):
    if isinstance(con, dict):
        if key not in con:
            raise _wrap(ERR_MISSING, "Unable to remove nonexistent key: %s" % key)
        del con[key]
        return
    idx = _atoi(key)
    n = len(con)
    if idx >= n:
        raise _wrap(ERR_INVALID_INDEX, "Unable to access invalid index: %d" % idx)
    if idx < 0:
        if idx < -n:
            raise _wrap(ERR_INVALID_INDEX, "Unable to access invalid index: %d" % idx)
        idx += n
    del con[idx]


def _set(con, key, val):
    if isinstance(con, dict):
        con[key] = val
        return
    idx = _atoi(key)
    if idx < 0:
        if idx < -len(con):
            raise _wrap(ERR_INVALID_INDEX, "Unable to access invalid index: %d" % idx)
        idx += len(con)
    con[idx] = val


def _canon(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def _equal(a, b):
    # Go compares objects/arrays structurally and scalars by their compact JSON text.
    return _canon(a) == _canon(b)


def _path(op):
    p = op.get("path", _MISSING)
    if p is _MISSING or not isinstance(p, str):
        raise _wrap(ERR_MISSING, "operation missing path field")
    return p


def _from(op):
    p = op.get("from", _MISSING)
    if p is _MISSING or not isinstance(p, str):
        raise _wrap(ERR_MISSING, "operation, missing from field")
    return p


def _value(op):
    v = op.get("value", _MISSING)
    if v is _MISSING:
        return _MISSING
    return copy.deepcopy(v)


def _op_add(root, op):
    try:
        path = _path(op)
    except PatchError:
        raise _wrap(ERR_MISSING, "add operation failed to decode path")
    con, key = _find_object(root, path)
    if con is None:
        raise _wrap(ERR_MISSING, 'add operation does not apply: doc is missing path: "%s"' % path)
    v = _value(op)
    try:
        _add(con, key, None if v is _MISSING else v)
    except PatchError as e:
        raise _wrap(e, "error in add for path: '%s'" % path)


def _op_remove(root, op):
    try:
        path = _path(op)
    except PatchError as e:
        raise _wrap(e, "remove operation failed to decode path")
    con, key = _find_object(root, path)
    if con is None:
        raise _wrap(ERR_MISSING, 'remove operation does not apply: doc is missing path: "%s"' % path)
    try:
        _remove(con, key)
    except PatchError as e:
        raise _wrap(e, "error in remove for path: '%s'" % path)


def _op_replace(root, op):
    try:
        path = _path(op)
    except PatchError as e:
        raise _wrap(e, "replace operation failed to decode path")
    if path == "":
        v = _value(op)
        if _is_container(v):
            root.doc = v
        # Go wraps a nil error here, so any other value is a silent no-op.
        return
    con, key = _find_object(root, path)
    if con is None:
        raise _wrap(ERR_MISSING, "replace operation does not apply: doc is missing path: %s" % path)
    try:
        _get(con, key)
    except PatchError:
        raise _wrap(ERR_MISSING, "replace operation does not apply: doc is missing key: %s" % path)
    v = _value(op)
    try:
        _set(con, key, None if v is _MISSING else v)
    except PatchError as e:
        raise _wrap(e, "error in remove for path: '%s'" % path)


def _op_move(root, op):
    try:
        frm = _from(op)
    except PatchError as e:
        raise _wrap(e, "move operation failed to decode from")
    con, key = _find_object(root, frm)
    if con is None:
        raise _wrap(ERR_MISSING, "move operation does not apply: doc is missing from path: %s" % frm)
    try:
        val = _get(con, key)
        _remove(con, key)
    except PatchError as e:
        raise _wrap(e, "error in move for path: '%s'" % key)
    try:
        path = _path(op)
    except PatchError as e:
        raise _wrap(e, "move operation failed to decode path")
    con, key = _find_object(root, path)
    if con is None:
        raise _wrap(ERR_MISSING, "move operation does not apply: doc is missing destination path: %s" % path)
    try:
        _add(con, key, val)
    except PatchError as e:
        raise _wrap(e, "error in move for path: '%s'" % path)


def _op_copy(root, op):
    try:
        frm = _from(op)
    except PatchError as e:
        raise _wrap(e, "copy operation failed to decode from")
    con, key = _find_object(root, frm)
    if con is None:
        raise _wrap(ERR_MISSING, "copy operation does not apply: doc is missing from path: %s" % frm)
    try:
        val = _get(con, key)
    except PatchError as e:
        raise _wrap(e, "error in copy for from: '%s'" % frm)
    try:
        path = _path(op)
    except PatchError:
        raise _wrap(ERR_MISSING, "copy operation failed to decode path")
    con, key = _find_object(root, path)
    if con is None:
        raise _wrap(ERR_MISSING, "copy operation does not apply: doc is missing destination path: %s" % path)
    try:
        _add(con, key, copy.deepcopy(val))
    except PatchError as e:
        raise _wrap(e, "error while adding value during copy")


def _op_test(root, op):
    try:
        path = _path(op)
    except PatchError as e:
        raise _wrap(e, "test operation failed to decode path")
    v = _value(op)
    if path == "":
        if v is not _MISSING and _equal(root.doc, v):
            return
        raise _wrap(ERR_TEST_FAILED, "testing value %s failed" % path)
    con, key = _find_object(root, path)
    if con is None:
        raise _wrap(ERR_MISSING, "test operation does not apply: is missing path: %s" % path)
    try:
        val = _get(con, key)
    except PatchError as e:
        raise _wrap(e, "error in test for path: '%s'" % path)
    if val is None:
        if v is None:  # "value": null (v is _MISSING makes Go panic; treat as a failure)
            return
        raise _wrap(ERR_TEST_FAILED, "testing value %s failed" % path)
    if v is _MISSING or v is None:
        raise _wrap(ERR_TEST_FAILED, "testing value %s failed" % path)
    if _equal(val, v):
        return
    raise _wrap(ERR_TEST_FAILED, "testing value %s failed" % path)


_OPS = {"add": _op_add, "remove": _op_remove, "replace": _op_replace,
        "move": _op_move, "copy": _op_copy, "test": _op_test}


def apply(doc, patch):
    """Apply a decoded or raw patch to a JSON value; returns a new value."""
    ops = decode_patch(patch)
    root = _Root(copy.deepcopy(doc))
    if not _is_container(root.doc):
        if not ops:
            return root.doc
        raise PatchError("unknown object type")
    for op in ops:
        kind = op.get("op")
        if not isinstance(kind, str):
            kind = "unknown"
        fn = _OPS.get(kind)
        if fn is None:
            raise PatchError("Unexpected kind: %s" % kind)
        fn(root, op)
    return root.doc


def apply_json(doc_bytes, patch_bytes):
    """Bytes in, bytes out convenience wrapper."""
    return json.dumps(apply(json.loads(doc_bytes), patch_bytes)).encode()
