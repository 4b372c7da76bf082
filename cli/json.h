/*
 * json.h - the few JSON writing helpers tlspolicyctl needs
 */
#ifndef TP_JSON_H
#define TP_JSON_H

#include <stdio.h>

/* json_str - s as a JSON string, or null when s is NULL */
void json_str(FILE *f, const char *s);

/* json_kv - "key": "value" with an optional leading comma */
void json_kv(FILE *f, int comma, const char *key, const char *value);

#endif
