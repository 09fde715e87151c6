/* HTTP dates (RFC 9110 §5.6.7): formatting with a per-owner cache, and
 * parsing of the three forms.  Calendar arithmetic is done here (Howard
 * Hinnant's days/civil algorithms) rather than with gmtime_r/timegm, so it
 * never touches the time-zone state and costs no locks. */
#include <errno.h>
#include <string.h>

#include "http_internal.h"

#define SECS_PER_DAY 86400
/* Days from 0000-03-01 to 1970-01-01, the shift that makes the era
 * arithmetic below start on a March (leap days fall at the end). */
#define EPOCH_SHIFT_DAYS 719468
#define DAYS_PER_ERA 146097 /* 400 Gregorian years */
/* Years an IMF-fixdate can show: four digits. */
#define YEAR_MIN 0
#define YEAR_MAX 9999

static const char WDAY[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char MONTH[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
static const char *const WDAY_LONG[7] = { "Sunday", "Monday", "Tuesday",
                                          "Wednesday", "Thursday", "Friday",
                                          "Saturday" };

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * DAYS_PER_ERA + (int64_t)doe - EPOCH_SHIFT_DAYS;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += EPOCH_SHIFT_DAYS;
    era = (z >= 0 ? z : z - (DAYS_PER_ERA - 1)) / DAYS_PER_ERA;
    doe = (unsigned)(z - era * DAYS_PER_ERA);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *o, unsigned v)
{
    o[0] = (char)('0' + v / 10 % 10);
    o[1] = (char)('0' + v % 10);
}

size_t sp_http_format_date(char out[SP_HTTP_DATE_LEN + 1], int64_t t)
{
    int64_t lo = days_from_civil(YEAR_MIN, 1, 1) * SECS_PER_DAY;
    int64_t hi = days_from_civil(YEAR_MAX, 12, 31) * SECS_PER_DAY + SECS_PER_DAY - 1;
    int64_t days, secs, y;
    unsigned m, d, wd;

    if (t < lo)
        t = lo;
    if (t > hi)
        t = hi;
    days = t / SECS_PER_DAY;
    secs = t % SECS_PER_DAY;
    if (secs < 0) {
        secs += SECS_PER_DAY;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    wd = (unsigned)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */

    memcpy(out, WDAY[wd], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, d);
    out[7] = ' ';
    memcpy(out + 8, MONTH[m - 1], 3);
    out[11] = ' ';
    put2(out + 12, (unsigned)(y / 100));
    put2(out + 14, (unsigned)(y % 100));
    out[16] = ' ';
    put2(out + 17, (unsigned)(secs / 3600));
    out[19] = ':';
    put2(out + 20, (unsigned)(secs / 60 % 60));
    out[22] = ':';
    put2(out + 23, (unsigned)(secs % 60));
    memcpy(out + 25, " GMT", 5); /* with the NUL */
    return SP_HTTP_DATE_LEN;
}

void sp_http_date_cache_init(sp_http_date_cache *c)
{
    c->sec = INT64_MIN;
    c->refreshes = 0;
    c->text[0] = '\0';
}

const char *sp_http_date_get(sp_http_date_cache *c, int64_t now)
{
    if (c->sec != now) {
        sp_http_format_date(c->text, now);
        c->sec = now;
        c->refreshes++;
    }
    return c->text;
}

/* ---- parsing ---- */

/* A cursor over a date string that is not NUL-terminated. */
struct cur {
    const char *p, *end;
};

static bool lit(struct cur *c, const char *s)
{
    size_t n = strlen(s);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool digits(struct cur *c, unsigned n, unsigned *v)
{
    unsigned i;

    *v = 0;
    if ((size_t)(c->end - c->p) < n)
        return false;
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned char)c->p[i] - '0';

        if (d > 9)
            return false;
        *v = *v * 10 + d;
    }
    c->p += n;
    return true;
}

static bool month(struct cur *c, unsigned *m)
{
    unsigned i;

    for (i = 0; i < 12; i++) {
        if (lit(c, MONTH[i])) {
            *m = i + 1;
            return true;
        }
    }
    return false;
}

static bool wday_short(struct cur *c)
{
    unsigned i;

    for (i = 0; i < 7; i++)
        if (lit(c, WDAY[i]))
            return true;
    return false;
}

static bool wday_long(struct cur *c)
{
    unsigned i;

    for (i = 0; i < 7; i++)
        if (lit(c, WDAY_LONG[i]))
            return true;
    return false;
}

/* time-of-day = hour ":" minute ":" second */
static bool tod(struct cur *c, unsigned *h, unsigned *mi, unsigned *s)
{
    return digits(c, 2, h) && lit(c, ":") && digits(c, 2, mi) &&
           lit(c, ":") && digits(c, 2, s);
}

static int finish(int64_t y, unsigned mo, unsigned d, unsigned h, unsigned mi,
                  unsigned s, int64_t *t)
{
    static const unsigned mdays[12] = { 31, 29, 31, 30, 31, 30,
                                        31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || s > 60)
        return -EINVAL;
    if (s == 60)
        s = 59; /* a leap second: the format allows it, time_t does not */
    *t = days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + s;
    return 0;
}

int sp_http_parse_date(const char *str, size_t len, int64_t *t)
{
    struct cur c = { str, str + len };
    unsigned d, mo, y, h, mi, s;

    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (wday_short(&c) && lit(&c, ", ")) {
        if (digits(&c, 2, &d) && lit(&c, " ") && month(&c, &mo) &&
            lit(&c, " ") && digits(&c, 4, &y) && lit(&c, " ") &&
            tod(&c, &h, &mi, &s) && lit(&c, " GMT") && c.p == c.end)
            return finish(y, mo, d, h, mi, s, t);
        return -EINVAL;
    }
    /* asctime: "Sun Nov  6 08:49:37 1994" */
    c.p = str;
    if (wday_short(&c) && lit(&c, " ")) {
        if (!month(&c, &mo) || !lit(&c, " "))
            return -EINVAL;
        if (lit(&c, " ")) {
            if (!digits(&c, 1, &d))
                return -EINVAL;
        } else if (!digits(&c, 2, &d)) {
            return -EINVAL;
        }
        if (lit(&c, " ") && tod(&c, &h, &mi, &s) && lit(&c, " ") &&
            digits(&c, 4, &y) && c.p == c.end)
            return finish(y, mo, d, h, mi, s, t);
        return -EINVAL;
    }
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT".  Two-digit years pivot as
     * POSIX %y does (69-99: 19xx, 00-68: 20xx); the sans-I/O core has no
     * clock for RFC 9110's "50 years in the future" rule. */
    c.p = str;
    if (wday_long(&c) && lit(&c, ", ") && digits(&c, 2, &d) && lit(&c, "-") &&
        month(&c, &mo) && lit(&c, "-") && digits(&c, 2, &y) && lit(&c, " ") &&
        tod(&c, &h, &mi, &s) && lit(&c, " GMT") && c.p == c.end)
        return finish(y + (y >= 69 ? 1900 : 2000), mo, d, h, mi, s, t);
    return -EINVAL;
}
