# mnemod end to end: pytest against real daemons on loopback (tests/daemon/integration).
find_program(MNEMO_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(TARGET mnemod AND MNEMO_SYSTEM_PYTHON)
  add_test(NAME daemon.integration
    COMMAND ${MNEMO_SYSTEM_PYTHON} -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  set_tests_properties(daemon.integration PROPERTIES LABELS integration TIMEOUT 600
    ENVIRONMENT "MNEMOD=$<TARGET_FILE:mnemod>;MNEMO_EXAMPLE_PLUGIN=$<TARGET_FILE:mnemo_example_plugin>")
  # test_tool_providers.py runs the MCP reference servers npm installs.
  if(TEST plugins.mcp_servers.npm_ci)
    set_tests_properties(daemon.integration PROPERTIES FIXTURES_REQUIRED mcp_servers)
  endif()
endif()

if(TARGET mnemo_app)
  mnemo_test(app_responder_test app_responder_test.cc LIBS mnemo_app)
  mnemo_test(app_program_tracker_test app_program_tracker_test.cc LIBS mnemo_app)
  mnemo_test(app_generated_memory_test app_generated_memory_test.cc LIBS mnemo_app)
  mnemo_test(app_session_episodes_test app_session_episodes_test.cc LIBS mnemo_app)
endif()
