/*
 * MeshMetric model: structural (CRD) checks, Kuma v2.14.3's validator with
 * its exact messages and paths, the operator's decisions (kuma-metrics.md
 * §10), warnings, schema defaults, and hostile input.
 *
 * Cases are tables of {input, expected joined errors, expected joined
 * warnings}; the docs' examples are fixtures in tests/data/meshmetric/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/meshmetric.h"
#include "core/violations.h"
#include "util/fileio.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

/* Kuma's validator alone (src/core/meshmetric.c; not in the public header). */
bool meshmetric_validate_kuma(json_t *meshmetric, bool system, struct violations *errs,
                              struct violations *warnings);

/* ---- helpers ---- */



/* A MeshMetric in namespace ns with the given spec (YAML). */
static json_t *meshmetric(const char *ns, const char *spec_yaml)
{
    json_t *mm =
        json_pack("{s:s,s:s,s:{s:s,s:s}}", "apiVersion", "kuma.io/v1alpha1", "kind", "MeshMetric",
                  "metadata", "name", "mm", "namespace", ns ? ns : "kuma-demo");
    json_object_set_new(mm, "spec", tu_yaml(spec_yaml));
    return mm;
}


static json_t *load_fixture(const char *name)
{
    char *dir = tu_testdata();
    char *path = xasprintf("%s/meshmetric/%s.yaml", dir, name);
    json_t *docs = tu_load_yaml(path, true);
    free(path);
    free(dir);
    return docs;
}

static bool same(const char *got, const char *want)
{
    return want ? strcmp(got, want) == 0 : got[0] == '\0';
}

/* ---- validation tables ---- */

struct vcase {
    const char *name;
    const char *ns;       /* metadata.namespace; NULL = "kuma-demo" (a workload-owner policy) */
    const char *spec;     /* YAML of spec */
    const char *errors;   /* joined; NULL = valid */
    const char *warnings; /* joined; NULL = none */
};

#define SYS "kuma-system"
#define BACKEND0 "spec.default.backends.backend[0]"
#define OTEL0 BACKEND0 ".openTelemetry"
#define PORT_MSG "port must be a valid (1-65535)"
/* deprecated.go and TopLevelTargetRefDeprecations (v2.14.3), verbatim. */
#define DEPRECATED_ENDPOINT                                                                        \
    "openTelemetry.endpoint is deprecated, use openTelemetry.backendRef with a "                   \
    "MeshOpenTelemetryBackend resource instead"
#define DEPRECATED(kind) kind " value for 'targetRef.kind' is deprecated, use Dataplane with labels instead"
#define KINDS                                                                                      \
    "\"Mesh\", \"MeshSubset\", \"MeshGateway\", \"MeshService\", \"MeshExternalService\", "        \
    "\"MeshMultiZoneService\", \"MeshServiceSubset\", \"MeshHTTPRoute\", \"Dataplane\""

static const struct vcase structural_cases[] = {
    {"backend type not in the enum, then Kuma's message", NULL,
     "{default: {backends: [{type: Foo}]}}",
     "spec.default.backends[0].type: Unsupported value: \"Foo\": supported values: "
     "\"Prometheus\", \"OpenTelemetry\"; " BACKEND0 ": unrecognized type",
     NULL},
    {"backend type required, then Kuma's message", NULL,
     "{default: {backends: [{prometheus: {port: 1}}]}}",
     "spec.default.backends[0].type: Required value; " BACKEND0 ": unrecognized type", NULL},
    {"backend type null is absent", NULL, "{default: {backends: [{type: null}]}}",
     "spec.default.backends[0].type: Required value; " BACKEND0 ": unrecognized type", NULL},
    {"port as a string", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {port: \"string\"}}]}}",
     "spec.default.backends[0].prometheus.port: Invalid value: \"string\": "
     "spec.default.backends[0].prometheus.port in body must be of type integer: \"string\"",
     NULL},
    {"port as a fraction", NULL, "{default: {applications: [{port: 80.5}]}}",
     "spec.default.applications[0].port: Invalid value: \"number\": "
     "spec.default.applications[0].port in body must be of type integer: \"number\"",
     NULL},
    /* The CRD says only "type: integer" (format int32 is stripped by the apiserver): any
     * int64 passes it, and Kuma's webhook fails to decode it into a uint32. */
    {"negative port: Kuma's webhook cannot decode it (uint32)", NULL,
     "{default: {applications: [{port: -1}]}}",
     "spec.default.applications[0].port: json: cannot unmarshal number -1 into Go struct field "
     "Application.spec.default.applications.port of type uint32",
     NULL},
    {"port above uint32", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {port: 4294967296}}]}}",
     "spec.default.backends[0].prometheus.port: json: cannot unmarshal number 4294967296 into Go "
     "struct field PrometheusBackend.spec.default.backends.prometheus.port of type uint32",
     NULL},
    {"largest int64 port", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {port: 9223372036854775807}}]}}",
     "spec.default.backends[0].prometheus.port: json: cannot unmarshal number "
     "9223372036854775807 into Go struct field "
     "PrometheusBackend.spec.default.backends.prometheus.port of type uint32",
     NULL},
    {"uint32 edges decode; Kuma's range check follows", NULL,
     "{default: {applications: [{port: 0}, {port: 4294967295}]}}",
     "spec.default.applications.application[0]: " PORT_MSG
     "; spec.default.applications.application[1]: " PORT_MSG,
     NULL},
    {"every decode error is listed", NULL,
     "{default: {applications: [{port: -5.0}], backends: [{type: OpenTelemetry, openTelemetry: "
     "{endpoint: \"a:1\", refreshInterval: 1 minute}}, {type: Prometheus, prometheus: {port: "
     "70000000000}}]}}",
     "spec.default.applications[0].port: json: cannot unmarshal number -5 into Go struct field "
     "Application.spec.default.applications.port of type uint32; "
     "spec.default.backends[0].openTelemetry.refreshInterval: time: unknown unit \" minute\" in "
     "duration \"1 minute\"; spec.default.backends[1].prometheus.port: json: cannot unmarshal number "
     "70000000000 into Go struct field PrometheusBackend.spec.default.backends.prometheus.port "
     "of type uint32",
     NULL},
    /* Beyond int64 the apiserver decodes a float64, an integer only within 2^53. */
    {"port beyond int64 is a number", NULL,
     "{default: {applications: [{port: 99999999999999999999}]}}",
     "spec.default.applications[0].port: Invalid value: \"number\": "
     "spec.default.applications[0].port in body must be of type integer: \"number\"",
     NULL},
    {"huge negative port", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {port: -1e300}}]}}",
     "spec.default.backends[0].prometheus.port: Invalid value: \"number\": "
     "spec.default.backends[0].prometheus.port in body must be of type integer: \"number\"",
     NULL},
    {"integral real beyond 2^53 is a number", NULL,
     "{default: {applications: [{port: 9007199254740992.0}]}}",
     "spec.default.applications[0].port: Invalid value: \"number\": "
     "spec.default.applications[0].port in body must be of type integer: \"number\"",
     NULL},
    {"integral real within 2^53 is an integer", NULL,
     "{default: {applications: [{port: 9007199254740991.0}]}}",
     "spec.default.applications[0].port: json: cannot unmarshal number 9007199254740991 into Go "
     "struct field Application.spec.default.applications.port of type uint32",
     NULL},
    {"backends not an array", NULL, "{default: {backends: {type: Prometheus}}}",
     "spec.default.backends: Invalid value: \"object\": spec.default.backends in body must be of "
     "type array: \"object\"",
     NULL},
    {"null backend item", NULL, "{default: {backends: [null]}}",
     "spec.default.backends[0]: Invalid value: \"null\": spec.default.backends[0] in body must be "
     "of type object: \"null\"",
     NULL},
    {"application port required, then Kuma's message", NULL,
     "{default: {applications: [{path: /m}]}}",
     "spec.default.applications[0].port: Required value; "
     "spec.default.applications.application[0]: " PORT_MSG,
     NULL},
    {"tls mode is case-sensitive", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {tls: {mode: disabled}}}]}}",
     "spec.default.backends[0].prometheus.tls.mode: Unsupported value: \"disabled\": supported "
     "values: \"Disabled\", \"ProvidedTLS\", \"ActiveMTLSBackend\"",
     NULL},
    {"targetRef kind not in the CRD enum", NULL, "{targetRef: {kind: Foo}}",
     "spec.targetRef.kind: Unsupported value: \"Foo\": supported values: " KINDS
     "; spec.targetRef.kind: value 'Foo' is not supported",
     NULL},
    {"targetRef kind empty", NULL, "{targetRef: {kind: \"\"}}",
     "spec.targetRef.kind: Unsupported value: \"\": supported values: " KINDS
     "; spec.targetRef.kind: must be defined",
     NULL},
    {"targetRef kind required", NULL, "{targetRef: {name: web}}",
     "spec.targetRef.kind: Required value; spec.targetRef.kind: must be defined", NULL},
    {"targetRef not an object", NULL, "{targetRef: Mesh}",
     "spec.targetRef: Invalid value: \"string\": spec.targetRef in body must be of type object: "
     "\"string\"",
     NULL},
    {"proxyTypes enum", NULL, "{targetRef: {kind: Mesh, proxyTypes: [Foo]}}",
     "spec.targetRef.proxyTypes[0]: Unsupported value: \"Foo\": supported values: \"Sidecar\", "
     "\"Gateway\"",
     NULL},
    {"labels values are strings", NULL, "{targetRef: {kind: Dataplane, labels: {app: 1}}}",
     "spec.targetRef.labels.app: Invalid value: \"integer\": spec.targetRef.labels.app in body "
     "must be of type string: \"integer\"",
     NULL},
    {"selector match and type required", NULL, "{default: {sidecar: {profiles: {include: [{}]}}}}",
     "spec.default.sidecar.profiles.include[0].match: Required value; "
     "spec.default.sidecar.profiles.include[0].type: Required value; "
     "spec.default.sidecar.profiles.include[0].type: unrecognized type '' - 'Regex', 'Prefix', "
     "'Exact' are supported",
     NULL},
    {"selector type enum", NULL,
     "{default: {sidecar: {profiles: {exclude: [{type: regex, match: x}]}}}}",
     "spec.default.sidecar.profiles.exclude[0].type: Unsupported value: \"regex\": supported "
     "values: \"Prefix\", \"Regex\", \"Exact\", \"Contains\"; "
     "spec.default.sidecar.profiles.exclude[0].type: unrecognized type 'regex' - 'Regex', "
     "'Prefix', 'Exact' are supported",
     NULL},
    {"appendProfiles name required", NULL,
     "{default: {sidecar: {profiles: {appendProfiles: [{}]}}}}",
     "spec.default.sidecar.profiles.appendProfiles[0].name: Required value; "
     "spec.default.sidecar.profiles.appendProfiles[0].name: unrecognized profile name '' - "
     "'All', 'None', 'Basic' are supported",
     NULL},
    {"appendProfiles name enum", NULL,
     "{default: {sidecar: {profiles: {appendProfiles: [{name: Basic}, {name: basic}]}}}}",
     "spec.default.sidecar.profiles.appendProfiles[1].name: Unsupported value: \"basic\": "
     "supported values: \"All\", \"Basic\", \"None\"; "
     "spec.default.sidecar.profiles.appendProfiles[1].name: unrecognized profile name 'basic' - "
     "'All', 'None', 'Basic' are supported",
     NULL},
    {"backendRef kind enum", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {kind: "
     "MeshService, labels: {a: b}}}}]}}",
     "spec.default.backends[0].openTelemetry.backendRef.kind: Unsupported value: "
     "\"MeshService\": supported values: \"MeshOpenTelemetryBackend\"; " OTEL0
     ".backendRef.kind: \"kind\" must be one of [\"MeshOpenTelemetryBackend\"]",
     NULL},
    {"backendRef kind required; Kuma's labels message is another field", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {labels: {}}}}]}}",
     "spec.default.backends[0].openTelemetry.backendRef.kind: Required value; " OTEL0
     ".backendRef.kind: \"kind\" must be one of [\"MeshOpenTelemetryBackend\"]",
     NULL},
    {"tls mode enum: Kuma has no message of its own", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {tls: {mode: Off}}}]}}",
     "spec.default.backends[0].prometheus.tls.mode: Unsupported value: \"Off\": supported "
     "values: \"Disabled\", \"ProvidedTLS\", \"ActiveMTLSBackend\"",
     NULL},
    {"refreshInterval not a Go duration", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {kind: "
     "MeshOpenTelemetryBackend, labels: {a: b}}, refreshInterval: 30}}]}}",
     "spec.default.backends[0].openTelemetry.refreshInterval: Invalid value: \"integer\": "
     "spec.default.backends[0].openTelemetry.refreshInterval in body must be of type string: "
     "\"integer\"",
     NULL},
    {"includeUnused is a boolean", NULL, "{default: {sidecar: {includeUnused: \"yes\"}}}",
     "spec.default.sidecar.includeUnused: Invalid value: \"string\": "
     "spec.default.sidecar.includeUnused in body must be of type boolean: \"string\"",
     NULL},
    {"endpoint is a string", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: 4317}}]}}",
     "spec.default.backends[0].openTelemetry.endpoint: Invalid value: \"integer\": "
     "spec.default.backends[0].openTelemetry.endpoint in body must be of type string: \"integer\"",
     NULL},
    {"default is an object", NULL, "{default: [1]}",
     "spec.default: Invalid value: \"array\": spec.default in body must be of type object: "
     "\"array\"",
     NULL},
    {"schema errors stop before Kuma's validator", NULL,
     "{targetRef: {kind: MeshHTTPRoute}, default: {applications: [{port: 0}], "
     "backends: [{type: Foo}, {type: Prometheus, prometheus: {port: x}}]}}",
     "spec.default.backends[0].type: Unsupported value: \"Foo\": supported values: "
     "\"Prometheus\", \"OpenTelemetry\"; " BACKEND0 ": unrecognized type; "
     "spec.default.backends[1].prometheus.port: Invalid value: "
     "\"string\": spec.default.backends[1].prometheus.port in body must be of type integer: "
     "\"string\"",
     NULL},
    {"spec null", NULL, "null", NULL, NULL},
    {"spec empty", NULL, "{}", NULL, NULL},
    {"spec as an array", NULL, "[{targetRef: {kind: Mesh}}]",
     "spec: Invalid value: \"array\": spec in body must be of type object: \"array\"", NULL},
    {"spec as a string", NULL, "just text",
     "spec: Invalid value: \"string\": spec in body must be of type object: \"string\"", NULL},
    {"unknown fields are warnings", NULL,
     "{extra: 1, default: {foo: 1, backends: [{type: Prometheus, prometheus: {prot: 1}}]}}", NULL,
     "unknown field \"spec.extra\"; unknown field \"spec.default.foo\"; unknown field "
     "\"spec.default.backends[0].prometheus.prot\""},
    {"integral float port", NULL, "{default: {applications: [{port: 8080.0}]}}", NULL, NULL},
};

