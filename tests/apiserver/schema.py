"""Structural schemas for custom resources: pruning, defaulting, validation, unknown-field paths.

Follows kubernetes/apiextensions-apiserver v0.32.0:
  pkg/apiserver/schema/pruning/algorithm.go        prune (root and x-kubernetes-embedded-resource keep
                                                   apiVersion/kind/metadata; preserve-unknown-fields)
  pkg/apiserver/schema/unknown_field_paths.go      the "spec.items[0].foo" paths of pruned fields
  pkg/apiserver/schema/defaulting/algorithm.go     defaults (also for non-nullable nulls)
  pkg/apiserver/schema/defaulting/prunenulls.go    non-nullable nulls without default are dropped
  pkg/apiserver/schema/objectmeta/coerce.go        metadata round-trips through ObjectMeta
  pkg/apiserver/validation/validation.go           kube-openapi result -> field errors
  pkg/apiserver/validation/formats.go              the supported string formats
  pkg/apiserver/validation/ratcheting.go           unchanged values are not re-validated on update
and kubernetes/kube-openapi pkg/validation/{validate,errors,strfmt} for the validator order and
the message texts ("spec.x in body must be of type integer: \"string\"", "should match '...'").
There is no CEL (x-kubernetes-validations are ignored).
"""
import base64
import ipaddress
import json
import math
import re
import uuid as uuidlib

import gotime

MISSING = object()
META_FIELDS = ("apiVersion", "kind", "metadata")


# ----------------------------------------------------------------------------- Go value formatting

def go_float(f):
    """strconv.FormatFloat(f, 'g', -1, 64), which is how fmt's %v prints a float64."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0"
    sign = "-" if f < 0 else ""
    r = repr(abs(f))
    mant, _, e = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = (ip + fp).lstrip("0")
    lead = len(ip + fp) - len((ip + fp).lstrip("0"))
    dp = len(ip) - lead + (int(e) if e else 0)
    digits = digits.rstrip("0") or "0"
    exp = dp - 1
    if exp < -4 or exp >= 6:  # shortest formatting decides with precision 6
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return "%s%se%s%02d" % (sign, m, "-" if exp < 0 else "+", abs(exp))
    if dp <= 0:
        return sign + "0." + "0" * (-dp) + digits
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return sign + digits[:dp] + "." + digits[dp:]


def go_quote(s):
    """strconv.Quote for the printable subset."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_sharp_v(v):
    """fmt's %#v for values decoded from JSON into interface{}."""
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%d" % v
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(go_sharp_v(x) for x in v) + "}"
    if isinstance(v, dict):
        return "map[string]interface {}{" + ", ".join(
            "%s:%s" % (go_quote(k), go_sharp_v(v[k])) for k in sorted(v)) + "}"
    return str(v)


def go_plus_v(v):
    """fmt's %+v / %v for JSON values (maps with sorted keys, no quotes)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%d" % v
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "[" + " ".join(go_plus_v(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join("%s:%s" % (k, go_plus_v(v[k])) for k in sorted(v)) + "]"
    return str(v)


def field_value(v):
    """How field.Error.ErrorBody prints a bad value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%d" % v
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, str):
        return go_quote(v)
    return go_sharp_v(v)


