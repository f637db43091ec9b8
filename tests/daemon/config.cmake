mnemo_test(config_options_test ${CMAKE_CURRENT_LIST_DIR}/config_options_test.cc LIBS mnemo_config)