static const struct vcase kuma_cases[] = {
    /* targetRef kinds per role (v2.9-v2.14). */
    {"no targetRef is Mesh", NULL, "{default: {}}", NULL, NULL},
    {"MeshHTTPRoute not supported", NULL, "{targetRef: {kind: MeshHTTPRoute, name: r}}",
     "spec.targetRef.kind: value 'MeshHTTPRoute' is not supported", NULL},
    {"MeshExternalService not supported (system)", SYS,
     "{targetRef: {kind: MeshExternalService, name: e}}",
     "spec.targetRef.kind: value 'MeshExternalService' is not supported", NULL},
    {"MeshMultiZoneService not supported", NULL,
     "{targetRef: {kind: MeshMultiZoneService, labels: {a: b}}}",
     "spec.targetRef.kind: value 'MeshMultiZoneService' is not supported", NULL},
    {"MeshGateway needs the system role", NULL, "{targetRef: {kind: MeshGateway, name: gw}}",
     "spec.targetRef.kind: value 'MeshGateway' is not supported", NULL},
    {"MeshGateway with listener tags (system)", SYS,
     "{targetRef: {kind: MeshGateway, name: gw, tags: {port: \"8080\"}}}", NULL, NULL},
    {"MeshGateway name required", SYS, "{targetRef: {kind: MeshGateway}}",
     "spec.targetRef.name: must be set when kind is MeshGateway", NULL},
    {"Mesh, MeshSubset, MeshService, MeshServiceSubset, Dataplane for workload owners", NULL,
     "{targetRef: {kind: MeshServiceSubset, name: web, tags: {version: v1}}}", NULL,
     DEPRECATED("MeshServiceSubset")},
    /* Mesh */
    {"Mesh with name", NULL, "{targetRef: {kind: Mesh, name: default}}",
     "spec.targetRef.name: using name with kind Mesh is not yet supported", NULL},
    {"Mesh forbidden fields", NULL,
     "{targetRef: {kind: Mesh, sectionName: s, namespace: n, labels: {a: b}, tags: {c: d}, "
     "mesh: m}}",
     "spec.targetRef.mesh: must not be set with kind Mesh; spec.targetRef.tags: must not be set "
     "with kind Mesh; spec.targetRef.labels: must not be set with kind Mesh; "
     "spec.targetRef.namespace: must not be set with kind Mesh; spec.targetRef.sectionName: must "
     "not be set with kind Mesh",
     NULL},
    {"Mesh empty maps are unset", NULL,
     "{targetRef: {kind: Mesh, tags: {}, labels: {}, mesh: \"\"}}", NULL, NULL},
    {"Mesh empty proxyTypes", NULL, "{targetRef: {kind: Mesh, proxyTypes: []}}",
     "spec.targetRef.proxyTypes: must be undefined or have at least one element", NULL},
    {"Mesh null proxyTypes is nil", NULL, "{targetRef: {kind: Mesh, proxyTypes: null}}", NULL,
     NULL},
    {"Mesh proxyTypes", NULL, "{targetRef: {kind: Mesh, proxyTypes: [Sidecar, Gateway]}}", NULL,
     NULL},
    /* Dataplane */
    {"Dataplane alone", NULL, "{targetRef: {kind: Dataplane}}", NULL, NULL},
    {"Dataplane by name", NULL, "{targetRef: {kind: Dataplane, name: web-1, namespace: kuma-demo}}",
     NULL, NULL},
    {"Dataplane forbidden fields", NULL,
     "{targetRef: {kind: Dataplane, proxyTypes: [Sidecar], mesh: m, tags: {a: b}}}",
     "spec.targetRef.tags: must not be set with kind Dataplane; spec.targetRef.mesh: must not be "
     "set with kind Dataplane; spec.targetRef.proxyTypes: must not be set with kind Dataplane",
     NULL},
    {"Dataplane labels with name", NULL, "{targetRef: {kind: Dataplane, labels: {a: b}, name: x}}",
     "spec.targetRef.labels: either labels or name and namespace must be specified", NULL},
    {"Dataplane labels with namespace", NULL,
     "{targetRef: {kind: Dataplane, labels: {a: b}, namespace: x}}",
     "spec.targetRef.labels: either labels or name and namespace must be specified", NULL},
    {"Dataplane sectionName (MeshMetric is not an inbound policy)", NULL,
     "{targetRef: {kind: Dataplane, labels: {a: b}, sectionName: http}}",
     "spec.targetRef.sectionName: can only be used with inbound policies", NULL},
    /* MeshSubset */
    {"MeshSubset tags", NULL, "{targetRef: {kind: MeshSubset, tags: {kuma.io/zone: east}}}", NULL,
     DEPRECATED("MeshSubset")},
    {"MeshSubset empty proxyTypes (validateProxyTypes, as for Mesh)", NULL,
     "{targetRef: {kind: MeshSubset, proxyTypes: []}}",
     "spec.targetRef.proxyTypes: must be undefined or have at least one element", NULL},
    {"MeshSubset proxyTypes", NULL, "{targetRef: {kind: MeshSubset, proxyTypes: [Gateway]}}",
     NULL, DEPRECATED("MeshSubset")},
    {"empty proxyTypes is unset for the other kinds (disallowedField)", NULL,
     "{targetRef: {kind: Dataplane, proxyTypes: []}}", NULL, NULL},
    {"MeshSubset forbidden fields", NULL,
     "{targetRef: {kind: MeshSubset, sectionName: s, namespace: n, labels: {a: b}, mesh: m, "
     "name: x}}",
     "spec.targetRef.name: must not be set with kind MeshSubset; spec.targetRef.mesh: must not be "
     "set with kind MeshSubset; spec.targetRef.labels: must not be set with kind MeshSubset; "
     "spec.targetRef.namespace: must not be set with kind MeshSubset; "
     "spec.targetRef.sectionName: must not be set with kind MeshSubset",
     NULL},
    {"MeshSubset empty tag name", NULL, "{targetRef: {kind: MeshSubset, tags: {\"\": x}}}",
     "spec.targetRef.tags: tag name must be non-empty", NULL},
    {"MeshSubset bad tag name and empty value", NULL,
     "{targetRef: {kind: MeshSubset, tags: {\"bad key\": \"\"}}}",
     "spec.targetRef.tags[\"bad key\"]: tag name must consist of alphanumeric characters, dots, "
     "dashes, slashes and underscores; spec.targetRef.tags[\"bad key\"]: tag value must be "
     "non-empty",
     NULL},
    {"MeshSubset tag values (ValidateTags: no slash, no star)", NULL,
     "{targetRef: {kind: MeshSubset, tags: {z: \"*\", a: \"a/b\", m: ok}}}",
     "spec.targetRef.tags[\"a\"]: tag value must consist of alphanumeric characters, dots, dashes "
     "and underscores; spec.targetRef.tags[\"z\"]: tag value must consist of alphanumeric "
     "characters, dots, dashes and underscores",
     NULL},
    {"MeshSubset tag key quoting", NULL,
     "{targetRef: {kind: MeshSubset, tags: {\"a\\\"b\\n\": v}}}",
     "spec.targetRef.tags[\"a\\\"b\\n\"]: tag name must consist of alphanumeric characters, dots, "
     "dashes, slashes and underscores",
     NULL},
    /* MeshService */
    {"MeshService by name", NULL,
     "{targetRef: {kind: MeshService, name: backend, namespace: "
     "kuma-demo, sectionName: http}}",
     NULL, DEPRECATED("MeshService")},
    {"MeshService by labels", NULL, "{targetRef: {kind: MeshService, labels: {app: backend}}}",
     NULL, DEPRECATED("MeshService")},
    {"MeshService labels with sectionName (no such rule in v2.14.3)", NULL,
     "{targetRef: {kind: MeshService, labels: {app: backend}, sectionName: http, proxyTypes: "
     "[]}}",
     NULL, DEPRECATED("MeshService")},
    {"MeshService without name or labels", NULL, "{targetRef: {kind: MeshService}}",
     "spec.targetRef: name or labels must be set when kind is MeshService", NULL},
    {"MeshService bad name", NULL, "{targetRef: {kind: MeshService, name: Backend_X}}",
     "spec.targetRef.name: invalid characters: must consist of lower case alphanumeric "
     "characters, '-', '.' and '_'.",
     NULL},
    {"MeshService forbidden fields", NULL,
     "{targetRef: {kind: MeshService, name: b, proxyTypes: [Sidecar], tags: {a: b}, mesh: m}}",
     "spec.targetRef.mesh: must not be set with kind MeshService; spec.targetRef.tags: must not "
     "be set with kind MeshService; spec.targetRef.proxyTypes: must not be set with kind "
     "MeshService",
     NULL},
    {"MeshService labels with name, and sectionName", NULL,
     "{targetRef: {kind: MeshService, labels: {a: b}, name: x, sectionName: http}}",
     "spec.targetRef.labels: either labels or name and namespace must be specified", NULL},
    /* MeshServiceSubset */
    {"MeshServiceSubset name required", NULL, "{targetRef: {kind: MeshServiceSubset}}",
     "spec.targetRef.name: must be set when kind is MeshServiceSubset", NULL},
    {"MeshServiceSubset star tag", NULL,
     "{targetRef: {kind: MeshServiceSubset, name: web, tags: {version: \"*\", z: a/b}}}", NULL,
     DEPRECATED("MeshServiceSubset")},
    {"MeshServiceSubset tag values (ValidateSelector)", NULL,
     "{targetRef: {kind: MeshServiceSubset, name: web, tags: {version: \"a b\"}}}",
     "spec.targetRef.tags[\"version\"]: tag value must consist of alphanumeric characters, dots, "
     "dashes, slashes and underscores or be \"*\"",
     NULL},
    {"MeshServiceSubset forbidden fields", NULL,
     "{targetRef: {kind: MeshServiceSubset, name: Web, sectionName: s, namespace: n, labels: "
     "{a: b}, proxyTypes: [Sidecar], mesh: m}}",
     "spec.targetRef.name: invalid characters: must consist of lower case alphanumeric "
     "characters, '-', '.' and '_'.; spec.targetRef.mesh: must not be set with kind "
     "MeshServiceSubset; spec.targetRef.proxyTypes: must not be set with kind MeshServiceSubset; "
     "spec.targetRef.labels: must not be set with kind MeshServiceSubset; "
     "spec.targetRef.namespace: must not be set with kind MeshServiceSubset; "
     "spec.targetRef.sectionName: must not be set with kind MeshServiceSubset",
     NULL},
    /* applications */
    {"application port 0", NULL, "{default: {applications: [{port: 0}]}}",
     "spec.default.applications.application[0]: " PORT_MSG, NULL},
    {"application port above 65535", NULL,
     "{default: {applications: [{port: 8080}, {port: 95599}]}}",
     "spec.default.applications.application[1]: " PORT_MSG, NULL},
    {"application port edges", NULL, "{default: {applications: [{port: 1}, {port: 65535}]}}", NULL,
     NULL},
    /* Prometheus */
    {"prometheus missing", NULL, "{default: {backends: [{type: Prometheus}]}}",
     BACKEND0 ".prometheus: must be defined", NULL},
    {"prometheus null", NULL, "{default: {backends: [{type: Prometheus, prometheus: null}]}}",
     BACKEND0 ".prometheus: must be defined", NULL},
    {"prometheus port 0", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {port: 0}}]}}",
     BACKEND0 ".port: " PORT_MSG, NULL},
    {"prometheus port 95599", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {port: 95599}}]}}",
     BACKEND0 ".port: " PORT_MSG, NULL},
    {"prometheus port omitted is the default", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {}}]}}", NULL, NULL},
    {"ActiveMTLSBackend warns", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {}}, {type: Prometheus, prometheus: "
     "{port: 5671, tls: {mode: ActiveMTLSBackend}}}]}}",
     NULL,
     "spec.default.backends[1].prometheus.tls.mode: ActiveMTLSBackend is accepted but Kuma serves "
     "plain HTTP; use ProvidedTLS"},
    /* OpenTelemetry */
    {"openTelemetry missing", NULL,
     "{default: {backends: [{type: OpenTelemetry, prometheus: {port: 5670}}]}}",
     OTEL0 ": must be defined", NULL},
    {"openTelemetry neither endpoint nor backendRef", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {}}]}}",
     OTEL0 ": openTelemetry must have exactly one defined: endpoint, backendRef", NULL},
    {"openTelemetry empty endpoint is unset", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"\"}}]}}",
     OTEL0 ": openTelemetry must have exactly one defined: endpoint, backendRef", NULL},
    {"openTelemetry both endpoint and backendRef", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: otel-collector:4778, "
     "backendRef: {kind: MeshOpenTelemetryBackend, labels: {kuma.io/display-name: my-otel}}}}]}}",
     OTEL0 ": openTelemetry must have only one type defined: endpoint, backendRef", NULL},
    {"endpoint without port", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: asdasd123}}]}}",
     OTEL0 ".endpoint: must be in host:port format", NULL},
    {"endpoint with too many colons", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"a:b:4317\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format", NULL},
    {"endpoint bare IPv6", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"::1\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format", NULL},
    {"endpoint bracketed IPv6 without port", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"[::1]\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format", NULL},
    {"endpoint unclosed bracket", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"[::1:4317\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format", NULL},
    {"endpoint host:port forms", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"[::1]:4317\"}}, "
     "{type: OpenTelemetry, openTelemetry: {endpoint: \"otel:\"}}, "
     "{type: OpenTelemetry, openTelemetry: {endpoint: \":4317\"}}, "
     "{type: OpenTelemetry, openTelemetry: {endpoint: \"10.0.0.1:4317\"}}]}}",
     NULL, DEPRECATED_ENDPOINT},
    {"endpoint with a path", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "
     "\"otel:4317/v1/metrics\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format, not a URL", NULL},
    {"endpoint with a query", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"otel:4317?x=1\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format, not a URL", NULL},
    {"endpoint with a fragment", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"otel:4317#f\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format, not a URL", NULL},
    {"http URL normalised (Kuma 2.14 rejects it; operator decision)", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "
     "\"http://endpoint:8023\"}}]}}",
     NULL,
     "spec.default.backends[0].openTelemetry.endpoint: URL normalised: use \"endpoint:8023\" "
     "instead; " DEPRECATED_ENDPOINT},
    {"https URL with a final slash normalised", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "
     "\"HTTPS://[::1]:4317/\"}}]}}",
     NULL,
     "spec.default.backends[0].openTelemetry.endpoint: URL normalised: use \"[::1]:4317\" "
     "instead; " DEPRECATED_ENDPOINT},
    {"URL with a path is the 2.14 error", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "
     "\"http://otel:4317/v1/metrics\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format, not a URL", NULL},
    {"URL with a query is the 2.14 error", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "
     "\"http://otel:4317?a=b\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format, not a URL", NULL},
    {"URL without a port is the 2.14 error", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"http://otel\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format, not a URL", NULL},
    {"URL with user info is the 2.14 error", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "
     "\"https://u:p@otel:4317\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format, not a URL", NULL},
    {"other schemes are the 2.14 error", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "
     "\"grpc://otel:4317\"}}]}}",
     OTEL0 ".endpoint: must be in host:port format, not a URL", NULL},
    {"both set: only that message (a switch: the bad endpoint and backendRef are not checked)",
     NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"http://x/y\", "
     "backendRef: {kind: MeshOpenTelemetryBackend}}}]}}",
     OTEL0 ": openTelemetry must have only one type defined: endpoint, backendRef", NULL},
    {"an endpoint deprecation per policy, not per backend", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"a:1\"}}, "
     "{type: OpenTelemetry, openTelemetry: {endpoint: \"b:2\"}}]}}",
     NULL, DEPRECATED_ENDPOINT},
    {"backendRef with an empty endpoint is no deprecation", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: \"\", backendRef: "
     "{kind: MeshOpenTelemetryBackend, labels: {a: b}}}}]}}",
     NULL, NULL},
    {"deprecations in Kuma's order: endpoint, then targetRef", NULL,
     "{targetRef: {kind: MeshSubset}, default: {backends: [{type: Prometheus, prometheus: {}, "
     "openTelemetry: {endpoint: \"a:1\"}}]}}",
     NULL, DEPRECATED_ENDPOINT "; " DEPRECATED("MeshSubset")},
    {"no deprecations for an invalid policy (Kuma returns them only when allowed)", NULL,
     "{targetRef: {kind: MeshSubset}, default: {applications: [{port: 0}], backends: [{type: "
     "OpenTelemetry, openTelemetry: {endpoint: \"a:1\"}}]}}",
     "spec.default.applications.application[0]: " PORT_MSG, NULL},
    {"prometheus path without a leading slash", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {path: metrics}}, {type: Prometheus, "
     "prometheus: {port: 5671, path: \"\"}}]}}",
     NULL,
     "spec.default.backends[0].prometheus.path: no leading \"/\": Kuma's Envoy route never "
     "matches it, every scrape gets 404"},
    {"backendRef without labels", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {kind: "
     "MeshOpenTelemetryBackend}}}]}}",
     OTEL0 ".backendRef: backendRef must have exactly one defined: labels", NULL},
    /* sidecar */
    {"invalid exclude regex", NULL,
     "{default: {sidecar: {includeUnused: true, profiles: {exclude: [{type: Regex, match: "
     "\"())(!(\"}]}}}}",
     "spec.default.sidecar.profiles.exclude[0].match: invalid regex", NULL},
    {"RE2 rejects lookahead in include", NULL,
     "{default: {sidecar: {profiles: {include: [{type: Prefix, match: \"(\"}, {type: Regex, "
     "match: \"envoy_(?=cluster)\"}]}}}}",
     "spec.default.sidecar.profiles.include[1].match: invalid regex", NULL},
    {"Contains is accepted", NULL,
     "{default: {sidecar: {profiles: {include: [{type: Contains, match: cluster}, {type: Exact, "
     "match: x}], appendProfiles: [{name: All}, {name: None}]}}}}",
     NULL, NULL},
    {"sidecar.regex (Kuma 2.6) invalid", NULL, "{default: {sidecar: {regex: \"(?<=x)y\"}}}",
     "spec.default.sidecar.regex: invalid regex",
     "spec.default.sidecar.regex: is the Kuma 2.6 field (deprecated); use profiles.include with "
     "type Regex"},
    {"sidecar.regex with profiles", NULL, "{default: {sidecar: {regex: \"x\", profiles: {}}}}",
     "spec.default.sidecar: regex (Kuma 2.6) and profiles cannot be combined; use profiles", NULL},
};

