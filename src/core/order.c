/* SortByTargetRef (see order.h). */
#include "core/order.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

int order_kind_rank(const char *kind)
{
    static const struct {
        const char *kind;
        int rank;
    } order[] = {
        {"Mesh", 1},
        {"Dataplane", 2},
        {"MeshSubset", 3},
        {"MeshGateway", 4},
        {"MeshService", 5},
        {"MeshExternalService", 6},
        {"MeshMultiZoneService", 7},
        {"MeshServiceSubset", 8},
        {"MeshHTTPRoute", 9},
    };
    for (size_t i = 0; kind && i < sizeof order / sizeof *order; i++)
        if (!strcmp(kind, order[i].kind))
            return order[i].rank;
    return 0; /* a Go map lookup of an unknown key */
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

/* CompareDataplaneKind: name beats labels, then sectionName beats none. */
static int dataplane_specificity_cmp(const struct policy_target *a, const struct policy_target *b)
{
    bool a_name = *a->name, b_name = *b->name;
    bool a_labels = a->labels != NULL, b_labels = b->labels != NULL;
    if (a_name && b_labels)
        return 1;
    if (a_labels && b_name)
        return -1;
    return (int)(*a->section_name != '\0') - (int)(*b->section_name != '\0');
}

/* ResourceOrigin.Compare's originOrder: global 1, none 2, zone 3; any other value is
 * not in the map and ranks 0. */
static int origin_rank(const struct policy *p)
{
    const char *o = p->labels.origin;
    if (!o || !*o)
        return 2;
    if (!strcmp(o, "global"))
        return 1;
    if (!strcmp(o, "zone"))
        return 3;
    return 0;
}

int order_compare(const struct policy *a, const struct policy *b)
{
    const struct policy_target *ta = &a->target, *tb = &b->target;
    int d = ta->kind_rank - tb->kind_rank;
    if (d)
        return sign(d);
    if (ta->kind == TARGET_DATAPLANE && tb->kind == TARGET_DATAPLANE) {
        d = dataplane_specificity_cmp(ta, tb);
        if (d)
            return sign(d);
    }
    d = origin_rank(a) - origin_rank(b);
    if (d)
        return sign(d);
    if (ta->kind == TARGET_MESH_GATEWAY) {
        size_t na = json_object_size(ta->tags), nb = json_object_size(tb->tags);
        if (na != nb)
            return na < nb ? -1 : 1;
    }
    d = (int)a->labels.role - (int)b->labels.role;
    if (d)
        return sign(d);
    /* Inverted: the lexicographically smallest name has the highest priority. Then
     * nothing: Kuma's comparison ends here (no namespace, no KRI) and its sort
     * (slices.SortFunc) is not stable; order_sort keeps the input order of ties. */
    return sign(strcmp(b->labels.display_name, a->labels.display_name));
}

static void merge_sort(const struct policy **items, const struct policy **tmp, size_t n)
{
    if (n < 2)
        return;
    size_t mid = n / 2;
    merge_sort(items, tmp, mid);
    merge_sort(items + mid, tmp, n - mid);
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n)
        tmp[k++] = order_compare(items[j], items[i]) < 0 ? items[j++] : items[i++];
    while (i < mid)
        tmp[k++] = items[i++];
    while (j < n)
        tmp[k++] = items[j++];
    memcpy(items, tmp, n * sizeof *items);
}

void order_sort(const struct policy **items, size_t n)
{
    if (n < 2)
        return;
    const struct policy **tmp = xmalloc(n * sizeof *tmp);
    merge_sort(items, tmp, n);
    free(tmp);
}
