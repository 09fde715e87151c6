/* Units on the command lines of `spindle load` and `spindle sweep`. */
#include <spindle/load.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A day: no load run is meant to be longer, and it keeps ns in range. */
#define DURATION_MAX_NS (86400.0 * 1e9)

int sp_load_parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9},
                 {"min", 60e9}, {"h", 3600e9}, {"", 1e9}};
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -EINVAL;
    char *end;
    double v = strtod(s, &end);
    if (end == s || isnan(v) || isinf(v) || v < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) == 0) {
            double x = v * units[i].ns;
            if (x > DURATION_MAX_NS)
                return -EINVAL;
            *ns = (int64_t)(x + 0.5);
            return 0;
        }
    }
    return -EINVAL;
}