static int run_cases(const struct vcase *cases, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *mm = meshmetric(cases[i].ns, cases[i].spec);
        struct violations errs, warns;
        violations_init(&errs);
        violations_init(&warns);
        bool ok = meshmetric_validate(mm, "kuma-system", &errs, &warns);
        char *e = violations_join(&errs);
        char *w = violations_join(&warns);
        if (ok != (cases[i].errors == NULL) || !same(e, cases[i].errors) ||
            !same(w, cases[i].warnings)) {
            print_error("case \"%s\":\n  errors   got  %s\n           want %s\n  warnings got  %s\n"
                        "           want %s\n",
                        cases[i].name, e, cases[i].errors ? cases[i].errors : "(none)", w,
                        cases[i].warnings ? cases[i].warnings : "(none)");
            failures++;
        }
        free(e);
        free(w);
        violations_cleanup(&errs);
        violations_cleanup(&warns);
        json_decref(mm);
    }
    return failures;
}

static void test_structural(void **state)
{
    (void)state;
    assert_int_equal(
        run_cases(structural_cases, sizeof structural_cases / sizeof *structural_cases), 0);
}

static void test_kuma_rules(void **state)
{
    (void)state;
    assert_int_equal(run_cases(kuma_cases, sizeof kuma_cases / sizeof *kuma_cases), 0);
}

