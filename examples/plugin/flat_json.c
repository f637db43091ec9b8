#include "flat_json.h"

#include <stdlib.h>
#include <string.h>

/* More would not be an argument list of any tool here. */
#define FJ_MAX_FIELDS 32

typedef struct {
  const char* p;
  const char* error;
} cursor;

static void skip_ws(cursor* c) {
  while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r') ++c->p;
}

static int fail(cursor* c, const char* message) {
  if (!c->error) c->error = message;
  return -1;
}

static int hex4(const char* p, unsigned* out) {
  unsigned v = 0;
  for (int i = 0; i < 4; ++i) {
    const char h = p[i];
    v <<= 4;
    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char* out, unsigned cp) {
  if (cp < 0x80) { out[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* At a '"': decodes the string into a new buffer. Decoding never grows the
 * text, so the rest of the input bounds its size. */
static int parse_string(cursor* c, char** out, size_t* len) {
  ++c->p;
  char* buf = malloc(strlen(c->p) + 1);
  if (!buf) return fail(c, "out of memory");
  size_t n = 0;
  for (;;) {
    const unsigned char ch = (unsigned char)*c->p;
    if (ch == '"') break;
    if (ch == '\0') { free(buf); return fail(c, "unterminated string"); }
    if (ch < 0x20) { free(buf); return fail(c, "control character in a string"); }
    if (ch != '\\') { buf[n++] = (char)ch; ++c->p; continue; }
    const char e = c->p[1];
    c->p += 2;
    switch (e) {
      case '"': buf[n++] = '"'; break;
      case '\\': buf[n++] = '\\'; break;
      case '/': buf[n++] = '/'; break;
      case 'b': buf[n++] = '\b'; break;
      case 'f': buf[n++] = '\f'; break;
      case 'n': buf[n++] = '\n'; break;
      case 'r': buf[n++] = '\r'; break;
      case 't': buf[n++] = '\t'; break;
      case 'u': {
        unsigned cp, lo;
        if (hex4(c->p, &cp) != 0) { free(buf); return fail(c, "bad \\u escape"); }
        c->p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) { free(buf); return fail(c, "lone low surrogate"); }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (c->p[0] != '\\' || c->p[1] != 'u' || hex4(c->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
            free(buf);
            return fail(c, "lone high surrogate");
          }
          c->p += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        n += put_utf8(buf + n, cp);
        break;
      }
      default: free(buf); return fail(c, "bad escape in a string");
    }
  }
  ++c->p;
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

static int parse_integer(cursor* c, long long* out) {
  int negative = 0;
  if (*c->p == '-') { negative = 1; ++c->p; }
  if (*c->p < '0' || *c->p > '9') return fail(c, "bad number");
  if (*c->p == '0' && c->p[1] >= '0' && c->p[1] <= '9') return fail(c, "leading zero in a number");
  long long v = 0;
  int digits = 0;
  while (*c->p >= '0' && *c->p <= '9') {
    if (++digits > 18) return fail(c, "integer too large");
    v = v * 10 + (*c->p++ - '0');
  }
  if (*c->p == '.' || *c->p == 'e' || *c->p == 'E') return fail(c, "only integers are accepted");
  *out = negative ? -v : v;
  return 0;
}

static int parse_literal(cursor* c, const char* word) {
  const size_t n = strlen(word);
  if (strncmp(c->p, word, n) != 0) return fail(c, "unexpected character");
  c->p += n;
  return 0;
}

static int parse_value(cursor* c, fj_field* f) {
  const char ch = *c->p;
  if (ch == '"') { f->type = FJ_STRING; return parse_string(c, &f->str, &f->len); }
  if (ch == '-' || (ch >= '0' && ch <= '9')) { f->type = FJ_INTEGER; return parse_integer(c, &f->number); }
  if (ch == 't') { f->type = FJ_BOOL; f->number = 1; return parse_literal(c, "true"); }
  if (ch == 'f') { f->type = FJ_BOOL; f->number = 0; return parse_literal(c, "false"); }
  if (ch == 'n') { f->type = FJ_NULL; return parse_literal(c, "null"); }
  if (ch == '{' || ch == '[') return fail(c, "nested objects and arrays are not accepted");
  return fail(c, "unexpected character");
}

void fj_free(fj_object* obj) {
  for (size_t i = 0; i < obj->count; ++i) {
    free(obj->fields[i].key);
    free(obj->fields[i].str);
  }
  free(obj->fields);
  obj->fields = NULL;
  obj->count = 0;
}

const fj_field* fj_get(const fj_object* obj, const char* key) {
  for (size_t i = 0; i < obj->count; ++i)
    if (strcmp(obj->fields[i].key, key) == 0) return &obj->fields[i];
  return NULL;
}

static int parse_members(cursor* c, fj_object* out) {
  skip_ws(c);
  if (*c->p++ != '{') return fail(c, "expected a JSON object");
  skip_ws(c);
  if (*c->p == '}') { ++c->p; return 0; }
  for (;;) {
    if (out->count == FJ_MAX_FIELDS) return fail(c, "too many fields");
    if (*c->p != '"') return fail(c, "expected a field name");
    fj_field* f = &out->fields[out->count];
    memset(f, 0, sizeof *f);
    size_t key_len;
    if (parse_string(c, &f->key, &key_len) != 0) return -1;
    ++out->count;  /* owned by `out` from here, whatever follows */
    if (strlen(f->key) != key_len) return fail(c, "NUL in a field name");
    if (fj_get(&(fj_object){out->fields, out->count - 1}, f->key)) return fail(c, "duplicate field");
    skip_ws(c);
    if (*c->p++ != ':') return fail(c, "expected ':'");
    skip_ws(c);
    if (parse_value(c, f) != 0) return -1;
    skip_ws(c);
    if (*c->p == '}') { ++c->p; return 0; }
    if (*c->p++ != ',') return fail(c, "expected ',' or '}'");
    skip_ws(c);
  }
}

int fj_parse(const char* text, fj_object* out, const char** error) {
  cursor c = {text ? text : "", NULL};
  out->count = 0;
  out->fields = calloc(FJ_MAX_FIELDS, sizeof(fj_field));
  if (!out->fields) { *error = "out of memory"; return -1; }
  int rc = parse_members(&c, out);
  if (rc == 0) {
    skip_ws(&c);
    if (*c.p != '\0') rc = fail(&c, "text after the object");
  }
  if (rc != 0) {
    fj_free(out);
    *error = c.error;
  }
  return rc;
}
