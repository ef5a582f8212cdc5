# Installs Runnel's plugin SDK into a scratch prefix and builds samples/plugin against it alone:
# proof that an out-of-tree plugin needs only the installed files.
# cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -P install_sample.cmake
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/samples/plugin -B ${WORK_DIR}/build
                        -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build COMMAND_ERROR_IS_FATAL ANY)
if(NOT EXISTS ${WORK_DIR}/build/librunnel_text_tools.so)
  message(FATAL_ERROR "the sample plugin was not built")
endif()
file(READ ${WORK_DIR}/build/CMakeCache.txt cache)
if(NOT cache MATCHES "Runnel_DIR:PATH=${WORK_DIR}/prefix")
  message(FATAL_ERROR "the sample did not use the installed package")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