/*
 * Kuma messages the CRD schema makes unreachable on Kubernetes (enum and
 * required checks run first), checked on Kuma's validator alone.
 */
static const struct vcase kuma_only_cases[] = {
    {"kind empty", NULL, "{targetRef: {kind: \"\"}}", "spec.targetRef.kind: must be defined", NULL},
    {"kind missing", NULL, "{targetRef: {}}", "spec.targetRef.kind: must be defined", NULL},
    {"include type", NULL, "{default: {sidecar: {profiles: {include: [{type: not_supported}]}}}}",
     "spec.default.sidecar.profiles.include[0].type: unrecognized type 'not_supported' - 'Regex', "
     "'Prefix', 'Exact' are supported",
     NULL},
    {"exclude type", NULL, "{default: {sidecar: {profiles: {exclude: [{type: regex}]}}}}",
     "spec.default.sidecar.profiles.exclude[0].type: unrecognized type 'regex' - 'Regex', "
     "'Prefix', 'Exact' are supported",
     NULL},
    {"backend type", NULL, "{default: {backends: [{type: Foo}, {}]}}",
     BACKEND0 ": unrecognized type; spec.default.backends.backend[1]: unrecognized type", NULL},
    {"application without port is port 0", NULL, "{default: {applications: [{}]}}",
     "spec.default.applications.application[0]: " PORT_MSG, NULL},
    {"wrong types read as Go zero values", NULL,
     "{targetRef: {kind: 5}, default: {sidecar: {profiles: {include: [7]}}, applications: [x], "
     "backends: [[]]}}",
     "spec.targetRef.kind: must be defined; spec.default.sidecar.profiles.include[0].type: "
     "unrecognized type '' - 'Regex', 'Prefix', 'Exact' are supported; "
     "spec.default.applications.application[0]: " PORT_MSG "; " BACKEND0 ": unrecognized type",
     NULL},
    {"the system role allows MeshGateway", SYS, "{targetRef: {kind: MeshGateway, name: gw}}", NULL,
     NULL},
    {"backendRef with empty labels and no kind", NULL,
     "{default: {backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {labels: {}}}}]}}",
     OTEL0 ".backendRef.kind: \"kind\" must be one of [\"MeshOpenTelemetryBackend\"]; " OTEL0
           ".backendRef: backendRef must have exactly one defined: labels",
     NULL},
    {"selectors: exclude, then include, then appendProfiles", NULL,
     "{default: {sidecar: {profiles: {appendProfiles: [{name: Basic}, {name: basic}], include: "
     "[{type: Regex, match: \"a{1001}\"}], exclude: [{type: Regex, match: \"\\\\1\"}]}}}}",
     "spec.default.sidecar.profiles.exclude[0].match: invalid regex; "
     "spec.default.sidecar.profiles.include[0].match: invalid regex; "
     "spec.default.sidecar.profiles.appendProfiles[1].name: unrecognized profile name 'basic' - "
     "'All', 'None', 'Basic' are supported",
     NULL},
    {"unrecognized profile", NULL,
     "{default: {sidecar: {profiles: {appendProfiles: [{name: not_supported}]}}}}",
     "spec.default.sidecar.profiles.appendProfiles[0].name: unrecognized profile name "
     "'not_supported' - 'All', 'None', 'Basic' are supported",
     NULL},
    /* order across the spec (the profile name enum would stop the full validation first) */
    {"targetRef first, then sidecar, applications, backends", NULL,
     "{default: {backends: [{type: Prometheus, prometheus: {port: 0}}], applications: [{port: 0}], "
     "sidecar: {profiles: {appendProfiles: [{name: x}]}}}, targetRef: {kind: Mesh, name: x}}",
     "spec.targetRef.name: using name with kind Mesh is not yet supported; "
     "spec.default.sidecar.profiles.appendProfiles[0].name: unrecognized profile name 'x' - "
     "'All', 'None', 'Basic' are supported; spec.default.applications.application[0]: " PORT_MSG
     "; " BACKEND0 ".port: " PORT_MSG,
     NULL},
};

