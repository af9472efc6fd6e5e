/*
 * AdmissionReview (admission.k8s.io/v1) codec. Decoding type-checks every
 * field it exposes and names the field in err; encoding builds exactly the
 * shape VerifyAdmissionResponse accepts (kubernetes-api.md §2.3-2.4).
 */
#include "core/admission.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/xalloc.h"

#define API_VERSION "admission.k8s.io/v1"
#define KIND "AdmissionReview"
#define WARNING_MAX 256 /* bytes; the apiserver truncates at 256 runes */

static void request_reset(struct admission_request *req)
{
    req->root = NULL;
    req->uid = "";
    req->operation = "";
    req->namespace = "";
    req->name = "";
    req->kind = "";
    req->group = "";
    req->resource = "";
    req->sub_resource = "";
    req->dry_run = false;
    req->object = NULL;
    req->old_object = NULL;
    req->wide_numbers = false;
}

void admission_request_cleanup(struct admission_request *req)
{
    if (!req)
        return;
    json_decref(req->root);
    request_reset(req);
}

/* An optional string member: absent or null -> "", string -> it, else MM_ERR_TYPE. */
static enum mm_status opt_string(const json_t *obj, const char *key, const char *field,
                                 const char **out, struct mm_error *err) MM_WUR;
static enum mm_status opt_string(const json_t *obj, const char *key, const char *field,
                                 const char **out, struct mm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        *out = "";
        return MM_OK;
    }
    if (!json_is_string(v))
        return mm_error_set(err, MM_ERR_TYPE, field, "must be a string");
    *out = json_string_value(v);
    return MM_OK;
}

/* An optional object member: absent or null -> NULL, object -> it, else MM_ERR_TYPE. */
static enum mm_status opt_object(const json_t *obj, const char *key, const char *field,
                                 json_t **out, struct mm_error *err) MM_WUR;
static enum mm_status opt_object(const json_t *obj, const char *key, const char *field,
                                 json_t **out, struct mm_error *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return MM_OK;
    if (!json_is_object(v))
        return mm_error_set(err, MM_ERR_TYPE, field, "must be an object");
    *out = v;
    return MM_OK;
}

/* A required string member with an exact value. */
static enum mm_status want_string(const json_t *obj, const char *key, const char *want,
                                  struct mm_error *err) MM_WUR;
static enum mm_status want_string(const json_t *obj, const char *key, const char *want,
                                  struct mm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return mm_error_set(err, MM_ERR_TYPE, key, "missing; want \"%s\"", want);
    if (!json_is_string(v))
        return mm_error_set(err, MM_ERR_TYPE, key, "must be a string; want \"%s\"", want);
    if (strcmp(json_string_value(v), want) != 0)
        return mm_error_set(err, MM_ERR_TYPE, key, "unsupported value \"%.100s\"; want \"%s\"",
                            json_string_value(v), want);
    return MM_OK;
}

/* ---- bodies jansson refuses --------------------------------------------------- */

struct scan {
    const char *p;
    const char *end;
};

static void scan_ws(struct scan *s);
static bool scan_string(struct scan *s, bool *escaped);
static bool scan_value(struct scan *s);
static bool plain_uid(const char *tok, size_t len);

/* An integer literal (-?[0-9]+) whose value is outside int64. */
static bool int64_overflow(const char *tok, size_t n)
{
    bool neg = n > 0 && tok[0] == '-';
    const char *d = tok + neg;
    size_t digits = n - neg;
    if (digits == 0)
        return false;
    for (size_t i = 0; i < digits; i++)
        if (d[i] < '0' || d[i] > '9')
            return false; /* a fraction or an exponent: a real already */
    const char *limit = neg ? "9223372036854775808" : "9223372036854775807";
    return digits > 19 || (digits == 19 && memcmp(d, limit, 19) > 0);
}

/*
 * The body with ".0" after every integer literal outside int64, so jansson
 * reads those as reals and every other number exactly as before (what the
 * API server's decoder does: int64 when it fits, float64 otherwise). NULL
 * when there is no such literal. Caller frees.
 */
