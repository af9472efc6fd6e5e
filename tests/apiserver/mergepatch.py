"""JSON merge patch (RFC 7386) and a strategic merge patch for built-in kinds.

The strategic merge patch covers what kubectl and controllers send in practice:
lists merged by their patchMergeKey (containers/volumes/env by ``name``,
container ports by ``containerPort``, service ports by ``port``, ...),
``metadata.finalizers`` merged as a set, the ``$patch`` directive
(``replace``/``delete``/``merge``), ``$setElementOrder/<list>``,
``$deleteFromPrimitiveList/<list>`` and ``$retainKeys``.
"""
import copy

# field name -> merge key. "ports" is resolved by looking at the items.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "imagePullSecrets": "name", "hostAliases": "ip",
    "conditions": "type", "ownerReferences": "uid", "webhooks": "name",
    "resourceClaims": "name", "readinessGates": None,
}
PRIMITIVE_MERGE = {"finalizers"}


class PatchConflict(Exception):
    pass


def merge_patch(orig, patch):
    """RFC 7386: null deletes, objects merge recursively, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    res = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if v is None:
            res.pop(k, None)
        else:
            res[k] = merge_patch(res.get(k), v)
    return res


def _ports_key(items):
    for it in items:
        if isinstance(it, dict):
            if "containerPort" in it:
                return "containerPort"
            if "port" in it:
                return "port"
    return None


def _merge_key(field, orig_list, patch_list):
    if field == "ports":
        return _ports_key(list(patch_list) + list(orig_list or []))
    return MERGE_KEYS.get(field)


def _strip(v):
    """Remove directives from a value that is added as-is."""
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items()
                if not k.startswith("$") and x is not None}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def strategic_merge(orig, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip(patch)
    if directive == "delete":
        return None
    res = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            res.pop(k, None)
            continue
        cur = res.get(k)
        if isinstance(v, list):
            if k in PRIMITIVE_MERGE:
                base = list(cur) if isinstance(cur, list) else []
                for x in v:
                    if x not in base:
                        base.append(x)
                res[k] = base
                continue
            key = _merge_key(k, cur if isinstance(cur, list) else [], v)
            if key:
                res[k] = _merge_list(cur if isinstance(cur, list) else [], v, key)
            else:
                res[k] = [_strip(x) for x in v if not (isinstance(x, dict) and x.get("$patch"))]
            continue
        if isinstance(v, dict):
            if v.get("$patch") == "delete":
                res.pop(k, None)
                continue
            res[k] = strategic_merge(cur, v)
            continue
        res[k] = v
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            if isinstance(res.get(f), list):
                res[f] = [x for x in res[f] if x not in v]
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            f = k.split("/", 1)[1]
            if isinstance(res.get(f), list) and isinstance(v, list):
                res[f] = _reorder(res[f], v, f)
    if isinstance(retain, list):
        res = {k: x for k, x in res.items() if k in retain}
    return res


def _merge_list(orig, patch, key):
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip(x) for x in patch if not (isinstance(x, dict) and x.get("$patch"))]
    res = copy.deepcopy(orig)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            res.append(_strip(item))
            continue
        idx = next((i for i, o in enumerate(res)
                    if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del res[idx]
            continue
        if idx is None:
            res.append(_strip(item))
        else:
            res[idx] = strategic_merge(res[idx], item)
    return res


def _reorder(items, order, field):
    if not order:
        return items
    if isinstance(order[0], dict):
        key = next(iter(order[0].keys()), None)
        ordkeys = [o.get(key) for o in order if isinstance(o, dict)]
        getk = lambda it: it.get(key) if isinstance(it, dict) else None
    else:
        ordkeys = list(order)
        getk = lambda it: it
    ranked = [it for k in ordkeys for it in items if getk(it) == k]
    rest = [it for it in items if getk(it) not in ordkeys]
    return ranked + rest