static void test_kuma_only(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof kuma_only_cases / sizeof *kuma_only_cases; i++) {
        const struct vcase *c = &kuma_only_cases[i];
        json_t *mm = meshmetric(c->ns, c->spec);
        struct violations errs, warns;
        violations_init(&errs);
        violations_init(&warns);
        bool ok = meshmetric_validate_kuma(mm, c->ns != NULL, &errs, &warns);
        char *e = violations_join(&errs);
        if (ok != (c->errors == NULL) || !same(e, c->errors)) {
            print_error("case \"%s\": got %s\n want %s\n", c->name, e, c->errors ? c->errors : "");
            failures++;
        }
        free(e);
        violations_cleanup(&errs);
        violations_cleanup(&warns);
        json_decref(mm);
    }
    assert_int_equal(failures, 0);
}

/* ---- role, metadata, whole-object shapes ---- */

struct ocase {
    const char *name;
    const char *yaml; /* the whole object */
    const char *errors;
    const char *warnings; /* NULL = none */
};

static const struct ocase object_cases[] = {
    {"label overrides the system namespace",
     "{metadata: {name: a, namespace: kuma-system, labels: {kuma.io/policy-role: workload-owner}}, "
     "spec: {targetRef: {kind: MeshGateway, name: gw}}}",
     "spec.targetRef.kind: value 'MeshGateway' is not supported", NULL},
    {"label makes a system policy elsewhere",
     "{metadata: {name: a, namespace: team, labels: {kuma.io/policy-role: system}}, "
     "spec: {targetRef: {kind: MeshGateway, name: gw}}}",
     NULL, NULL},
    {"no namespace is not system",
     "{metadata: {name: a}, spec: {targetRef: {kind: MeshGateway, name: gw}}}",
     "spec.targetRef.kind: value 'MeshGateway' is not supported", NULL},
    {"missing metadata.name", "{metadata: {namespace: x}, spec: {}}",
     "metadata.name: Required value: name or generateName is required", NULL},
    {"empty metadata.name", "{metadata: {name: \"\"}}",
     "metadata.name: Required value: name or generateName is required", NULL},
    {"missing metadata", "{spec: {targetRef: {kind: Mesh}}}",
     "metadata.name: Required value: name or generateName is required", NULL},
    {"metadata.name not a string", "{metadata: {name: 5}}",
     "metadata.name: Invalid value: \"integer\": metadata.name in body must be of type string: "
     "\"integer\"",
     NULL},
    {"metadata not an object", "{metadata: [], spec: {}}",
     "metadata: Invalid value: \"array\": metadata in body must be of type object: \"array\"",
     NULL},
    {"metadata and spec errors together", "{spec: {default: {backends: [{type: Foo}]}}}",
     "metadata.name: Required value: name or generateName is required; "
     "spec.default.backends[0].type: Unsupported value: \"Foo\": supported values: "
     "\"Prometheus\", \"OpenTelemetry\"; " BACKEND0 ": unrecognized type",
     NULL},
    {"status is not checked", "{metadata: {name: a}, status: {conditions: 5}}", NULL, NULL},
    {"Universal form at the top level is pruned (warnings only)",
     "{apiVersion: kuma.io/v1alpha1, kind: MeshMetric, metadata: {name: a}, targetRef: {kind: "
     "Mesh}, default: {backends: [{type: Foo}]}}",
     NULL, "unknown field \"targetRef\"; unknown field \"default\""},
    {"root is an array", "[1, 2]",
     ": Invalid value: \"array\": body must be of type object: \"array\"", NULL},
    {"root is a string", "text",
     ": Invalid value: \"string\": body must be of type object: \"string\"", NULL},
};

static void test_objects(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof object_cases / sizeof *object_cases; i++) {
        const struct ocase *c = &object_cases[i];
        json_t *obj = tu_yaml(c->yaml);
        struct violations errs, warns;
        violations_init(&errs);
        violations_init(&warns);
        bool ok = meshmetric_validate(obj, "kuma-system", &errs, &warns);
        char *e = violations_join(&errs);
        char *w = violations_join(&warns);
        /* violations_join prints "field: message" only for a non-empty field. */
        const char *want = c->errors;
        if (want && want[0] == ':')
            want += 2;
        if (ok != (want == NULL) || !same(e, want) || !same(w, c->warnings)) {
            print_error("case \"%s\": got %s / %s\n want %s / %s\n", c->name, e, w,
                        want ? want : "", c->warnings ? c->warnings : "");
            failures++;
        }
        free(e);
        free(w);
        violations_cleanup(&errs);
        violations_cleanup(&warns);
        json_decref(obj);
    }
    assert_int_equal(failures, 0);

    struct violations errs;
    violations_init(&errs);
    assert_false(meshmetric_validate(NULL, "kuma-system", &errs, NULL));
    char *e = violations_join(&errs);
    assert_string_equal(e, "Invalid value: \"null\": body must be of type object: \"null\"");
    free(e);
    violations_cleanup(&errs);

    /* No system namespace configured: nothing is system without the label. */
    json_t *mm = meshmetric("kuma-system", "{targetRef: {kind: MeshGateway, name: gw}}");
    violations_init(&errs);
    assert_false(meshmetric_validate(mm, NULL, &errs, NULL));
    assert_true(meshmetric_validate(mm, "", &errs, NULL) == false);
    violations_cleanup(&errs);
    json_decref(mm);
}

/* ---- fixtures: the docs' examples and other whole cases ---- */

static const char *const fixtures[] = {
    "seed-sidecar-regex",
    "seed-applications",
    "seed-backend-prometheus",
    "seed-backend-prometheus-tls",
    "seed-prometheus-one",
    "seed-prometheus-two",
    "seed-backend-opentelemetry",
    "seed-metrics-default",
    "seed-metrics-for-mesh-service",
    "kuma-full-spec",
    "kuma-full-spec-meshservice",
    "kuma-backend-ref",
    "defaults",
    "active-mtls-backend",
    "regex-with-profiles",
};

static char *join_strings(const json_t *arr)
{
    struct violations v;
    violations_init(&v);
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s) violations_add(&v, "", "%s", json_string_value(s));
    char *out = violations_join(&v);
    violations_cleanup(&v);
    return out;
}

