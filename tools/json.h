#ifndef SP_TOOLS_JSON_H
#define SP_TOOLS_JSON_H
#include <stdio.h>
/* Writes s as a JSON string (quotes included), escaping quotes,
 * backslashes and control characters. */
void spindle_json_string(FILE *f, const char *s);
#endif
