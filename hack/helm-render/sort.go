package main

// Splitting and ordering rendered manifests as Helm 3 does
// (helm.sh/helm/v3/pkg/releaseutil: SplitManifests, SortManifests,
// InstallOrder): files in name order, partials and whitespace-only files
// skipped, documents split on "---" lines, trimmed, empty ones dropped,
// every document parsed (a YAML error names the file), hooks set apart, then
// a stable sort by kind in install order (unknown kinds last, by kind name).

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver"
	"sigs.k8s.io/yaml"
)

var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
	"ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
	"CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
	"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
	"APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
}

var sepRegexp = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

func newSourceRegexp() *regexp.Regexp { return regexp.MustCompile("# Source: [^/]+/(.+)") }

// splitManifests is releaseutil.SplitManifests, returned in document order.
func splitManifests(bigFile string) []string {
	var out []string
	for _, d := range sepRegexp.Split(bigFile, -1) {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		out = append(out, d)
	}
	return out
}

type simpleHead struct {
	Version  string `json:"apiVersion"`
	Kind     string `json:"kind,omitempty"`
	Metadata *struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata,omitempty"`
}

func sortManifests(files map[string]string) ([]manifest, []manifest, error) {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var hooks, generic []manifest
	for _, n := range names {
		content := files[n]
		if strings.HasPrefix(path.Base(n), "_") || strings.HasSuffix(n, "NOTES.txt") {
			continue
		}
		if strings.TrimSpace(content) == "" {
			continue
		}
		for _, d := range splitManifests(content) {
			var h simpleHead
			if err := yaml.Unmarshal([]byte(d), &h); err != nil {
				return nil, nil, fmt.Errorf("YAML parse error on %s: %w", n, err)
			}
			m := manifest{Name: n, Content: d, Kind: h.Kind}
			if h.Metadata != nil && h.Metadata.Annotations["helm.sh/hook"] != "" {
				m.Hook = true
				hooks = append(hooks, m)
			} else {
				generic = append(generic, m)
			}
		}
	}
	return sortByKind(hooks), sortByKind(generic), nil
}

func sortByKind(ms []manifest) []manifest {
	ordering := map[string]int{}
	for i, k := range installOrder {
		ordering[k] = i
	}
	sort.SliceStable(ms, func(i, j int) bool {
		a, aok := ordering[ms[i].Kind]
		b, bok := ordering[ms[j].Kind]
		if !aok && !bok {
			if ms[i].Kind != ms[j].Kind {
				return ms[i].Kind < ms[j].Kind
			}
			return a < b
		}
		if !aok {
			return false
		}
		if !bok {
			return true
		}
		return a < b
	})
	return ms
}

func semverCheck(constraint, version string) (bool, error) {
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return false, fmt.Errorf("invalid kubeVersion constraint %q: %w", constraint, err)
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return false, err
	}
	return c.Check(v), nil
}
