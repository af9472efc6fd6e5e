#include "k8s/microtime.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void format(int64_t unix_us, char out[K8S_MICROTIME_LEN], int frac)
{
    int64_t secs = floor_div(unix_us, 1000000);
    int64_t us = unix_us - secs * 1000000;
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        snprintf(out, K8S_MICROTIME_LEN, "%s",
                 frac ? "0001-01-01T00:00:00.000000Z" : "0001-01-01T00:00:00Z");
        return;
    }
    /* Fields are range-checked above, so 27 characters always suffice; format into a larger
     * buffer to keep the compiler's truncation analysis quiet, then copy. */
    char buf[96];
    if (frac)
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)us);
    else
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(out, K8S_MICROTIME_LEN, "%.27s", buf);
}

void k8s_microtime_format(int64_t unix_us, char out[K8S_MICROTIME_LEN])
{
    format(unix_us, out, 1);
}

void k8s_time_format(int64_t unix_us, char out[K8S_MICROTIME_LEN])
{
    format(unix_us, out, 0);
}

/* n decimal digits at *p into *v; false if any is not a digit. */
static int digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return 0;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

enum mm_status k8s_microtime_parse(const char *text, int64_t *unix_us, struct mm_error *err)
{
    const char *p = text;
    int Y, M, D, h, mi, s;
    *unix_us = 0;
    if (!text)
        return mm_error_set(err, MM_ERR_PARSE, "", "missing time");
    if (!digits(&p, 4, &Y) || *p++ != '-' || !digits(&p, 2, &M) || *p++ != '-' ||
        !digits(&p, 2, &D) || (*p != 'T' && *p != 't'))
        goto bad;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
        !digits(&p, 2, &s))
        goto bad;
    if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || mi > 59 || s > 59)
        goto bad;
    long us = 0;
    if (*p == '.' || *p == ',') {
        p++;
        int n = 0;
        long scale = 100000;
        while (*p >= '0' && *p <= '9') {
            if (n < 6) {
                us += (*p - '0') * scale;
                scale /= 10;
            }
            n++;
            p++;
        }
        if (n == 0 || n > 9)
            goto bad;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om;
        p++;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
            goto bad;
        offset = sign * ((int64_t)oh * 3600 + om * 60);
    } else {
        goto bad;
    }
    if (*p)
        goto bad;
    int64_t secs = days_from_civil(Y, M, D) * 86400 + (int64_t)h * 3600 + mi * 60 + s - offset;
    *unix_us = secs * 1000000 + us;
    return MM_OK;
bad:
    return mm_error_set(err, MM_ERR_PARSE, "", "time \"%.64s\" is not RFC 3339 (want e.g. %s)",
                        text, "2006-01-02T15:04:05.000000Z");
}

int64_t k8s_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
