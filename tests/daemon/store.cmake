# Tests of daemon/store (included by tests/daemon/CMakeLists.txt).
if(TARGET mnemo_store)
  # Imported targets are scoped to the directory that found them; the tests
  # open databases by hand, so they need SQLite here too.
  find_package(SQLite3 REQUIRED)
  mnemo_test(store_test
    store_test_util.cc
    store_sessions_test.cc
    store_messages_test.cc
    store_programs_test.cc
    store_migration_test.cc
    store_concurrency_test.cc
    store_crash_test.cc
    store_failures_test.cc
    store_integrity_test.cc
    store_responses_test.cc
    LIBS mnemo_store SQLite::SQLite3 Threads::Threads)
endif()
