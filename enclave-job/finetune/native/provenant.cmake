# Adds Provenant's recording trainer (trace-train.cpp) to the llama.cpp build that llama-build.ts configures.
# llama-build.ts passes this file as CMAKE_PROJECT_llama.cpp_INCLUDE: CMake includes it right after llama.cpp's
# top-level project() call, before any target exists, so the target is added by a call deferred to the end of the
# top-level directory (cmake_language DEFER, CMake >= 3.19), when llama, llama-common and vendor::hash are defined.
# The llama.cpp source tree itself is never modified.
if(CMAKE_VERSION VERSION_LESS 3.19)
  # Without DEFER the target cannot be added; llama-finetune still builds, provenant-trace-train is missing.
  message(WARNING "provenant-trace-train needs CMake >= 3.19 (found ${CMAKE_VERSION}); it will not be built")
  return()
endif()

set(PROVENANT_NATIVE_DIR "${CMAKE_CURRENT_LIST_DIR}" CACHE PATH "Provenant's native sources" FORCE)

function(provenant_add_trace_train)
  if(NOT TARGET llama-common)
    message(FATAL_ERROR "provenant-trace-train needs llama.cpp's common library (LLAMA_BUILD_COMMON=ON)")
  endif()
  add_executable(provenant-trace-train "${PROVENANT_NATIVE_DIR}/trace-train.cpp")
  target_link_libraries(provenant-trace-train PRIVATE llama-common llama vendor::hash)
  target_compile_features(provenant-trace-train PRIVATE cxx_std_17)
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL provenant_add_trace_train)