static char *widen_integers(const char *body, size_t len, size_t *out_len)
{
    size_t count = 0;
    char *out = NULL;
    size_t o = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < len;) {
            char c = body[i];
            if (c == '"') { /* copy a string whole */
                size_t j = i + 1;
                while (j < len && body[j] != '"')
                    j += body[j] == '\\' ? 2 : 1;
                j = j < len ? j + 1 : len;
                if (out) {
                    memcpy(out + o, body + i, j - i);
                    o += j - i;
                }
                i = j;
                continue;
            }
            if (c == '-' || (c >= '0' && c <= '9')) {
                size_t j = i;
                while (j < len && body[j] && strchr("+-0123456789.eE", body[j]))
                    j++;
                bool wide = int64_overflow(body + i, j - i);
                if (out) {
                    memcpy(out + o, body + i, j - i);
                    o += j - i;
                    if (wide) {
                        memcpy(out + o, ".0", 2);
                        o += 2;
                    }
                } else if (wide) {
                    count++;
                }
                i = j;
                continue;
            }
            if (out)
                out[o++] = c;
            i++;
        }
        if (pass == 0) {
            if (count == 0)
                return NULL;
            out = xmalloc(len + 2 * count + 1);
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Whether v holds a number widened from an integer beyond int64 (an integral real outside it). */
static bool holds_wide_integer(const json_t *v)
{
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d == floor(d) && (d >= 9223372036854775808.0 || d < -9223372036854775808.0);
    }
    const char *key;
    size_t i;
    json_t *child;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, child)
        {
            if (holds_wide_integer(child))
                return true;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child)
        {
            if (holds_wide_integer(child))
                return true;
        }
    }
    return false;
}

/* What a scan of the envelope found (all offsets into the scanned buffer). */
struct envelope {
    bool api_ok, kind_ok, seen_api, seen_kind, seen_request, seen_uid, seen_object;
    const char *uid; /* the token without quotes */
    size_t uid_len;
    size_t object_start, object_end;
    const char *base;
};

static bool token_is(const char *start, const char *end, const char *want)
{
    size_t n = strlen(want);
    return (size_t)(end - start) == n + 2 && memcmp(start + 1, want, n) == 0;
}

/* Members of the object at s->p, each handed to fn (which consumes the value). */
static bool scan_members(struct scan *s, bool (*fn)(struct scan *, const char *, size_t, void *),
                         void *ctx)
{
    scan_ws(s);
    if (s->p >= s->end || *s->p != '{')
        return false;
    s->p++;
    scan_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        scan_ws(s);
        const char *key = s->p + 1;
        bool esc;
        if (!scan_string(s, &esc) || esc)
            return false; /* an escaped key could alias a name we look for */
        size_t klen = (size_t)(s->p - key - 1);
        scan_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        scan_ws(s);
        if (!fn(s, key, klen, ctx))
            return false;
        scan_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return true;
        }
        return false;
    }
}

static bool key_is(const char *key, size_t klen, const char *want)
{
    return klen == strlen(want) && memcmp(key, want, klen) == 0;
}

static bool on_request_member(struct scan *s, const char *key, size_t klen, void *ctx)
{
    struct envelope *e = ctx;
    if (key_is(key, klen, "uid")) {
        const char *start = s->p;
        bool esc;
        if (e->seen_uid || !scan_string(s, &esc) || esc ||
            !plain_uid(start + 1, (size_t)(s->p - start - 2)))
            return false;
        e->seen_uid = true;
        e->uid = start + 1;
        e->uid_len = (size_t)(s->p - start - 2);
        return true;
    }
    if (key_is(key, klen, "object")) {
        if (e->seen_object)
            return false;
        e->seen_object = true;
        e->object_start = (size_t)(s->p - e->base);
        bool ok = scan_value(s);
        e->object_end = (size_t)(s->p - e->base);
        return ok;
    }
    return scan_value(s);
}

