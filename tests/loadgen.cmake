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

# A real weir under load from the real weir-loadgen, both models.
add_test(NAME loadgen_integration_test
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/loadgen_test.sh $<TARGET_FILE:weir>
          $<TARGET_FILE:weir-loadgen>)
set_tests_properties(loadgen_integration_test PROPERTIES TIMEOUT 300)

# The experiment harness's pure parts (bench/experiments): the capacity ramp, recovery, parsers.
add_test(NAME experiments_test
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/unit/bench/experiments_test.py
          ${PROJECT_SOURCE_DIR}/bench/experiments)
