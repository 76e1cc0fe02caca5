# Tests of bench/slowfs (issue 13).
weir_test(slowfs_test unit/bench/slowfs/disk_model_test.cpp unit/bench/slowfs/control_test.cpp)
target_link_libraries(slowfs_test PRIVATE weir::slowfs_core)

# A real mount: needs /dev/fuse and root (or fusermount3); fails loudly without them.
add_test(NAME slowfs_mount_test
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/slowfs_test.sh $<TARGET_FILE:weir-slowfs>)
set_tests_properties(slowfs_mount_test PROPERTIES TIMEOUT 300)
