mnemo_test(protocol_test
  ${CMAKE_CURRENT_LIST_DIR}/protocol_client_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/protocol_server_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/protocol_doc_test.cc
  LIBS mnemo_protocol)