static bool on_top_member(struct scan *s, const char *key, size_t klen, void *ctx)
{
    struct envelope *e = ctx;
    const char *start = s->p;
    if (key_is(key, klen, "apiVersion") || key_is(key, klen, "kind")) {
        bool api = key[0] == 'a';
        if ((api ? e->seen_api : e->seen_kind) || !scan_value(s))
            return false;
        if (api) {
            e->seen_api = true;
            e->api_ok = *start == '"' && token_is(start, s->p, "admission.k8s.io/v1");
        } else {
            e->seen_kind = true;
            e->kind_ok = *start == '"' && token_is(start, s->p, "AdmissionReview");
        }
        return true;
    }
    if (key_is(key, klen, "request")) {
        if (e->seen_request)
            return false;
        e->seen_request = true;
        return scan_members(s, on_request_member, e);
    }
    return scan_value(s);
}

/*
 * jansson refused the body. Integers beyond int64 are read as reals
 * (widen_integers); any other failure inside request.object of an
 * otherwise sound envelope is reported at "request.object" with the uid
 * kept; the rest is malformed JSON.
 */
static enum mm_status decode_failed(const char *body, size_t len, json_error_t *jerr,
                                    struct admission_request *req, struct mm_error *err)
{
    char *wide = NULL;
    size_t wide_len = 0;
    const char *text = body;
    size_t text_len = len;
    if (json_error_code(jerr) == json_error_numeric_overflow &&
        (wide = widen_integers(body, len, &wide_len)) != NULL) {
        req->root = json_loadb(wide, wide_len, JSON_DECODE_ANY, jerr);
        if (req->root) {
            free(wide);
            req->wide_numbers = true;
            return MM_OK;
        }
        text = wide; /* the error positions are in this buffer */
        text_len = wide_len;
    }
    enum mm_status rc = MM_ERR_PARSE;
    struct envelope e = {.base = text};
    struct scan s = {text, text + text_len};
    bool sound = scan_members(&s, on_top_member, &e);
    scan_ws(&s);
    size_t pos = jerr->position > 0 ? (size_t)jerr->position : 0;
    if (sound && s.p == s.end && e.api_ok && e.kind_ok && e.seen_uid && e.seen_object &&
        pos >= e.object_start && pos <= e.object_end) {
        req->root = json_pack("{s:s,s:s,s:{s:s%}}", "apiVersion", API_VERSION, "kind", KIND,
                              "request", "uid", e.uid, e.uid_len);
        req->uid = json_string_value(json_object_get(json_object_get(req->root, "request"), "uid"));
        rc = mm_error_set(err, MM_ERR_PARSE, "request.object",
                          "cannot be decoded: %s at line %d column %d", jerr->text, jerr->line,
                          jerr->column);
    } else {
        rc = mm_error_set(err, MM_ERR_PARSE, "", "invalid JSON at line %d column %d: %s",
                          jerr->line, jerr->column, jerr->text);
    }
    free(wide);
    return rc;
}

enum mm_status admission_decode(const char *body, size_t len, struct admission_request *req,
                                struct mm_error *err)
{
    enum mm_status rc;
    json_error_t jerr;
    json_t *request = NULL;
    json_t *gvk = NULL;

    request_reset(req);
    mm_error_clear(err);
    if (len > ADMISSION_MAX_BODY)
        return mm_error_set(err, MM_ERR_TOO_BIG, "",
                            "request body is %zu bytes, over the %u-byte limit", len,
                            ADMISSION_MAX_BODY);
    if (!body || len == 0)
        return mm_error_set(err, MM_ERR_PARSE, "", "empty request body");

    req->root = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (!req->root && (rc = decode_failed(body, len, &jerr, req, err)) != MM_OK)
        return rc;
    if (!json_is_object(req->root))
        return mm_error_set(err, MM_ERR_TYPE, "", "an AdmissionReview must be a JSON object");

    /* Read the uid first so that every later error can still be answered. */
    request = json_object_get(req->root, "request");
    const json_t *uid = json_object_get(request, "uid");
    if (json_is_string(uid))
        req->uid = json_string_value(uid);

