/* text_tools: an example mnemod plugin in C11 against mnemo_plugin.h.
 *
 *   word_count {"text": string}  -> {"words": N}
 *   reverse    {"text": string}  -> the text, code points reversed
 *   greet      {"name": string}  -> "<greeting>, <name>!" (greeting from the config)
 *   sleep_ms   {"ms": integer}   -> {"slept_ms": N}, giving up when cancelled
 *
 * Config: {"greeting": string} (default "Hello").
 * Stateless apart from the config, so calls may run concurrently. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flat_json.h"
#include "mnemo_plugin.h"

/* Lets a test build a copy that claims another ABI; a real plugin just
 * uses MNEMO_PLUGIN_ABI_VERSION. */
#ifndef TEXT_TOOLS_ABI_VERSION
#define TEXT_TOOLS_ABI_VERSION MNEMO_PLUGIN_ABI_VERSION
#endif

#define MAX_SLEEP_MS 600000
#define MAX_GREETING 200

typedef struct {
  const mnemo_host_v1* host;
  char* greeting;
} text_tools;

static const char tools_json[] =
    "[{\"name\":\"word_count\",\"description\":\"Counts the whitespace-separated words of a text.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}},"
    "{\"name\":\"reverse\",\"description\":\"Reverses a text, character by character.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}},"
    "{\"name\":\"greet\",\"description\":\"Greets someone by name.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}},"
    "{\"name\":\"sleep_ms\",\"description\":\"Waits the given number of milliseconds.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"ms\":{\"type\":\"integer\",\"minimum\":0,"
    "\"maximum\":600000}},\"required\":[\"ms\"]}}]";

static char* copy_string(const char* s) {
  const size_t n = strlen(s) + 1;
  char* out = malloc(n);
  if (out) memcpy(out, s, n);
  return out;
}

static char* format(const char* fmt, long long a) {
  char buf[64];
  snprintf(buf, sizeof buf, fmt, a);
  return copy_string(buf);
}

static int cancelled(const volatile int* flag) {
#if defined(__GNUC__)
  return __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0;
#else
  return *flag != 0;
#endif
}

/* The one string field `key` and nothing else, or an error message. */
static const char* only_string(const fj_object* args, const char* key, const fj_field** out) {
  *out = fj_get(args, key);
  if (!*out || (*out)->type != FJ_STRING || args->count != 1) return "expected exactly one field, a string";
  return NULL;
}

static int word_count(const fj_field* text, char** result) {
  long long words = 0;
  int in_word = 0;
  for (size_t i = 0; i < text->len; ++i) {
    const char c = text->str[i];
    const int space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  *result = format("{\"words\":%lld}", words);
  return *result ? MNEMO_OK : MNEMO_ERR_NO_MEMORY;
}

/* Reverses by code point, so multi-byte characters stay whole. */
static int reverse(const fj_field* text, char** result) {
  char* out = malloc(text->len + 1);
  if (!out) return MNEMO_ERR_NO_MEMORY;
  size_t end = text->len, w = 0;
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && ((unsigned char)text->str[start] & 0xC0) == 0x80) --start;
    memcpy(out + w, text->str + start, end - start);
    w += end - start;
    end = start;
  }
  out[w] = '\0';
  *result = out;
  return MNEMO_OK;
}

static int greet(const text_tools* t, const fj_field* name, char** result) {
  const size_t g = strlen(t->greeting);
  char* out = malloc(g + name->len + 4);
  if (!out) return MNEMO_ERR_NO_MEMORY;
  memcpy(out, t->greeting, g);
  memcpy(out + g, ", ", 2);
  memcpy(out + g + 2, name->str, name->len);
  memcpy(out + g + 2 + name->len, "!", 2);
  *result = out;
  return MNEMO_OK;
}

static int sleep_ms(const fj_object* args, const volatile int* cancel, char** result) {
  const fj_field* ms = fj_get(args, "ms");
  if (!ms || ms->type != FJ_INTEGER || args->count != 1 || ms->number < 0 || ms->number > MAX_SLEEP_MS) {
    *result = copy_string("expected {\"ms\": integer from 0 to 600000}");
    return MNEMO_ERR_BAD_ARGUMENTS;
  }
  /* Small steps, so that a cancel is noticed within a few milliseconds. */
  long long slept = 0;
  while (slept < ms->number) {
    if (cancelled(cancel)) {
      *result = format("cancelled after %lld ms", slept);
      return MNEMO_ERR_CANCELLED;
    }
    const long long step = ms->number - slept < 5 ? ms->number - slept : 5;
    const struct timespec ts = {0, (long)(step * 1000000)};
    nanosleep(&ts, NULL);
    slept += step;
  }
  *result = format("{\"slept_ms\":%lld}", slept);
  return *result ? MNEMO_OK : MNEMO_ERR_NO_MEMORY;
}

