# Helpers shared by every Runnel target: one place sets warnings and layout rules.

# Warnings as errors on our own code only (third-party headers come in as SYSTEM).
function(runnel_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -Wnon-virtual-dtor -Werror)
endfunction()

# runnel_library(<folder> SOURCES ...): builds runnel_<folder> with alias runnel::<folder>,
# public headers in <folder>/include, private code in <folder>/src.
function(runnel_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_library(runnel_${name} ${ARG_SOURCES})
  add_library(runnel::${name} ALIAS runnel_${name})
  target_include_directories(runnel_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                            PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  runnel_warnings(runnel_${name})
endfunction()
