mnemo_test(metrics_registry_test ${CMAKE_CURRENT_LIST_DIR}/metrics_registry_test.cc LIBS mnemo_metrics)
