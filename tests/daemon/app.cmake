# mnemod end to end: pytest against real daemons on loopback (tests/daemon/integration).
find_program(MNEMO_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(TARGET mnemod AND MNEMO_SYSTEM_PYTHON)
  add_test(NAME daemon.integration
    COMMAND ${MNEMO_SYSTEM_PYTHON} -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  set_tests_properties(daemon.integration PROPERTIES LABELS integration TIMEOUT 600
    ENVIRONMENT "MNEMOD=$<TARGET_FILE:mnemod>")
endif()

if(TARGET mnemo_app)
  mnemo_test(app_responder_test app_responder_test.cc LIBS mnemo_app)
  mnemo_test(app_program_tracker_test app_program_tracker_test.cc LIBS mnemo_app)
  mnemo_test(app_generated_memory_test app_generated_memory_test.cc LIBS mnemo_app)
endif()
