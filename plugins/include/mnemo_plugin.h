/*
 * mnemo_plugin.h: the stable C ABI between mnemod and a tool plugin (a
 * shared library). Plain C (C89 and later, and C++), no dependency beyond
 * the C library.
 *
 * Shape (after SQLite's loadable extensions and the Linux VFS ops tables):
 *   - the library exports one symbol, MNEMO_PLUGIN_ENTRY_SYMBOL, a function
 *     that receives the host's API and returns the plugin's table of
 *     function pointers;
 *   - each table begins with its size and ABI version, so that either side
 *     can tell what the other was built against;
 *   - memory is freed by the side that allocated it: every string a plugin
 *     hands out is released through its own free_string, and the host's
 *     strings are only borrowed for the duration of the call;
 *   - errors are return codes (MNEMO_OK or one of MNEMO_ERR_*) plus a
 *     message string.
 *
 * Lifecycle, as the host drives it:
 *   entry(host) -> init(host, config) -> list_tools(state)
 *   -> call(state, ...) any number of times, possibly concurrently
 *   -> shutdown(state) -> dlclose.
 * The host never unloads the library while one of its functions is running;
 * shutdown runs only after every call has returned (a call that ignores its
 * cancel flag keeps the library loaded until it does return).
 *
 * ABI rules: a version only ever appends fields to the end of a table;
 * removing or changing a field makes a new major version (a new struct
 * name, mnemo_plugin_v2). The host accepts the versions it knows.
 */
#ifndef MNEMO_PLUGIN_H
#define MNEMO_PLUGIN_H

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. */
#define MNEMO_PLUGIN_ABI_VERSION 1

/* The one symbol the host looks up, of type mnemo_plugin_entry_fn. */
#define MNEMO_PLUGIN_ENTRY_SYMBOL "mnemo_plugin_entry"

#if defined(_WIN32)
#define MNEMO_PLUGIN_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define MNEMO_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define MNEMO_PLUGIN_EXPORT
#endif

/* Return codes. Anything other than MNEMO_OK comes with a message (which
 * may be NULL when the plugin could not allocate one). */
#define MNEMO_OK 0
#define MNEMO_ERR 1               /* any other failure */
#define MNEMO_ERR_BAD_ARGUMENTS 2 /* the arguments (or config) were not what the tool accepts */
#define MNEMO_ERR_UNKNOWN_TOOL 3  /* no tool by that name */
#define MNEMO_ERR_CANCELLED 4     /* the call saw its cancel flag and stopped */
#define MNEMO_ERR_NO_MEMORY 5

/* Log levels for mnemo_host_v1.log. */
#define MNEMO_LOG_DEBUG 0
#define MNEMO_LOG_INFO 1
#define MNEMO_LOG_WARN 2
#define MNEMO_LOG_ERROR 3

/* mnemo_plugin_v1.flags */
/* call() may run on several threads at once for the same state. Without
 * this flag the host runs one call at a time. */
#define MNEMO_PLUGIN_THREAD_SAFE 1u

/* What the host offers the plugin. Owned by the host; valid from entry
 * until shutdown has returned. */
typedef struct mnemo_host_v1 {
  unsigned int struct_size; /* sizeof(mnemo_host_v1) as the host was built */
  unsigned int abi_version; /* the host's MNEMO_PLUGIN_ABI_VERSION */
  /* Writes one line to mnemod's log under the plugin's name. `message` is
   * borrowed (copied before return). Thread-safe; may be called from any
   * function of the plugin, on any thread. */
  void (*log)(const struct mnemo_host_v1* host, int level, const char* message);
  void* host_data; /* the host's; the plugin must not touch it */
} mnemo_host_v1;

/* What the plugin offers the host: a table of static lifetime (the host
 * never frees or writes it). */
typedef struct mnemo_plugin_v1 {
  unsigned int struct_size; /* sizeof(mnemo_plugin_v1) as the plugin was built */
  unsigned int abi_version; /* MNEMO_PLUGIN_ABI_VERSION the plugin was built against */
  unsigned int flags;       /* MNEMO_PLUGIN_THREAD_SAFE, ... */
  const char* name;         /* short static name for logs, e.g. "text_tools" */

  /* Creates the plugin's state from its configuration: the tools file's
   * "config" value as JSON text (an object; "{}" when absent). On success
   * returns MNEMO_OK and sets *state (may be NULL if the plugin keeps none).
   * On failure returns an error code and sets *error to a message the
   * host frees with free_string (or NULL). `host` is the same pointer
   * entry received. Called once, before anything else but entry. */
  int (*init)(const mnemo_host_v1* host, const char* config_json, void** state, char** error);

  /* The tools, as JSON text: an array of objects
   *   {"name": string, "description": string, "parameters": JSON schema}
   * ("description" and "parameters" optional). On MNEMO_OK sets
   * *tools_json; otherwise *error. Either string is freed by the host with
   * free_string. Called after init, before any call, not concurrently with
   * anything. */
  int (*list_tools)(void* state, char** tools_json, char** error);

  /* Runs one tool.
   *   tool            its name, as listed; borrowed for the call
   *   arguments_json  a JSON object, UTF-8; borrowed for the call
   *   timeout_ms      how long the host will wait, relative to the call's
   *                   start; a plugin should finish (or give up) sooner
   *   cancel          becomes non-zero when the host no longer wants the
   *                   answer (deadline passed, the client went away,
   *                   shutdown). Read it, never write it; check it often in
   *                   anything long. With GCC/Clang,
   *                   __atomic_load_n(cancel, __ATOMIC_ACQUIRE) is the
   *                   strictly correct read; a volatile read works on every
   *                   platform mnemod supports.
   *   result          set to the answer (JSON or plain text, UTF-8) on
   *                   MNEMO_OK, or to a message (or NULL) otherwise; freed
   *                   by the host with free_string
   *   is_error        set to non-zero when the answer is the tool reporting
   *                   an error to the model (e.g. "file not found"), as
   *                   opposed to the call itself failing
   * Returns MNEMO_OK, or an error code with *result holding the message.
   * May run concurrently on several threads when flags has
   * MNEMO_PLUGIN_THREAD_SAFE. A call the host gave up on may still be
   * running when the next one starts; the host only counts it. */
  int (*call)(void* state, const char* tool, const char* arguments_json, long timeout_ms,
              const volatile int* cancel, char** result, int* is_error);

  /* Frees a string this plugin returned (NULL is allowed). Thread-safe. */
  void (*free_string)(char* s);

  /* Releases the state. Called once, after every call has returned, on
   * any thread; nothing of the plugin's is called afterwards. */
  void (*shutdown)(void* state);
} mnemo_plugin_v1;

/* The exported entry point:
 *   MNEMO_PLUGIN_EXPORT const mnemo_plugin_v1* mnemo_plugin_entry(const mnemo_host_v1* host);
 * Returns the plugin's table, or NULL when the plugin cannot work with this
 * host (e.g. host->abi_version older than it needs). Must not allocate or
 * start anything: init does that. May be called more than once. */
typedef const mnemo_plugin_v1* (*mnemo_plugin_entry_fn)(const mnemo_host_v1* host);

#ifdef __cplusplus
}
#endif

#endif /* MNEMO_PLUGIN_H */