static void test_fixtures(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        json_t *docs = load_fixture(fixtures[i]);
        json_t *mm = json_array_get(docs, 0);
        json_t *expect = json_array_get(docs, 1);
        assert_non_null(mm);
        assert_non_null(expect);

        struct violations errs, warns;
        violations_init(&errs);
        violations_init(&warns);
        bool ok = meshmetric_validate(mm, "kuma-system", &errs, &warns);
        meshmetric_default(mm);
        char *e = violations_join(&errs);
        char *w = violations_join(&warns);
        char *want_w = join_strings(json_object_get(expect, "warnings"));
        const char *want_e = json_string_value(json_object_get(expect, "errors"));
        json_t *want_default = json_object_get(expect, "default");
        json_t *got_default = json_object_get(json_object_get(mm, "spec"), "default");
        bool default_ok =
            want_e || (json_is_null(want_default) ? got_default == NULL
                                                  : json_equal(got_default, want_default));
        if (ok != (want_e == NULL) || !same(e, want_e) || strcmp(w, want_w) != 0 || !default_ok) {
            char *g = got_default ? json_dumps(got_default, JSON_SORT_KEYS) : NULL;
            char *d =
                want_default ? json_dumps(want_default, JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
            print_error(
                "fixture %s:\n  errors %s\n  warnings %s\n  want warnings %s\n  default %s\n"
                "  want default %s\n",
                fixtures[i], e, w, want_w, g ? g : "null", d ? d : "null");
            free(g);
            free(d);
            failures++;
        }
        if (strncmp(fixtures[i], "seed-", 5) == 0 &&
            json_object_get(json_object_get(json_object_get(mm, "metadata"), "labels"),
                            "kuma.io/mesh"))
            assert_string_equal(meshmetric_mesh(mm), "default");
        free(e);
        free(w);
        free(want_w);
        violations_cleanup(&errs);
        violations_cleanup(&warns);
        json_decref(docs);
    }
    assert_int_equal(failures, 0);
}

/* ---- defaults ---- */

struct dcase {
    const char *name;
    const char *conf;   /* spec.default, YAML */
    const char *expect; /* after meshmetric_default_conf, YAML */
};

static const struct dcase default_cases[] = {
    {"empty", "{}", "{}"},
    {"application path", "{applications: [{port: 1}, {port: 2, path: \"\"}]}",
     "{applications: [{port: 1, path: /metrics}, {port: 2, path: \"\"}]}"},
    {"prometheus port, path; no tls invented",
     "{backends: [{type: Prometheus, prometheus: {clientId: a}}]}",
     "{backends: [{type: Prometheus, prometheus: {clientId: a, port: 5670, path: /metrics}}]}"},
    {"tls mode inside tls", "{backends: [{type: Prometheus, prometheus: {tls: {}}}]}",
     "{backends: [{type: Prometheus, prometheus: {tls: {mode: Disabled}, port: 5670, path: "
     "/metrics}}]}"},
    {"no prometheus object is created", "{backends: [{type: Prometheus}]}",
     "{backends: [{type: Prometheus}]}"},
    {"openTelemetry untouched", "{backends: [{type: OpenTelemetry, openTelemetry: {}}]}",
     "{backends: [{type: OpenTelemetry, openTelemetry: {}}]}"},
    {"nulls pruned, then defaulted",
     "{sidecar: null, applications: [{port: 1, path: null}], backends: [{type: Prometheus, "
     "prometheus: {port: null, tls: {mode: null}}}]}",
     "{applications: [{port: 1, path: /metrics}], backends: [{type: Prometheus, prometheus: "
     "{port: 5670, path: /metrics, tls: {mode: Disabled}}}]}"},
    {"wrong types left alone",
     "{applications: {port: 1}, backends: [5, {prometheus: x}, {prometheus: {port: x, tls: y}}]}",
     "{applications: {port: 1}, backends: [5, {prometheus: x}, {prometheus: {port: x, tls: y, "
     "path: /metrics}}]}"},
    {"unknown fields survive",
     "{future: {a: null}, backends: [{type: Prometheus, x: 1, prometheus: {y: 2}}]}",
     "{future: {a: null}, backends: [{type: Prometheus, x: 1, prometheus: {y: 2, port: 5670, path: "
     "/metrics}}]}"},
};

static void test_defaults(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof default_cases / sizeof *default_cases; i++) {
        json_t *conf = tu_yaml(default_cases[i].conf);
        json_t *want = tu_yaml(default_cases[i].expect);
        meshmetric_default_conf(conf);
        if (!json_equal(conf, want)) {
            char *g = json_dumps(conf, JSON_SORT_KEYS);
            print_error("case \"%s\": got %s\n", default_cases[i].name, g);
            free(g);
            failures++;
        }
        json_decref(conf);
        json_decref(want);
    }
    assert_int_equal(failures, 0);

    /* Not objects: no-ops. */
    meshmetric_default_conf(NULL);
    meshmetric_default(NULL);
    json_t *s = json_string("x");
    meshmetric_default_conf(s);
    meshmetric_default(s);
    json_decref(s);
    json_t *mm = tu_yaml("{metadata: {name: a}, spec: {targetRef: {kind: Mesh, name: null}}}");
    meshmetric_default(mm);
    json_t *want = tu_yaml("{metadata: {name: a}, spec: {targetRef: {kind: Mesh}}}");
    assert_true(json_equal(mm, want));
    json_decref(mm);
    json_decref(want);
}

static void test_mesh_label(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *mesh;
    } cases[] = {
        {"{metadata: {labels: {kuma.io/mesh: east}}}", "east"},
        {"{metadata: {labels: {kuma.io/mesh: \"\"}}}", "default"},
        {"{metadata: {labels: {kuma.io/mesh: 5}}}", "default"},
        {"{metadata: {labels: {}}}", "default"},
        {"{metadata: 1}", "default"},
        {"[]", "default"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *mm = tu_yaml(cases[i].yaml);
        assert_string_equal(meshmetric_mesh(mm), cases[i].mesh);
        json_decref(mm);
    }
    assert_string_equal(meshmetric_mesh(NULL), "default");
}

/* ---- warnings ---- */

static void test_unknown_field_cap(void **state)
{
    (void)state;
    json_t *mm = meshmetric(NULL, "{default: {}}");
    json_t *conf = json_object_get(json_object_get(mm, "spec"), "default");
    for (int i = 0; i < 15; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%02d", i);
        json_object_set_new(conf, key, json_integer(i));
    }
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    assert_true(meshmetric_validate(mm, "kuma-system", &errs, &warns));
    assert_int_equal(warns.len, 11);
    assert_string_equal(warns.items[0].message, "unknown field \"spec.default.k00\"");
    assert_string_equal(warns.items[10].message, "5 more unknown fields not listed");
    /* Warnings may be NULL. */
    assert_true(meshmetric_validate(mm, "kuma-system", &errs, NULL));
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    json_decref(mm);
}

/* Every warning fits a Kubernetes warning line of 120 characters. */
static void test_warning_lengths(void **state)
{
    (void)state;
    json_t *mm =
        meshmetric(NULL, "{default: {sidecar: {regex: x}, backends: ["
                         "{type: Prometheus, prometheus: {tls: {mode: ActiveMTLSBackend}}},"
                         "{type: OpenTelemetry, openTelemetry: {endpoint: "
                         "\"http://otel-collector.observability.svc:4317\"}}]}}");
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    assert_true(meshmetric_validate(mm, "kuma-system", &errs, &warns));
    assert_int_equal(warns.len, 4); /* regex, ActiveMTLSBackend, URL, Kuma's endpoint deprecation */
    for (size_t i = 0; i < warns.len; i++) {
        struct violations one;
        violations_init(&one);
        violations_add(&one, warns.items[i].field, "%s", warns.items[i].message);
        char *s = violations_join(&one);
        if (strlen(s) > 120)
            fail_msg("warning longer than 120 characters (%zu): %s", strlen(s), s);
        free(s);
        violations_cleanup(&one);
    }
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    json_decref(mm);
}

/* ---- hostile input ---- */

static void validate_quietly(json_t *obj)
{
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    (void)meshmetric_validate(obj, "kuma-system", &errs, &warns);
    char *e = violations_join(&errs);
    char *w = violations_join(&warns);
    free(e);
    free(w);
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    meshmetric_default(obj);
    (void)meshmetric_mesh(obj);
}

