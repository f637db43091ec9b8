/* flat_json: parses the one JSON shape the example plugin accepts, a flat
 * object whose values are strings, integers, booleans or null. Anything
 * else (nesting, fractions, trailing text, duplicate keys) is rejected
 * with a message, never guessed at. */
#ifndef MNEMO_EXAMPLE_FLAT_JSON_H
#define MNEMO_EXAMPLE_FLAT_JSON_H

#include <stddef.h>

typedef enum { FJ_STRING, FJ_INTEGER, FJ_BOOL, FJ_NULL } fj_type;

typedef struct {
  char* key;        /* NUL-terminated */
  fj_type type;
  char* str;        /* FJ_STRING: the decoded UTF-8, NUL-terminated */
  size_t len;       /* FJ_STRING: bytes in str (it may hold \u0000) */
  long long number; /* FJ_INTEGER; FJ_BOOL: 0 or 1 */
} fj_field;

typedef struct {
  fj_field* fields;
  size_t count;
} fj_object;

/* 0 on success (free `out` with fj_free). Otherwise non-zero, `*error` is
 * a static message and `out` holds nothing to free. */
int fj_parse(const char* text, fj_object* out, const char** error);
void fj_free(fj_object* obj);
/* The field named `key`, or NULL. */
const fj_field* fj_get(const fj_object* obj, const char* key);

#endif