def json_type(v):
    """The JSON-schema type kube-openapi infers for a decoded value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "unknown"


# ----------------------------------------------------------------------------- JSON decoding with duplicates

class _Obj(dict):
    __slots__ = ("dups",)


def _pairs(pairs):
    d = _Obj()
    d.dups = []
    for k, v in pairs:
        if k in d:
            d.dups.append(k)
        d[k] = v
    return d


def loads_strict(text):
    """json.loads that also returns the paths of duplicate keys (sigs.k8s.io/json UnmarshalStrict:
    'duplicate field "spec.a"'). The result holds plain dicts."""
    obj = json.loads(text, object_pairs_hook=_pairs)
    dups = []

    def walk(x, path):
        if isinstance(x, _Obj):
            for k in x.dups:
                dups.append(_join(path, k))
            out = {}
            for k, v in x.items():
                out[k] = walk(v, _join(path, k))
            return out
        if isinstance(x, list):
            return [walk(v, "%s[%d]" % (path, i)) for i, v in enumerate(x)]
        return x
    return walk(obj, ""), dups


def _join(path, key):
    return key if not path else path + "." + key


# ----------------------------------------------------------------------------- pruning

def _props(s):
    p = s.get("properties") if isinstance(s, dict) else None
    return p if isinstance(p, dict) else {}


def _addl(s):
    a = s.get("additionalProperties") if isinstance(s, dict) else None
    return a if isinstance(a, dict) else None


def _items(s):
    it = s.get("items") if isinstance(s, dict) else None
    return it if isinstance(it, dict) else None


def prune(obj, s, is_root=True):
    """PruneWithOptions(obj, s, isResourceRoot, TrackUnknownFieldPaths=true): drops unknown fields
    in place, returns the sorted list of their paths."""
    paths = []
    if is_root:
        s = dict(s or {})
        s["x-kubernetes-embedded-resource"] = True
    _prune(obj, s, "", paths)
    paths.sort()
    return paths


def _prune(x, s, path, paths):
    if s is not None and s.get("x-kubernetes-preserve-unknown-fields"):
        _skip_prune(x, s, path, paths)
        return
    if isinstance(x, dict):
        if s is None:
            for k in list(x):
                paths.append(_join(path, k))
                del x[k]
            return
        embedded = s.get("x-kubernetes-embedded-resource")
        props, addl = _props(s), _addl(s)
        for k in list(x):
            if embedded and k in META_FIELDS:
                continue
            if k in props:
                _prune(x[k], props[k], _join(path, k), paths)
            elif addl is not None:
                _prune(x[k], addl, _join(path, k), paths)
            else:
                if k not in META_FIELDS or path:
                    paths.append(_join(path, k))
                del x[k]
    elif isinstance(x, list):
        it = _items(s) if s is not None else None
        for i, v in enumerate(x):
            _prune(v, it, "%s[%d]" % (path, i), paths)


def _skip_prune(x, s, path, paths):
    if s is None:
        return
    if isinstance(x, dict):
        embedded = s.get("x-kubernetes-embedded-resource")
        props, addl = _props(s), _addl(s)
        for k, v in x.items():
            if embedded and k in META_FIELDS:
                continue
            if k in props:
                _prune(v, props[k], _join(path, k), paths)
            elif addl is not None:
                _prune(v, addl, _join(path, k), paths)
    elif isinstance(x, list):
        it = _items(s)
        for i, v in enumerate(x):
            _skip_prune(v, it, "%s[%d]" % (path, i), paths)


def _field_schema(s, k):
    if s is None:
        return None
    props = _props(s)
    if k in props:
        return props[k]
    return _addl(s)


def prune_nulls(x, s):
    """PruneNonNullableNullsWithoutDefaults."""
    if isinstance(x, dict):
        for k in list(x):
            fs = _field_schema(s, k)
            if x[k] is None and fs is not None and not fs.get("nullable") and "default" not in fs:
                del x[k]
            else:
                prune_nulls(x[k], fs)
    elif isinstance(x, list):
        it = _items(s) if s is not None else None
        for v in x:
            prune_nulls(v, it)


# ----------------------------------------------------------------------------- defaulting

def has_defaults(s):
    if not isinstance(s, dict):
        return False
    if "default" in s:
        return True
    return any(has_defaults(v) for v in _props(s).values()) or has_defaults(_addl(s)) or has_defaults(_items(s))


def _nonnullable_null(x, s):
    return x is None and s is not None and not s.get("nullable")


def default(x, s):
    """defaulting.Default: fill absent (or non-nullable null) fields from `default`, deep-copied."""
    if s is None:
        return
    if isinstance(x, dict):
        props = _props(s)
        for k, ps in props.items():
            if "default" not in ps or ps["default"] is None:
                continue
            if k not in x or _nonnullable_null(x[k], ps):
                x[k] = json.loads(json.dumps(ps["default"]))
        addl = _addl(s)
        for k in list(x):
            if k in props:
                default(x[k], props[k])
            elif addl is not None:
                if _nonnullable_null(x[k], addl) and addl.get("default") is not None:
                    x[k] = json.loads(json.dumps(addl["default"]))
                default(x[k], addl)
    elif isinstance(x, list):
        it = _items(s)
        if it is None:
            return
        for i in range(len(x)):
            if _nonnullable_null(x[i], it) and it.get("default") is not None:
                x[i] = json.loads(json.dumps(it["default"]))
            default(x[i], it)


# ----------------------------------------------------------------------------- formats (strfmt)

_DATETIME_RE = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
_UUID = {
    "uuid": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
    "uuid3": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
    "uuid4": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
    "uuid5": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
}
_HOSTNAME_RE = re.compile(r"^([a-zA-Z0-9]((-?[a-zA-Z0-9]{0,62})?)|([a-zA-Z0-9](([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.)){1,}([a-zA-Z]){2,63})$")
_DURATION_RE = re.compile(r"^([+-]?([0-9]*(\.[0-9]*)?[a-zµμ]+)+|0)$")
_SCALA_DURATION_RE = re.compile(r"^[1-9][0-9]*\s?(ns|us|µs|ms|s|m|h|d|w)$")
_MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$")
_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
SUPPORTED_FORMATS = {"bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3",
                     "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor",
                     "byte", "password", "date", "duration", "datetime"}


def _is_date(s):
    try:
        y, m, d = s.split("-")
        if len(y) != 4 or len(m) != 2 or len(d) != 2 or not (y + m + d).isdigit():
            return False
        gotime.parse(gotime.RFC3339, "%s-%s-%sT00:00:00Z" % (y, m, d))
        return True
    except (ValueError, gotime.GoTimeError):
        return False


def format_ok(fmt, v):
    if fmt == "datetime":
        if len(v) < 4:
            return False
        parts = v.lower().split("t")
        if len(parts) < 2 or not _is_date(parts[0]):
            return False
        m = _DATETIME_RE.search(parts[1])
        return bool(m) and m.group(1) <= "23" and m.group(2) <= "59" and m.group(3) <= "59"
    if fmt == "date":
        return _is_date(v)
    if fmt in _UUID:
        return re.match(_UUID[fmt], v) is not None
    if fmt == "ipv4":
        try:
            return isinstance(ipaddress.ip_address(v), ipaddress.IPv4Address) and v.count(".") == 3
        except ValueError:
            return False
    if fmt == "ipv6":
        try:
            ipaddress.ip_address(v)
            return ":" in v
        except ValueError:
            return False
    if fmt == "cidr":
        try:
            ipaddress.ip_network(v, strict=False)
            return "/" in v
        except ValueError:
            return False
    if fmt == "byte":
        try:
            base64.b64decode(v, validate=True)
            return True
        except ValueError:
            return False
    if fmt == "hostname":
        return _HOSTNAME_RE.match(v) is not None
    if fmt == "duration":
        return _DURATION_RE.match(v) is not None or _SCALA_DURATION_RE.match(v) is not None
    if fmt == "mac":
        return _MAC_RE.match(v) is not None
    if fmt == "email":
        return _EMAIL_RE.match(v) is not None
    if fmt == "uri":
        return "://" in v or v.startswith("/")
    if fmt == "bsonobjectid":
        return re.match(r"^[0-9a-fA-F]{24}$", v) is not None
    if fmt == "hexcolor":
        return re.match(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", v) is not None
    return True  # password, isbn, creditcard, ssn, rgbcolor: accepted


# ----------------------------------------------------------------------------- validation

def _go_regex(p):
    """Go RE2 syntax is close to Python's for the patterns CRDs use; \\z is Python's \\Z."""
    return p.replace("\\z", "\\Z")


_RE_CACHE = {}


def _pattern_match(pattern, v):
    rx = _RE_CACHE.get(pattern)
    if rx is None:
        try:
            rx = re.compile(_go_regex(pattern))
        except re.error:
            rx = False
        _RE_CACHE[pattern] = rx
    return True if rx is False else rx.search(v) is not None


def _num_v(x):
    return "%d" % x if isinstance(x, int) and not isinstance(x, bool) else go_float(float(x))


def _bound_v(bound, value):
    """MaximumNativeType/MinimumNativeType: the bound is printed as int64 for an int value."""
    if isinstance(value, int):
        return "%d" % int(bound)
    return go_float(float(bound))


def _types(s):
    t = s.get("type")
    if not t:
        return []
    return t if isinstance(t, list) else [t]


def _deep_equal(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class Cause:
    __slots__ = ("field", "reason", "message")

    def __init__(self, field, reason, message):
        self.field, self.reason, self.message = field, reason, message

    def astuple(self):
        return (self.field, self.reason, self.message)


def _invalid(path, value, msg):
    return Cause(path, "FieldValueInvalid", "Invalid value: %s: %s" % (field_value(value), msg))


def _type_invalid(path, value, msg):
    return Cause(path, "FieldValueTypeInvalid", "Invalid value: %s: %s" % (field_value(value), msg))


def validate(obj, s, old=MISSING):
    """ValidateCustomResource(nil, obj, validator) (and ...Update with ratcheting when old is given):
    a list of Cause in kube-openapi's order. Field paths have no leading dot."""
    out = []
    if isinstance(s, dict):
        _validate(obj, s, "", old, out)
    return [c.astuple() for c in out]


