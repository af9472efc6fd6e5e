"""Go time parsing and formatting as the apiserver uses it for metav1.Time and metav1.MicroTime.

Follows Go's time.Parse (src/time/format.go) for the two layouts the apimachinery types use,
apimachinery pkg/apis/meta/v1/time.go (time.RFC3339, seconds precision on output) and
pkg/apis/meta/v1/micro_time.go (RFC3339Micro "2006-01-02T15:04:05.000000Z07:00"), including the
error texts ("parsing time ... as ...: cannot parse ... as ...", "... out of range",
"extra text"). Also HumanDuration from apimachinery pkg/util/duration/duration.go.
"""
import calendar
import datetime

RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"

# the layout chunks of the two layouts: (literal prefix, std element)
_CHUNKS = {
    RFC3339: [("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05"),
              ("", "Z07:00"), ("", None)],
    RFC3339_MICRO: [("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05"),
                    ("", ".000000"), ("", "Z07:00"), ("", None)],
}


class GoTimeError(ValueError):
    pass


def go_quote(s):
    """time.quote: double quotes, \\ and " escaped, bytes outside printable ASCII as \\xNN."""
    out = ['"']
    for ch in s:
        if ord(ch) >= 0x80 or ch < " ":
            for b in ch.encode("utf-8", "surrogatepass"):
                out.append("\\x%02x" % b)
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)


def _err(layout, value, layout_elem, value_elem, message=""):
    if message:
        return GoTimeError("parsing time " + go_quote(value) + message)
    return GoTimeError("parsing time %s as %s: cannot parse %s as %s" % (
        go_quote(value), go_quote(layout), go_quote(value_elem), go_quote(layout_elem)))


def _isdigit(s, i):
    return len(s) > i and "0" <= s[i] <= "9"


def _getnum(s, fixed):
    if not _isdigit(s, 0):
        return 0, s, False
    if not _isdigit(s, 1):
        if fixed:
            return 0, s, False
        return int(s[0]), s[1:], True
    return int(s[:2]), s[2:], True


def _atoi(s):
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if not s or not s.isdigit() or not s.isascii():
        return None
    x = int(s)
    return -x if neg else x


def _parse_nanos(value, nbytes):
    """parseNanoseconds: returns (ns, range_err, ok)."""
    if value[0] not in ".,":
        return 0, "", False
    if nbytes > 10:
        value, nbytes = value[:10], 10
    ns = _atoi(value[1:nbytes])
    if ns is None:
        return 0, "", False
    if ns < 0:
        return 0, "fractional second", True
    return ns * 10 ** (10 - nbytes), "", True


def parse(layout, value):
    """time.Parse(layout, value) for RFC3339 / RFC3339_MICRO. Returns (aware UTC datetime, nanoseconds).
    Raises GoTimeError with Go's message."""
    avalue = value
    year, month, day, hour, minute, sec, nsec = 0, 1, 1, 0, 0, 0, 0
    offset = None
    chunks = _CHUNKS[layout]
    for idx, (prefix, std) in enumerate(chunks):
        for ch in prefix:
            if not value or value[0] != ch:
                raise _err(layout, avalue, prefix, value)
            value = value[1:]
        if std is None:
            if value:
                raise _err(layout, avalue, "", value, ": extra text: " + go_quote(value))
            break
        hold = value
        ok = True
        range_err = ""
        if std == "2006":
            if len(value) < 4 or not _isdigit(value, 0):
                ok = False
            else:
                y = _atoi(value[:4])
                value = value[4:]
                if y is None:
                    ok = False
                else:
                    year = y
        elif std == "01":
            month, value, ok = _getnum(value, True)
            if ok and not 1 <= month <= 12:
                range_err = "month"
        elif std == "02":
            day, value, ok = _getnum(value, True)
        elif std == "15":
            hour, value, ok = _getnum(value, False)
            if not 0 <= hour < 24:
                range_err = "hour"
        elif std == "04":
            minute, value, ok = _getnum(value, True)
            if not 0 <= minute < 60:
                range_err = "minute"
        elif std == "05":
            sec, value, ok = _getnum(value, True)
            if ok:
                if not 0 <= sec < 60:
                    range_err = "second"
                elif len(value) >= 2 and value[0] in ".," and _isdigit(value, 1) and chunks[idx + 1][1] != ".000000":
                    n = 2
                    while n < len(value) and _isdigit(value, n):
                        n += 1
                    nsec, range_err, ok = _parse_nanos(value, n)
                    value = value[n:]
        elif std == ".000000":
            if len(value) < 7:
                ok = False
            else:
                nsec, range_err, ok = _parse_nanos(value, 7)
                value = value[7:]
        elif std == "Z07:00":
            if value[:1] == "Z":
                value = value[1:]
                offset = 0
            elif len(value) < 6 or value[3] != ":":
                ok = False
            else:
                sign, hh, mm, value = value[0], value[1:3], value[4:6], value[6:]
                hr, _, ok = _getnum(hh, True)
                mi = 0
                if ok:
                    mi, _, ok = _getnum(mm, True)
                if hr > 24:
                    range_err = "time zone offset hour"
                if mi > 60:
                    range_err = "time zone offset minute"
                offset = (hr * 60 + mi) * 60
                if sign == "-":
                    offset = -offset
                elif sign != "+":
                    ok = False
        if range_err:
            raise _err(layout, avalue, std, value, ": " + range_err + " out of range")
        if not ok:
            raise _err(layout, avalue, std, hold)
    if day < 1 or day > _days_in(month, year):
        raise _err(layout, avalue, "", value, ": day out of range")
    # years outside datetime's range cannot be represented; Go would accept them
    y = min(max(year, 1), 9999)
    dt = datetime.datetime(y, month, day, hour, minute, sec, tzinfo=datetime.timezone.utc)
    dt = dt - datetime.timedelta(seconds=offset or 0)
    return dt, nsec


def _days_in(month, year):
    if month == 2:
        return 29 if calendar.isleap(year) else 28
    return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]


def format_time(dt):
    """metav1.Time.MarshalJSON: UTC, RFC3339, seconds precision."""
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro(dt, nsec):
    """metav1.MicroTime.MarshalJSON: UTC, six fractional digits (truncated)."""
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (nsec // 1000)


def parse_any_rfc3339(s):
    """Lenient parse for display purposes (ages): returns an aware datetime or None."""
    for layout in (RFC3339, RFC3339_MICRO):
        try:
            return parse(layout, s)[0]
        except (GoTimeError, TypeError, IndexError):
            continue
    return None


def human_duration(seconds):
    """apimachinery pkg/util/duration HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return "%ds" % s
    minutes = s // 60
    if minutes < 10:
        r = s % 60
        return "%dm" % minutes if r == 0 else "%dm%ds" % (minutes, r)
    if minutes < 180:
        return "%dm" % minutes
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return "%dh" % hours if m == 0 else "%dh%dm" % (hours, m)
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        h = hours % 24
        return "%dd" % (hours // 24) if h == 0 else "%dd%dh" % (hours // 24, h)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return "%dy" % (hours // 24 // 365) if dy == 0 else "%dy%dd" % (hours // 24 // 365, dy)
    return "%dy" % (hours // 24 // 365)


def age(ts):
    """translateTimestampSince / ConvertToHumanReadableDateType: "<unknown>" when unset."""
    if not ts or not isinstance(ts, str):
        return "<unknown>"
    dt = parse_any_rfc3339(ts)
    if dt is None:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - dt).total_seconds())
