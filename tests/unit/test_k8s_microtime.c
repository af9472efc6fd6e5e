/*
 * Unit tests for src/k8s/microtime.c: metav1.MicroTime formatting (UTC, six
 * fractional digits, "2006-01-02T15:04:05.000000Z") and RFC 3339 parsing as
 * Go's time.Parse(RFC3339Micro) accepts it. Expected values computed with
 * Python's datetime (UTC).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k8s/microtime.h"

struct fmt_case {
    int64_t us;
    const char *micro;
    const char *secs;
};

/* clang-format off */
static const struct fmt_case fmt_cases[] = {
    {0, "1970-01-01T00:00:00.000000Z", "1970-01-01T00:00:00Z"},
    {1, "1970-01-01T00:00:00.000001Z", "1970-01-01T00:00:00Z"},
    {1735689600123456, "2025-01-01T00:00:00.123456Z", "2025-01-01T00:00:00Z"},
    {1709208000999999, "2024-02-29T12:00:00.999999Z", "2024-02-29T12:00:00Z"},
    {-1, "1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59Z"},
    {253402300799999999, "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59Z"},
};
/* clang-format on */

static void test_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fmt_cases / sizeof fmt_cases[0]; i++) {
        char buf[K8S_MICROTIME_LEN];
        k8s_microtime_format(fmt_cases[i].us, buf);
        assert_string_equal(buf, fmt_cases[i].micro);
        assert_int_equal(strlen(buf), 27);
        k8s_time_format(fmt_cases[i].us, buf);
        assert_string_equal(buf, fmt_cases[i].secs);
    }
}

struct parse_case {
    const char *in;
    enum mm_status want;
    int64_t us;
};

/* clang-format off */
static const struct parse_case parse_cases[] = {
    {"2025-01-01T00:00:00.123456Z", MM_OK, 1735689600123456},
    {"2025-01-01T00:00:00Z", MM_OK, 1735689600000000},
    {"2025-01-01T00:00:00.1Z", MM_OK, 1735689600100000},
    {"2025-01-01T00:00:00.123456789Z", MM_OK, 1735689600123456}, /* nanoseconds truncated */
    {"2025-01-01T02:00:00.5+02:00", MM_OK, 1735689600500000},
    {"2024-12-31T18:30:00-05:30", MM_OK, 1735689600000000},
    {"2025-01-01t00:00:00z", MM_OK, 1735689600000000},
    {"2024-02-29T12:00:00.999999Z", MM_OK, 1709208000999999},
    {"1969-12-31T23:59:59.999999Z", MM_OK, -1},
    {"", MM_ERR_PARSE, 0},
    {"2025-01-01", MM_ERR_PARSE, 0},
    {"2025-01-01 00:00:00Z", MM_ERR_PARSE, 0},
    {"2025-01-01T00:00:00", MM_ERR_PARSE, 0},      /* no zone */
    {"2025-13-01T00:00:00Z", MM_ERR_PARSE, 0},
    {"2025-02-29T00:00:00Z", MM_ERR_PARSE, 0},     /* not a leap year */
    {"2025-01-01T24:00:00Z", MM_ERR_PARSE, 0},
    {"2025-01-01T00:60:00Z", MM_ERR_PARSE, 0},
    {"2025-01-01T00:00:00.Z", MM_ERR_PARSE, 0},    /* a dot without digits */
    {"2025-01-01T00:00:00.1234567890Z", MM_ERR_PARSE, 0},
    {"2025-01-01T00:00:00Zjunk", MM_ERR_PARSE, 0},
    {"2025-01-01T00:00:00+0200", MM_ERR_PARSE, 0}, /* RFC 3339 needs the colon */
    {"25-01-01T00:00:00Z", MM_ERR_PARSE, 0},
};
/* clang-format on */

static void test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        int64_t us = 77;
        struct mm_error err;
        mm_error_clear(&err);
        enum mm_status rc = k8s_microtime_parse(parse_cases[i].in, &us, &err);
        if (rc != parse_cases[i].want)
            fail_msg("%s: got %s", parse_cases[i].in, mm_status_name(rc));
        if (rc == MM_OK)
            assert_int_equal(us, parse_cases[i].us);
        else
            assert_non_null(strstr(err.message, "is not RFC 3339"));
    }
    int64_t us;
    assert_int_equal(k8s_microtime_parse(NULL, &us, NULL), MM_ERR_PARSE);
}

static void test_round_trip(void **state)
{
    (void)state;
    uint64_t x = 1;
    for (int i = 0; i < 2000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int64_t v = (int64_t)(x % 253402300799999999ull) - 62135596800000000LL / 100;
        char buf[K8S_MICROTIME_LEN];
        k8s_microtime_format(v, buf);
        int64_t back = 0;
        assert_int_equal(k8s_microtime_parse(buf, &back, NULL), MM_OK);
        assert_int_equal(back, v);
    }
    /* the wall clock is after 2020 and formats with six digits */
    char now[K8S_MICROTIME_LEN];
    k8s_microtime_format(k8s_wall_us(), now);
    assert_true(k8s_wall_us() > 1577836800000000LL);
    assert_int_equal(strlen(now), 27);
    assert_int_equal(now[19], '.');
    assert_int_equal(now[26], 'Z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