static int tt_init(const mnemo_host_v1* host, const char* config_json, void** state, char** error) {
  fj_object config;
  const char* why = NULL;
  if (fj_parse(config_json, &config, &why) != 0) {
    char buf[160];
    snprintf(buf, sizeof buf, "config: %s", why);
    *error = copy_string(buf);
    return MNEMO_ERR_BAD_ARGUMENTS;
  }
  const fj_field* greeting = fj_get(&config, "greeting");
  if (config.count > (greeting ? 1u : 0u) || (greeting && (greeting->type != FJ_STRING || greeting->len > MAX_GREETING ||
                                                           strlen(greeting->str) != greeting->len))) {
    fj_free(&config);
    *error = copy_string("config: only \"greeting\" is accepted, a string of at most 200 bytes");
    return MNEMO_ERR_BAD_ARGUMENTS;
  }
  text_tools* t = calloc(1, sizeof *t);
  if (t) t->greeting = copy_string(greeting ? greeting->str : "Hello");
  fj_free(&config);
  if (!t || !t->greeting) {
    if (t) free(t);
    *error = NULL;
    return MNEMO_ERR_NO_MEMORY;
  }
  t->host = host;
  char line[MAX_GREETING + 64];
  snprintf(line, sizeof line, "text_tools ready, greeting \"%s\"", t->greeting);
  host->log(host, MNEMO_LOG_INFO, line);
  *state = t;
  return MNEMO_OK;
}

static int tt_list_tools(void* state, char** tools, char** error) {
  (void)state;
  *tools = copy_string(tools_json);
  *error = NULL;
  return *tools ? MNEMO_OK : MNEMO_ERR_NO_MEMORY;
}

static int tt_call(void* state, const char* tool, const char* arguments_json, long timeout_ms,
                   const volatile int* cancel, char** result, int* is_error) {
  const text_tools* t = state;
  (void)timeout_ms;  /* sleep_ms watches the cancel flag instead: the host sets it at the deadline */
  *is_error = 0;
  *result = NULL;
  fj_object args;
  const char* why = NULL;
  if (fj_parse(arguments_json, &args, &why) != 0) {
    *result = copy_string(why);
    return MNEMO_ERR_BAD_ARGUMENTS;
  }
  int rc = MNEMO_OK;
  const fj_field* field = NULL;
  if (strcmp(tool, "sleep_ms") == 0) {
    rc = sleep_ms(&args, cancel, result);
  } else if (strcmp(tool, "word_count") == 0 || strcmp(tool, "reverse") == 0 || strcmp(tool, "greet") == 0) {
    const char* bad = only_string(&args, tool[0] == 'g' ? "name" : "text", &field);
    if (bad) {
      *result = copy_string(bad);
      rc = MNEMO_ERR_BAD_ARGUMENTS;
    } else if (tool[0] == 'w') {
      rc = word_count(field, result);
    } else if (tool[0] == 'r') {
      rc = reverse(field, result);
    } else {
      rc = greet(t, field, result);
    }
  } else {
    *result = copy_string("no such tool");
    rc = MNEMO_ERR_UNKNOWN_TOOL;
  }
  fj_free(&args);
  return rc;
}

static void tt_free_string(char* s) { free(s); }

static void tt_shutdown(void* state) {
  text_tools* t = state;
  if (!t) return;
  t->host->log(t->host, MNEMO_LOG_INFO, "text_tools shut down");
  free(t->greeting);
  free(t);
}

static const mnemo_plugin_v1 plugin = {
    sizeof(mnemo_plugin_v1), TEXT_TOOLS_ABI_VERSION, MNEMO_PLUGIN_THREAD_SAFE, "text_tools",
    tt_init, tt_list_tools, tt_call, tt_free_string, tt_shutdown,
};

MNEMO_PLUGIN_EXPORT const mnemo_plugin_v1* mnemo_plugin_entry(const mnemo_host_v1* host) {
  if (!host || host->abi_version < 1 || host->struct_size < sizeof(mnemo_host_v1)) return NULL;
  return &plugin;
}