/* Replace every value in a full spec, one at a time, by each JSON type. */
static void mutate_all(json_t *root, json_t *node)
{
    static const char *const replacements[] = {"null", "true", "-1",     "1.5",          "\"s\"",
                                               "[]",   "{}",   "[null]", "{\"a\":[{}]}", "1e400"};
    if (json_is_object(node)) {
        const char *key;
        json_t *child;
        void *tmp;
        json_object_foreach_safe(node, tmp, key, child)
        {
            json_t *saved = json_incref(child);
            for (size_t r = 0; r < sizeof replacements / sizeof *replacements; r++) {
                json_t *v = json_loads(replacements[r], JSON_DECODE_ANY, NULL);
                json_object_set_new(node, key, v ? v : json_real(1e300));
                json_t *copy = json_deep_copy(root);
                validate_quietly(copy);
                json_decref(copy);
            }
            json_object_set_new(node, key, saved);
            mutate_all(root, saved);
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *child;
        json_array_foreach(node, i, child)
        {
            json_t *saved = json_incref(child);
            json_array_set_new(node, i, json_string("junk"));
            json_t *copy = json_deep_copy(root);
            validate_quietly(copy);
            json_decref(copy);
            json_array_set_new(node, i, saved);
            mutate_all(root, saved);
        }
    }
}

static void test_wrong_types_everywhere(void **state)
{
    (void)state;
    json_t *docs = load_fixture("kuma-full-spec");
    json_t *mm = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    json_t *ref = json_object_get(json_object_get(mm, "spec"), "targetRef");
    json_object_set_new(ref, "tags", json_pack("{s:s}", "a", "b"));
    json_object_set_new(ref, "labels", json_pack("{s:s}", "a", "b"));
    json_object_set_new(ref, "proxyTypes", json_pack("[s]", "Sidecar"));
    json_t *backends =
        json_object_get(json_object_get(json_object_get(mm, "spec"), "default"), "backends");
    json_array_append_new(backends, json_pack("{s:s,s:{s:{s:s,s:{s:s}}}}", "type", "OpenTelemetry",
                                              "openTelemetry", "backendRef", "kind",
                                              "MeshOpenTelemetryBackend", "labels", "a", "b"));
    mutate_all(mm, mm);
    json_decref(mm);
}

static void test_many_backends(void **state)
{
    (void)state;
    json_t *mm = meshmetric(NULL, "{default: {backends: []}}");
    json_t *backends =
        json_object_get(json_object_get(json_object_get(mm, "spec"), "default"), "backends");
    for (int i = 0; i < 10000; i++)
        json_array_append_new(backends, json_pack("{s:s,s:{s:i}}", "type", "Prometheus",
                                                  "prometheus", "port", 1 + i % 70000));
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    assert_true(meshmetric_validate(mm, "kuma-system", &errs, &warns));
    meshmetric_default(mm);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(backends, 9999), "prometheus"), "port")),
                     10000);

    /* 10k invalid ones: every violation reported, in order. */
    for (size_t i = 0; i < json_array_size(backends); i++)
        json_object_set_new(json_object_get(json_array_get(backends, i), "prometheus"), "port",
                            json_integer(0));
    assert_false(meshmetric_validate(mm, "kuma-system", &errs, &warns));
    assert_int_equal(errs.len, 10000);
    assert_string_equal(errs.items[9999].field, "spec.default.backends.backend[9999].port");
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    json_decref(mm);
}

static void test_deep_junk(void **state)
{
    (void)state;
    /* 2000 levels of nesting in an unknown field and in a known one. */
    size_t depth = 2000;
    char *open = xmalloc(depth + 1), *close = xmalloc(depth + 1);
    memset(open, '[', depth);
    memset(close, ']', depth);
    open[depth] = close[depth] = '\0';
    char *text = xasprintf("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"junk\":%s%s,\"default\":"
                           "{\"sidecar\":{\"profiles\":%s%s}}}}",
                           open, close, open, close);
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    if (!obj) /* jansson's own depth cap: build it by hand instead */
        obj = tu_yaml("{metadata: {name: a}, spec: {junk: [[[[[[[[[[[]]]]]]]]]]]}}");
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    (void)meshmetric_validate(obj, "kuma-system", &errs, &warns);
    meshmetric_default(obj);
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    json_decref(obj);
    free(text);
    free(open);
    free(close);

    /* A 100k-character regex and a 100k-character tag key. */
    char *big = xmalloc(100001);
    memset(big, '(', 100000);
    big[100000] = '\0';
    json_t *mm = meshmetric(NULL, "{targetRef: {kind: MeshSubset, tags: {}}, default: {sidecar: "
                                  "{profiles: {include: [{type: Regex, match: x}]}}}}");
    json_t *spec = json_object_get(mm, "spec");
    json_object_set_new(json_object_get(json_object_get(spec, "targetRef"), "tags"), big,
                        json_string(""));
    json_t *inc = json_array_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(spec, "default"), "sidecar"),
                            "profiles"),
            "include"),
        0);
    json_object_set_new(inc, "match", json_string(big));
    violations_init(&errs);
    violations_init(&warns);
    assert_false(meshmetric_validate(mm, "kuma-system", &errs, &warns));
    assert_int_equal(errs.len, 3); /* tag name, tag value, regex */
    assert_string_equal(errs.items[2].message, "invalid regex");
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    json_decref(mm);
    free(big);
}


/* ---- the embedded CRD is Kuma's ---- */

/* Keep only what the API server checks; sort `required` (controller-gen sorts it anyway). */
static json_t *schema_core(const json_t *s)
{
    static const char *const keep[] = {"type",     "properties", "items",
                                       "enum",     "required",   "additionalProperties"};
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        json_t *v = json_object_get(s, keep[i]);
        if (!v)
            continue;
        if (!strcmp(keep[i], "properties")) {
            json_t *props = json_object();
            const char *k;
            json_t *c;
            json_object_foreach(v, k, c) json_object_set_new(props, k, schema_core(c));
            json_object_set_new(out, "properties", props);
        } else if (!strcmp(keep[i], "items") || !strcmp(keep[i], "additionalProperties")) {
            json_object_set_new(out, keep[i], schema_core(v));
        } else if (!strcmp(keep[i], "required")) {
            json_t *sorted = json_array();
            size_t n = json_array_size(v);
            const char **names = xcalloc(n ? n : 1, sizeof *names);
            for (size_t j = 0; j < n; j++)
                names[j] = json_string_value(json_array_get(v, j));
            for (size_t a = 0; a < n; a++) /* n is tiny */
                for (size_t b = a + 1; b < n; b++)
                    if (strcmp(names[a], names[b]) > 0) {
                        const char *t = names[a];
                        names[a] = names[b];
                        names[b] = t;
                    }
            for (size_t j = 0; j < n; j++)
                json_array_append_new(sorted, json_string(names[j]));
            free(names);
            json_object_set_new(out, "required", sorted);
        } else {
            json_object_set(out, keep[i], v);
        }
    }
    return out;
}

static void test_crd_schema(void **state)
{
    (void)state;
    json_t *docs = load_fixture("kuma.io_meshmetrics");
    json_t *crd = json_array_get(docs, 0);
    assert_string_equal(json_string_value(json_object_get(crd, "kind")),
                        "CustomResourceDefinition");
    json_t *schema = json_object_get(
        json_object_get(json_array_get(json_object_get(json_object_get(crd, "spec"), "versions"), 0),
                        "schema"),
        "openAPIV3Schema");
    assert_non_null(schema);
    json_t *want = schema_core(schema);
    json_t *embedded = meshmetric_crd_schema();
    json_t *got = schema_core(embedded);
    if (!json_equal(want, got)) {
        tu_print_diff("", want, got);
        fail_msg("the embedded schema differs from Kuma's CRD");
    }
    json_decref(got);
    json_decref(embedded);
    json_decref(want);
    json_decref(docs);
}

/* ---- unknown fields and --strict ---- */

struct ucase {
    const char *name;
    const char *yaml; /* the whole object */
    const char *want; /* joined meshmetric_unknown_fields; NULL = none */
};

static const struct ucase unknown_cases[] = {
    {"a typo with a hint",
     "{spec: {default: {backends: [{type: Prometheus, prometheus: {prot: 1}}]}}}",
     "spec.default.backends[0].prometheus.prot: unknown field \"prot\" (did you mean \"port\"?)"},
    {"transposed letters, case, a missing letter",
     "{spec: {tragetRef: {kind: Mesh}, default: {backends: [{type: OpenTelemetry, openTelemetry: "
     "{enpoint: \"a:1\", backendRef: {Kind: x}}}, {type: Prometheus, prometheus: {clientID: a}}]}}}",
     "spec.tragetRef: unknown field \"tragetRef\" (did you mean \"targetRef\"?); "
     "spec.default.backends[0].openTelemetry.enpoint: unknown field \"enpoint\" (did you mean "
     "\"endpoint\"?); spec.default.backends[0].openTelemetry.backendRef.Kind: unknown field "
     "\"Kind\" (did you mean \"kind\"?); spec.default.backends[1].prometheus.clientID: unknown "
     "field \"clientID\" (did you mean \"clientId\"?)"},
    {"no hint when nothing is close",
     "{spec: {default: {sidecar: {includeUnused: true, zzz: 1}}}}",
     "spec.default.sidecar.zzz: unknown field \"zzz\""},
    {"Universal format at the top level",
     "{type: MeshMetric, name: m, mesh: default, spec: {}}",
     "type: unknown field \"type\"; name: unknown field \"name\"; mesh: unknown field \"mesh\""},
    {"metadata is ObjectMeta", "{metadata: {name: a, labelz: {}}}",
     "metadata.labelz: unknown field \"labelz\" (did you mean \"labels\"?)"},
    {"kubectl get -o yaml output has no unknown field",
     "{apiVersion: kuma.io/v1alpha1, kind: MeshMetric, metadata: {annotations: "
     "{kubectl.kubernetes.io/last-applied-configuration: \"{}\"}, creationTimestamp: "
     "\"2026-01-01T00:00:00Z\", generation: 1, labels: {kuma.io/mesh: default, kuma.io/origin: "
     "zone}, managedFields: [{manager: kubectl, operation: Update, fieldsV1: {f:spec: {}}}], "
     "name: m, namespace: kuma-system, resourceVersion: \"123\", uid: "
     "0f3c7a52-1d2e-4b8f-9a61-7c5e4d3b2a10}, spec: {default: {backends: [{type: Prometheus, "
     "prometheus: {port: 5670, path: /metrics, tls: {mode: Disabled}}}]}, targetRef: {kind: "
     "Mesh}}, status: {conditions: [{message: ok, reason: Ok, status: \"True\", type: Ready}]}}",
     NULL},
    {"status is Kuma's Condition", "{status: {conditions: [{type: Ready, lastTransitionTime: x}]}}",
     "status.conditions[0].lastTransitionTime: unknown field \"lastTransitionTime\""},
    {"the operator's sidecar.regex is known", "{spec: {default: {sidecar: {regex: x}}}}", NULL},
    {"inside maps anything goes", "{spec: {targetRef: {kind: Dataplane, labels: {anything: x}}}}",
     NULL},
    {"null members still count", "{spec: {default: {backend: null}}}",
     "spec.default.backend: unknown field \"backend\" (did you mean \"backends\"?)"},
    {"not an object", "[1]", NULL},
};