def _validate(x, s, path, old, out):
    if old is not MISSING and _deep_equal(x, old):
        return  # ratcheting: an unchanged value is not re-validated
    name = path
    types = _types(s)
    int_or_string = s.get("x-kubernetes-int-or-string")
    if x is None:
        if types and not s.get("nullable"):
            out.append(_type_invalid(path, "null", "%s in body must be of type %s: \"null\"" % (name, ",".join(types))))
        elif "enum" in s and s["enum"] and None not in s["enum"]:
            out.append(_not_supported(path, None, s["enum"]))
        return
    # 1. type
    jt = json_type(x)
    if int_or_string:
        if jt not in ("integer", "string"):
            out.append(_type_invalid(path, jt, "%s in body must be of type integer,string: %s" % (name, go_quote(jt))))
    elif types:
        ok = jt in types or (jt == "number" and "integer" in types and float(x).is_integer()) or \
            (jt == "integer" and "number" in types)
        if not ok:
            out.append(_type_invalid(path, jt, "%s in body must be of type %s: %s" % (name, ",".join(types), go_quote(jt))))
    # 2. allOf / anyOf / oneOf / not
    _junctors(x, s, path, out)
    # 3. string
    if isinstance(x, str):
        n = len(x)
        if "maxLength" in s and n > int(s["maxLength"]):
            out.append(Cause(path, "FieldValueTooLong", "Too long: may not be more than %d bytes" % int(s["maxLength"])))
        elif "minLength" in s and n < int(s["minLength"]):
            out.append(_invalid(path, x, "%s in body should be at least %d chars long" % (name, int(s["minLength"]))))
        elif s.get("pattern") and not _pattern_match(s["pattern"], x):
            out.append(_invalid(path, x, "%s in body should match '%s'" % (name, s["pattern"])))
        # 4. format
        fmt = (s.get("format") or "").replace("-", "")
        if fmt in SUPPORTED_FORMATS and not format_ok(fmt, x):
            out.append(_type_invalid(path, x, "%s in body must be of type %s: %s" % (name, s["format"], go_quote(x))))
    # 5. number
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        if "multipleOf" in s and s["multipleOf"]:
            m = s["multipleOf"]
            q = x / m
            if abs(q - round(q)) > 1e-9:
                out.append(_invalid(path, x, "%s in body should be a multiple of %s" % (name, _bound_v(m, x))))
        if "minimum" in s:
            mn, excl = s["minimum"], s.get("exclusiveMinimum")
            if x < mn or (excl and x == mn):
                out.append(_invalid(path, x, "%s in body should be greater than %s%s" % (
                    name, "" if excl else "or equal to ", _bound_v(mn, x))))
        if "maximum" in s:
            mx, excl = s["maximum"], s.get("exclusiveMaximum")
            if x > mx or (excl and x == mx):
                out.append(_invalid(path, x, "%s in body should be less than %s%s" % (
                    name, "" if excl else "or equal to ", _bound_v(mx, x))))
    # 6. array
    if isinstance(x, list):
        it = _items(s)
        if it is not None:
            keyed = s.get("x-kubernetes-list-type") == "map" and s.get("x-kubernetes-list-map-keys")
            for i, v in enumerate(x):
                o = MISSING
                if keyed and isinstance(old, list) and isinstance(v, dict):
                    keys = s["x-kubernetes-list-map-keys"]
                    for ov in old:
                        if isinstance(ov, dict) and all(ov.get(k) == v.get(k) for k in keys):
                            o = ov
                            break
                _validate(v, it, "%s[%d]" % (path, i), o, out)
        if "minItems" in s and len(x) < int(s["minItems"]):
            out.append(_invalid(path, len(x), "%s in body should have at least %d items" % (name, int(s["minItems"]))))
        if "maxItems" in s and len(x) > int(s["maxItems"]):
            out.append(Cause(path, "FieldValueTooMany", "Too many: %d: must have at most %d items" % (len(x), int(s["maxItems"]))))
        if s.get("uniqueItems"):
            seen = set()
            for v in x:
                k = json.dumps(v, sort_keys=True)
                if k in seen:
                    out.append(_invalid(path, "", "%s in body shouldn't contain duplicates" % name))
                    break
                seen.add(k)
        if s.get("x-kubernetes-list-type") == "set":
            seen = set()
            for i, v in enumerate(x):
                k = json.dumps(v, sort_keys=True)
                if k in seen:
                    out.append(Cause("%s[%d]" % (path, i), "FieldValueDuplicate", "Duplicate value: %s" % field_value(v)))
                seen.add(k)
    # 7. enum
    if "enum" in s and s["enum"]:
        if not any(_enum_eq(x, e) for e in s["enum"]):
            out.append(_not_supported(path, x, s["enum"]))
    # 8. object
    if isinstance(x, dict):
        if "maxProperties" in s and len(x) > int(s["maxProperties"]):
            out.append(Cause(path, "FieldValueTooMany", "Too many: %d: must have at most %d items" % (len(x), int(s["maxProperties"]))))
        if "minProperties" in s and len(x) < int(s["minProperties"]):
            out.append(_invalid(path, len(x), "%s in body should have at least %d properties" % (name, int(s["minProperties"]))))
        props, addl = _props(s), _addl(s)
        if addl is not None:
            for k in sorted(x):
                if k not in props:
                    _validate(x[k], addl, _join(path, k), old.get(k, MISSING) if isinstance(old, dict) else MISSING, out)
        for k in sorted(props):
            if path == "" and k == "metadata":
                continue  # metadata is validated as ObjectMeta, not by the schema
            if k in x:
                _validate(x[k], props[k], _join(path, k), old.get(k, MISSING) if isinstance(old, dict) else MISSING, out)
        for k in s.get("required") or []:
            if k not in x:
                out.append(Cause(_join(path, k), "FieldValueRequired", "Required value"))


