# MCP client tests: one against a fake server in Python (no network, fast),
# one against the reference servers from npm (pinned in mcp_servers/).
mnemo_test(plugins_mcp_server_test mcp_server_test.cc LIBS mnemo_plugins)
target_compile_definitions(plugins_mcp_server_test PRIVATE
  MNEMO_FAKE_MCP_SERVER="${CMAKE_CURRENT_SOURCE_DIR}/fake_mcp_server.py")

find_program(MNEMO_NODE node)
find_program(MNEMO_NPM npm)
if(MNEMO_NODE AND MNEMO_NPM)
  set(mcp_servers_dir ${CMAKE_CURRENT_SOURCE_DIR}/mcp_servers)
  # Installs the pinned servers from the lockfile; the tests then run them
  # with node directly, so they need no network.
  add_test(NAME plugins.mcp_servers.npm_ci
    COMMAND ${MNEMO_NPM} ci --no-audit --no-fund --loglevel=error
    WORKING_DIRECTORY ${mcp_servers_dir})
  set_tests_properties(plugins.mcp_servers.npm_ci PROPERTIES
    FIXTURES_SETUP mcp_servers LABELS integration TIMEOUT 300)

  # Plain add_executable: mnemo_test cannot attach the fixture.
  add_executable(plugins_mcp_reference_test mcp_reference_test.cc)
  target_link_libraries(plugins_mcp_reference_test PRIVATE mnemo_plugins GTest::gtest_main mnemo_warnings)
  target_compile_definitions(plugins_mcp_reference_test PRIVATE
    MNEMO_SOURCE_DIR="${PROJECT_SOURCE_DIR}" MNEMO_BINARY_DIR="${PROJECT_BINARY_DIR}"
    MNEMO_NODE="${MNEMO_NODE}" MNEMO_MCP_SERVERS_DIR="${mcp_servers_dir}")
  gtest_discover_tests(plugins_mcp_reference_test DISCOVERY_MODE PRE_TEST
    PROPERTIES FIXTURES_REQUIRED mcp_servers LABELS integration)
else()
  message(STATUS "node or npm not found: plugins_mcp_reference_test is not built")
endif()