static void test_unknown_fields(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof unknown_cases / sizeof *unknown_cases; i++) {
        const struct ucase *c = &unknown_cases[i];
        json_t *obj = tu_yaml(c->yaml);
        struct violations out;
        violations_init(&out);
        size_t n = meshmetric_unknown_fields(obj, &out);
        char *got = violations_join(&out);
        if (n != out.len || !same(got, c->want)) {
            print_error("case \"%s\":\n  got  %s\n  want %s\n", c->name, got,
                        c->want ? c->want : "(none)");
            failures++;
        }
        free(got);
        violations_cleanup(&out);
        json_decref(obj);
    }
    assert_int_equal(failures, 0);
    /* Counting only. */
    json_t *obj = tu_yaml("{a: 1, b: 2, spec: {c: 3}}");
    assert_int_equal(meshmetric_unknown_fields(obj, NULL), 3);
    json_decref(obj);
}

static void test_validate_strict(void **state)
{
    (void)state;
    json_t *mm = meshmetric(NULL, "{default: {applications: [{port: 0, nme: app}], foo: 1}}");
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    /* Not strict: the apiserver's warnings, and Kuma's error. */
    assert_false(meshmetric_validate_ex(mm, "kuma-system", false, &errs, &warns));
    char *e = violations_join(&errs);
    char *w = violations_join(&warns);
    assert_string_equal(e, "spec.default.applications.application[0]: " PORT_MSG);
    assert_string_equal(w, "unknown field \"spec.default.applications[0].nme\"; unknown field "
                           "\"spec.default.foo\"");
    free(e);
    free(w);
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    /* Strict: unknown fields are errors with hints, the other checks still run, no warnings. */
    assert_false(meshmetric_validate_ex(mm, "kuma-system", true, &errs, &warns));
    e = violations_join(&errs);
    assert_string_equal(e, "spec.default.applications[0].nme: unknown field \"nme\" (did you mean "
                           "\"name\"?); spec.default.foo: unknown field \"foo\"; "
                           "spec.default.applications.application[0]: " PORT_MSG);
    assert_int_equal(warns.len, 0);
    free(e);
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    /* Strict and otherwise valid: invalid, without Kuma's deprecations. */
    json_t *ok = meshmetric(NULL, "{targetRef: {kind: MeshSubset}, default: {x: 1}}");
    assert_false(meshmetric_validate_ex(ok, "kuma-system", true, &errs, &warns));
    assert_int_equal(errs.len, 1);
    assert_int_equal(warns.len, 0);
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    json_decref(ok);
    json_decref(mm);
}

static void test_did_you_mean(void **state)
{
    (void)state;
    static const char *const fields[] = {"port", "path", "clientId", "tls"};
    static const struct {
        const char *key, *want;
    } cases[] = {
        {"prot", "port"},       {"PORT", "port"},     {"paht", "path"},  {"pth", "path"},
        {"clientid", "clientId"}, {"clientIdd", "clientId"}, {"clinetId", "clientId"},
        {"tsl", "tls"},         {"ttl", NULL},       {"x", NULL},       {"", NULL},
        {"portal", "port"},     {"portable", NULL},   {"clientName", NULL}, {"p", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = meshmetric_did_you_mean(cases[i].key, fields, 4);
        if (cases[i].want ? !got || strcmp(got, cases[i].want) : got != NULL)
            fail_msg("%s: got %s, want %s", cases[i].key, got ? got : "NULL",
                     cases[i].want ? cases[i].want : "NULL");
    }
    assert_null(meshmetric_did_you_mean(NULL, fields, 4));
    assert_null(meshmetric_did_you_mean("port", fields, 0));
    char longkey[200];
    memset(longkey, 'p', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_null(meshmetric_did_you_mean(longkey, fields, 4));
}

/*
 * openTelemetry.refreshInterval decodes as a metav1.Duration, whose
 * UnmarshalJSON calls Go's time.ParseDuration (time/format.go); its error is
 * what Kuma's webhook returns. Expected texts follow ParseDuration and
 * time.quote line by line.
 */
static void test_refresh_interval(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        const char *error; /* NULL = parses */
    } cases[] = {
        {"1m", NULL},
        {"30s", NULL},
        {"1h30m", NULL},
        {"1.5h", NULL},
        {".5s", NULL},
        {"5.s", NULL},
        {"0", NULL},
        {"-0", NULL},
        {"+5m", NULL},
        {"-1s", NULL},
        {"1\xc2\xb5s", NULL},
        {"1\xce\xbcs", NULL},
        {"3ns4us5ms", NULL},
        {"9223372036854775807ns", NULL},
        {"-9223372036854775808ns", NULL},
        {"", "time: invalid duration \"\""},
        {"abc", "time: invalid duration \"abc\""},
        {"1", "time: missing unit in duration \"1\""},
        {"1m2", "time: missing unit in duration \"1m2\""},
        {"1d", "time: unknown unit \"d\" in duration \"1d\""},
        {"1 minute", "time: unknown unit \" minute\" in duration \"1 minute\""},
        {".", "time: invalid duration \".\""},
        {"-", "time: invalid duration \"-\""},
        {"-.s", "time: invalid duration \"-.s\""},
        {"9223372036854775808ns", "time: invalid duration \"9223372036854775808ns\""},
        {"100000000000000000000ns", "time: invalid duration \"100000000000000000000ns\""},
        {"3000000h", "time: invalid duration \"3000000h\""},
        {"1\xc3\xa9", "time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\""},
        {"1s\n", "time: unknown unit \"s\\x0a\" in duration \"1s\\x0a\""},
        {"1\xff", "time: unknown unit \"\\xff\" in duration \"1\\xff\""},
        {"1\"q\\", "time: unknown unit \"\\\"q\\\\\" in duration \"1\\\"q\\\\\""},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *mm = meshmetric(NULL, "{default: {backends: [{type: OpenTelemetry, openTelemetry: "
                                      "{backendRef: {kind: MeshOpenTelemetryBackend, labels: {a: "
                                      "b}}}}]}}");
        json_t *otel = json_object_get(
            json_array_get(
                json_object_get(json_object_get(json_object_get(mm, "spec"), "default"),
                                "backends"),
                0),
            "openTelemetry");
        /* nocheck: the invalid UTF-8 case (the apiserver never sends one; Go would quote it so) */
        json_object_set_new(otel, "refreshInterval", json_string_nocheck(cases[i].value));
        struct violations errs;
        violations_init(&errs);
        bool ok = meshmetric_validate(mm, "kuma-system", &errs, NULL);
        char *e = violations_join(&errs);
        char *want = cases[i].error
                         ? xasprintf("spec.default.backends[0].openTelemetry.refreshInterval: %s",
                                     cases[i].error)
                         : xstrdup("");
        if (ok != (cases[i].error == NULL) || strcmp(e, want) != 0) {
            print_error("refreshInterval %s:\n  got  %s\n  want %s\n", cases[i].value, e, want);
            failures++;
        }
        free(want);
        free(e);
        violations_cleanup(&errs);
        json_decref(mm);
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structural),      cmocka_unit_test(test_kuma_rules),
        cmocka_unit_test(test_kuma_only),       cmocka_unit_test(test_objects),
        cmocka_unit_test(test_fixtures),        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_mesh_label),      cmocka_unit_test(test_unknown_field_cap),
        cmocka_unit_test(test_warning_lengths), cmocka_unit_test(test_wrong_types_everywhere),
        cmocka_unit_test(test_many_backends),   cmocka_unit_test(test_deep_junk),
        cmocka_unit_test(test_crd_schema),      cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_validate_strict), cmocka_unit_test(test_did_you_mean),
        cmocka_unit_test(test_refresh_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
