# Tests of daemon/net (included by tests/daemon/CMakeLists.txt).
if(TARGET mnemo_net)
  # Imported targets are scoped to the directory that found them; the server test speaks
  # HTTP and WebSocket through Beast's own client.
  find_package(Boost REQUIRED)
  mnemo_test(net_wire_test ${CMAKE_CURRENT_LIST_DIR}/net_wire_test.cc
    LIBS mnemo_net nlohmann_json::nlohmann_json)
  mnemo_test(net_test ${CMAKE_CURRENT_LIST_DIR}/net_test.cc
    LIBS mnemo_net Boost::headers Threads::Threads spdlog::spdlog nlohmann_json::nlohmann_json)
endif()