def _enum_eq(x, e):
    if isinstance(x, bool) or isinstance(e, bool):
        return type(x) is type(e) and x == e
    if isinstance(x, (int, float)) and isinstance(e, (int, float)):
        return x == e
    return _deep_equal(x, e)


def _not_supported(path, value, enum):
    vals = []
    for e in enum:
        if isinstance(e, str):
            vals.append(go_quote(e))
        else:
            vals.append(go_quote(json.dumps(e, separators=(",", ":"))))
    return Cause(path, "FieldValueNotSupported", "Unsupported value: %s: supported values: %s" % (
        field_value(value), ", ".join(vals)))


def _junctors(x, s, path, out):
    def errs(sub):
        o = []
        _validate(x, sub, path, MISSING, o)
        return o
    for sub in s.get("allOf") or []:
        out.extend(errs(sub))
    alts = s.get("anyOf") or []
    if alts:
        results = [errs(sub) for sub in alts]
        if not any(not r for r in results):
            out.append(Cause("", "FieldValueInvalid", 'Invalid value: "": %s must validate at least one schema (anyOf)' % go_quote(path)))
            out.extend(min(results, key=len))
    alts = s.get("oneOf") or []
    if alts:
        results = [errs(sub) for sub in alts]
        n = sum(1 for r in results if not r)
        if n != 1:
            extra = "Found none valid" if n == 0 else "Found %d valid alternatives" % n
            out.append(Cause("", "FieldValueInvalid", 'Invalid value: "": %s must validate one and only one schema (oneOf). %s' % (go_quote(path), extra)))
            if n == 0:
                out.extend(min(results, key=len))
    if isinstance(s.get("not"), dict) and not errs(s["not"]):
        out.append(Cause("", "FieldValueInvalid", 'Invalid value: "": %s must not validate the schema (not)' % go_quote(path)))


