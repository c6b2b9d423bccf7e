# flowmesh_library(NAME SOURCES ... DEPS ...): one static library per component.
# GCC 12 at -O2 reports false maybe-uninitialized warnings inside nlohmann::json.
set(FLOWMESH_WARNINGS -Wall -Wextra -Werror -Wno-unused-parameter -Wno-maybe-uninitialized)

function(flowmesh_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(${name} PRIVATE ${FLOWMESH_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# The checkout's and build's paths, compiled once (tests/support/build_paths.h).
function(flowmesh_test_paths)
  if(NOT TARGET flowmesh_test_paths)
    add_library(flowmesh_test_paths STATIC ${PROJECT_SOURCE_DIR}/tests/support/build_paths.cc)
    target_include_directories(flowmesh_test_paths PRIVATE ${PROJECT_SOURCE_DIR}/tests)
    target_compile_definitions(flowmesh_test_paths PRIVATE
      FLOWMESH_BIN_DIR_VALUE="${CMAKE_BINARY_DIR}/bin"
      FLOWMESH_SOURCE_DIR_VALUE="${PROJECT_SOURCE_DIR}")
  endif()
endfunction()

# flowmesh_test(NAME LABEL SOURCES ... DEPS ...): one GoogleTest binary, labelled for ctest.
function(flowmesh_test name)
  cmake_parse_arguments(ARG "" "LABEL" "SOURCES;DEPS" ${ARGN})
  flowmesh_test_paths()
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_compile_options(${name} PRIVATE ${FLOWMESH_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(${name} PRIVATE -include ${PROJECT_SOURCE_DIR}/tests/support/build_paths.h)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} flowmesh_test_paths
    GTest::gtest GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name} PROPERTIES LABELS ${ARG_LABEL} DISCOVERY_TIMEOUT 60)
endfunction()