    if ((rc = want_string(req->root, "apiVersion", API_VERSION, err)) != MM_OK)
        return rc;
    if ((rc = want_string(req->root, "kind", KIND, err)) != MM_OK)
        return rc;
    if (request == NULL || json_is_null(request))
        return mm_error_set(err, MM_ERR_TYPE, "request", "missing");
    if (!json_is_object(request))
        return mm_error_set(err, MM_ERR_TYPE, "request", "must be an object");
    if (uid == NULL || json_is_null(uid))
        return mm_error_set(err, MM_ERR_TYPE, "request.uid", "missing");
    if (!json_is_string(uid))
        return mm_error_set(err, MM_ERR_TYPE, "request.uid", "must be a string");
    if (req->uid[0] == '\0')
        return mm_error_set(err, MM_ERR_TYPE, "request.uid", "must not be empty");

    if ((rc = opt_string(request, "operation", "request.operation", &req->operation, err)) ||
        (rc = opt_string(request, "namespace", "request.namespace", &req->namespace, err)) ||
        (rc = opt_string(request, "name", "request.name", &req->name, err)) ||
        (rc = opt_string(request, "subResource", "request.subResource", &req->sub_resource, err)))
        return rc;

    if ((rc = opt_object(request, "kind", "request.kind", &gvk, err)) ||
        (rc = opt_string(gvk, "kind", "request.kind.kind", &req->kind, err)) ||
        (rc = opt_string(gvk, "group", "request.kind.group", &req->group, err)))
        return rc;
    if ((rc = opt_object(request, "resource", "request.resource", &gvk, err)) ||
        (rc = opt_string(gvk, "resource", "request.resource.resource", &req->resource, err)))
        return rc;

    const json_t *dry = json_object_get(request, "dryRun");
    if (dry != NULL && !json_is_null(dry)) {
        if (!json_is_boolean(dry))
            return mm_error_set(err, MM_ERR_TYPE, "request.dryRun", "must be a boolean");
        req->dry_run = json_is_true(dry);
    }

    if ((rc = opt_object(request, "object", "request.object", &req->object, err)) ||
        (rc = opt_object(request, "oldObject", "request.oldObject", &req->old_object, err)))
        return rc;
    /*
     * The API server keeps an integer beyond int64 only in a custom resource
     * (unstructured, as a float64); a built-in type such as a Pod has no field
     * that can hold one, so the API server could not have decoded the object:
     * it is not what a cluster sends. (Checked only after widening, so the
     * common path never walks the object.)
     */
    if (req->wide_numbers && strcmp(req->group, "kuma.io") != 0 &&
        (holds_wide_integer(req->object) || holds_wide_integer(req->old_object)))
        return mm_error_set(err, MM_ERR_PARSE, "request.object",
                            "holds an integer beyond int64, which no field of a %s can hold "
                            "(the API server keeps such numbers only in custom resources)",
                            req->kind[0] ? req->kind : "built-in object");
    return MM_OK;
}

/*
 * A JSON string of at most max bytes of s, cut on a UTF-8 boundary; bytes
 * that are not valid UTF-8 become '?' so the result always encodes.
 */
static json_t *utf8_string(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) {
        json_t *v = json_stringn(s, n);
        if (v)
            return v; /* valid UTF-8, the common case */
    }
    char *out = xmalloc((n < max ? n : max) + 1);
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned char ch = p[i];
        size_t clen = ch < 0x80             ? 1
                      : (ch & 0xE0) == 0xC0 ? 2
                      : (ch & 0xF0) == 0xE0 ? 3
                      : (ch & 0xF8) == 0xF0 ? 4
                                            : 0;
        bool valid = clen > 0 && i + clen <= n;
        for (size_t j = 1; valid && j < clen; j++)
            valid = (p[i + j] & 0xC0) == 0x80;
        if (valid && clen > 1) {
            /* No overlong forms, surrogates or code points past U+10FFFF. */
            unsigned cp = clen == 2 ? (ch & 0x1Fu) : clen == 3 ? (ch & 0x0Fu) : (ch & 0x07u);
            for (size_t j = 1; j < clen; j++)
                cp = cp << 6 | (p[i + j] & 0x3Fu);
            valid = !(clen == 2 && cp < 0x80) && !(clen == 3 && cp < 0x800) &&
                    !(clen == 4 && cp < 0x10000) && cp <= 0x10FFFF &&
                    !(cp >= 0xD800 && cp <= 0xDFFF);
        }
        if (!valid)
            clen = 1;
        if (o + clen > max)
            break;
        if (valid) {
            memcpy(out + o, p + i, clen);
        } else {
            out[o] = '?';
        }
        o += clen;
        i += clen;
    }
    json_t *v = json_stringn(out, o);
    free(out);
    return v;
}