# ----------------------------------------------------------------------------- ObjectMeta

_META_STR = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion")
_OWNER_REF = {"apiVersion": "string", "kind": "string", "name": "string", "uid": "string",
              "controller": "bool", "blockOwnerDeletion": "bool"}
_MANAGED = {"manager": "string", "operation": "string", "apiVersion": "string", "time": "time",
            "fieldsType": "string", "fieldsV1": "any", "subresource": "string"}


class DecodeError(ValueError):
    """A non-strict decoding error (the request is rejected, 400 on create/update)."""


def _jkind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def type_error(v, struct, field, gotype):
    return DecodeError("json: cannot unmarshal %s into Go struct field %s.%s of type %s" % (_jkind(v), struct, field, gotype))


def coerce_metadata(obj, typed_prefix="metadata."):
    """Round-trip obj["metadata"] through metav1.ObjectMeta: unknown fields are dropped and their
    paths returned ("metadata.foo"); wrong types raise DecodeError with encoding/json's message;
    timestamps are parsed (gotime.GoTimeError) and re-rendered as the server writes them.
    typed_prefix is "metadata." when decoding a typed object and "" for a custom resource
    (whose metadata is decoded on its own)."""
    meta = obj.get("metadata", MISSING)
    if meta is MISSING or meta is None:
        return []
    if not isinstance(meta, dict):
        if typed_prefix:
            raise DecodeError("json: cannot unmarshal %s into Go struct field %s of type v1.ObjectMeta" % (_jkind(meta), "metadata"))
        raise DecodeError("json: cannot unmarshal %s into Go value of type v1.ObjectMeta" % _jkind(meta))
    unknown = []
    tp = typed_prefix

    def fld(k):
        return tp + k
    for k in list(meta):
        v = meta[k]
        if k in _META_STR:
            if v is not None and not isinstance(v, str):
                raise type_error(v, "ObjectMeta", fld(k), "string")
        elif k == "generation" or k == "deletionGracePeriodSeconds":
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise type_error(v, "ObjectMeta", fld(k), "int64")
            if isinstance(v, float):
                if not v.is_integer():
                    raise DecodeError("json: cannot unmarshal number %s into Go struct field ObjectMeta.%s of type int64" % (go_float(v), fld(k)))
                meta[k] = int(v)
        elif k in ("creationTimestamp", "deletionTimestamp"):
            if v is None:
                continue
            if not isinstance(v, str):
                raise type_error(v, "ObjectMeta", fld(k), "string")
            dt, _ns = gotime.parse(gotime.RFC3339, v)
            meta[k] = gotime.format_time(dt)
        elif k in ("labels", "annotations"):
            if v is None:
                continue
            if not isinstance(v, dict):
                raise type_error(v, "ObjectMeta", fld(k), "map[string]string")
            for lv in v.values():
                if not isinstance(lv, str):
                    raise type_error(lv, "ObjectMeta", fld(k), "string")
        elif k == "finalizers":
            if v is None:
                continue
            if not isinstance(v, list):
                raise type_error(v, "ObjectMeta", fld(k), "[]string")
            for f in v:
                if not isinstance(f, str):
                    raise type_error(f, "ObjectMeta", fld(k), "string")
        elif k in ("ownerReferences", "managedFields"):
            if v is None:
                continue
            if not isinstance(v, list):
                raise type_error(v, "ObjectMeta", fld(k), "[]v1.OwnerReference" if k == "ownerReferences" else "[]v1.ManagedFieldsEntry")
            spec = _OWNER_REF if k == "ownerReferences" else _MANAGED
            struct = "OwnerReference" if k == "ownerReferences" else "ManagedFieldsEntry"
            for i, e in enumerate(v):
                if not isinstance(e, dict):
                    raise type_error(e, "ObjectMeta", fld(k), "v1." + struct)
                for ek in list(e):
                    t = spec.get(ek)
                    ev = e[ek]
                    if t is None:
                        unknown.append("metadata.%s[%d].%s" % (k, i, ek))
                        del e[ek]
                    elif ev is None or t == "any":
                        continue
                    elif t == "string" and not isinstance(ev, str):
                        raise type_error(ev, struct, "%s[%d].%s" % (fld(k), i, ek) if False else fld(k) + "." + ek, "string")
                    elif t == "bool" and not isinstance(ev, bool):
                        raise type_error(ev, struct, fld(k) + "." + ek, "bool")
                    elif t == "time":
                        if not isinstance(ev, str):
                            raise type_error(ev, struct, fld(k) + "." + ek, "string")
                        dt, _ns = gotime.parse(gotime.RFC3339, ev)
                        e[ek] = gotime.format_time(dt)
        else:
            unknown.append("metadata." + k)
            del meta[k]
    return unknown


def new_uid():
    return str(uuidlib.uuid4())
