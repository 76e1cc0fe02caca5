# Tests of bench/loadgen (issue 13).
weir_test(loadgen_test
  unit/bench/loadgen/histogram_test.cpp
  unit/bench/loadgen/schedule_test.cpp
  unit/bench/loadgen/mix_test.cpp
  unit/bench/loadgen/http_response_test.cpp
  unit/bench/loadgen/options_test.cpp)
target_link_libraries(loadgen_test PRIVATE weir::loadgen)
target_compile_definitions(loadgen_test PRIVATE
  WEIR_LOADGEN_SOURCE_DIR="${PROJECT_SOURCE_DIR}/bench/loadgen")