static json_t *any_string(const char *s)
{
    return utf8_string(s ? s : "", (size_t)-1);
}

static json_t *warnings_json(const struct violations *w)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < w->len; i++) {
        const struct violation *v = &w->items[i];
        char *text = v->field && v->field[0] ? xasprintf("%s: %s", v->field, v->message)
                                             : xstrdup(v->message ? v->message : "");
        json_array_append_new(arr, utf8_string(text, WARNING_MAX));
        free(text);
    }
    return arr;
}

static json_t *status_json(const struct admission_response *resp)
{
    json_t *st = json_object();
    json_object_set_new(st, "code", json_integer(resp->code >= 400 ? resp->code : 400));
    if (resp->reason && resp->reason[0])
        json_object_set_new(st, "reason", any_string(resp->reason));
    if (resp->message && resp->message[0])
        json_object_set_new(st, "message", any_string(resp->message));
    json_object_set_new(st, "status", json_string("Failure"));
    if (resp->causes && resp->causes->len > 0) {
        json_t *causes = json_array();
        for (size_t i = 0; i < resp->causes->len; i++) {
            const struct violation *v = &resp->causes->items[i];
            json_t *c = json_object();
            json_object_set_new(c, "type", json_string("FieldValueInvalid"));
            if (v->field && v->field[0])
                json_object_set_new(c, "field", any_string(v->field));
            json_object_set_new(c, "message", any_string(v->message));
            json_array_append_new(causes, c);
        }
        json_t *details = json_pack("{s:o}", "causes", causes);
        if (resp->details_name && resp->details_name[0])
            json_object_set_new(details, "name", any_string(resp->details_name));
        if (resp->details_kind && resp->details_kind[0])
            json_object_set_new(details, "kind", any_string(resp->details_kind));
        json_object_set_new(st, "details", details);
    }
    return st;
}

/*
 * Encode the response review. resp->patch is sent only when allowed and a
 * non-empty array (anything else would make the apiserver fail the call).
 * All strings are made valid UTF-8. Returns a new string; caller frees.
 */
/*
 * The common answer, allowed with at most a patch, written directly: it is
 * on every pod's admission path and saves building and dumping a tree.
 */
static char *encode_allowed(const struct admission_response *resp)
{
    json_t *uid = any_string(resp->uid);
    char *uid_text = json_dumps(uid, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(uid);
    char *patch_text = NULL, *b64 = NULL;
    if (json_is_array(resp->patch) && json_array_size(resp->patch) > 0)
        patch_text = json_dumps(resp->patch, JSON_COMPACT);
    if (patch_text)
        b64 = base64_encode(patch_text, strlen(patch_text));
    char *out = xasprintf("{\"apiVersion\":\"" API_VERSION "\",\"kind\":\"" KIND
                          "\",\"response\":{\"uid\":%s,\"allowed\":true%s%s%s}}",
                          uid_text ? uid_text : "\"\"",
                          b64 ? ",\"patchType\":\"JSONPatch\",\"patch\":\"" : "", b64 ? b64 : "",
                          b64 ? "\"" : "");
    free(uid_text);
    free(patch_text);
    free(b64);
    return out;
}

char *admission_encode(const struct admission_response *resp)
{
    if (resp->allowed && !(resp->warnings && resp->warnings->len > 0))
        return encode_allowed(resp);
    json_t *root = json_object();
    json_t *r = json_object();
    json_object_set_new(root, "apiVersion", json_string(API_VERSION));
    json_object_set_new(root, "kind", json_string(KIND));

    json_object_set_new(r, "uid", any_string(resp->uid));
    json_object_set_new(r, "allowed", json_boolean(resp->allowed));
    if (resp->allowed && json_is_array(resp->patch) && json_array_size(resp->patch) > 0) {
        char *text = json_dumps(resp->patch, JSON_COMPACT);
        if (text) {
            char *b64 = base64_encode(text, strlen(text));
            json_object_set_new(r, "patchType", json_string("JSONPatch"));
            json_object_set_new(r, "patch", json_string_nocheck(b64));
            free(b64);
            free(text);
        }
    }
    if (resp->warnings && resp->warnings->len > 0)
        json_object_set_new(r, "warnings", warnings_json(resp->warnings));
    if (!resp->allowed)
        json_object_set_new(r, "status", status_json(resp));
    json_object_set_new(root, "response", r);

    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

/* ---- scanning for request.uid without a tree ---------------------------- */

static void scan_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Skip a string token; *escaped tells whether it held a backslash. */
static bool scan_string(struct scan *s, bool *escaped)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    *escaped = false;
    for (s->p++; s->p < s->end; s->p++) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            *escaped = true;
            if (++s->p >= s->end)
                return false;
        }
    }
    return false;
}

/* Skip any value: nesting is counted, strings are skipped whole. */
static bool scan_value(struct scan *s)
{
    scan_ws(s);
    if (s->p >= s->end)
        return false;
    bool esc;
    if (*s->p == '"')
        return scan_string(s, &esc);
    if (*s->p != '{' && *s->p != '[') {
        const char *start = s->p;
        while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' &&
               *s->p != '\n' && *s->p != '\r' && *s->p != '\t')
            s->p++;
        return s->p > start;
    }
    size_t depth = 0;
    while (s->p < s->end) {
        char c = *s->p;
        if (c == '"') {
            if (!scan_string(s, &esc))
                return false;
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (depth == 0)
                return false;
            if (--depth == 0) {
                s->p++;
                return true;
            }
        }
        s->p++;
    }
    return false;
}

/*
 * Walk the members of the object at s->p. For the member named want, call
 * on_member (when set) at its value; other values are skipped. Fails on
 * escaped keys and on a second member named want.
 */
static bool scan_object(struct scan *s, const char *want,
                        bool (*on_member)(struct scan *s, void *ctx), void *ctx)
{
    scan_ws(s);
    if (s->p >= s->end || *s->p != '{')
        return false;
    s->p++;
    bool seen = false;
    scan_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        scan_ws(s);
        const char *key = s->p + 1;
        bool esc;
        if (!scan_string(s, &esc) || esc)
            return false;
        size_t klen = (size_t)(s->p - key - 1);
        scan_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        scan_ws(s);
        if (klen == strlen(want) && !memcmp(key, want, klen)) {
            if (seen || !on_member(s, ctx))
                return false;
            seen = true;
        } else if (!scan_value(s)) {
            return false;
        }
        scan_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return seen || !on_member;
        }
        return false;
    }
}

/* A uid made only of [A-Za-z0-9._:-] (Kubernetes uids are UUIDs), not empty. */
static bool plain_uid(const char *tok, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = tok[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == ':'))
            return false;
    }
    return len > 0;
}

struct uid_span {
    const char *base;
    size_t off;
    size_t len;
    bool found;
};

static bool on_uid(struct scan *s, void *ctx)
{
    struct uid_span *u = ctx;
    const char *start = s->p;
    bool esc;
    if (!scan_string(s, &esc) || esc || !plain_uid(start + 1, (size_t)(s->p - start - 2)))
        return false;
    u->off = (size_t)(start - u->base);
    u->len = (size_t)(s->p - start);
    u->found = true;
    return true;
}

static bool on_request(struct scan *s, void *ctx)
{
    return scan_object(s, "uid", on_uid, ctx);
}

bool admission_scan_uid(const char *body, size_t len, size_t *off, size_t *tok_len)
{
    struct scan s = {body, body + len};
    struct uid_span u = {.base = body};
    if (!scan_object(&s, "request", on_request, &u) || !u.found)
        return false;
    scan_ws(&s);
    if (s.p != s.end)
        return false;
    *off = u.off;
    *tok_len = u.len;
    return true;
}
