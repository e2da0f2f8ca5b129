# HMMN_ORT_LIBRARY: the libonnxruntime.so.* that libhmmn loads when neither the caller nor
# $HMMN_ORT_LIBRARY names one. Default: the onnxruntime package of the project's Python
# (HMMN_PYTHON; the repository's .venv when present, else the python3 on PATH).
if(NOT DEFINED HMMN_PYTHON)
  if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/../.venv/bin/python")
    set(HMMN_PYTHON "${CMAKE_CURRENT_SOURCE_DIR}/../.venv/bin/python")
  else()
    find_program(HMMN_PYTHON NAMES python3 python)
  endif()
endif()
if(NOT HMMN_ORT_LIBRARY AND HMMN_PYTHON)
  execute_process(
    COMMAND "${HMMN_PYTHON}" -c
      "import glob, os, onnxruntime; d = os.path.join(os.path.dirname(onnxruntime.__file__), 'capi'); print(sorted(glob.glob(os.path.join(d, 'libonnxruntime.so*')))[-1])"
    OUTPUT_VARIABLE _hmmn_ort OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _hmmn_rc)
  if(_hmmn_rc EQUAL 0 AND EXISTS "${_hmmn_ort}")
    set(HMMN_ORT_LIBRARY "${_hmmn_ort}" CACHE FILEPATH "libonnxruntime.so.* loaded by default")
  endif()
endif()
if(HMMN_ORT_LIBRARY)
  message(STATUS "libhmmn: ONNX Runtime by default from ${HMMN_ORT_LIBRARY}")
else()
  set(HMMN_ORT_LIBRARY "")
  message(STATUS "libhmmn: no default ONNX Runtime (pip install onnxruntime, or -DHMMN_ORT_LIBRARY=PATH); "
                 "callers must name one (ort_library or HMMN_ORT_LIBRARY)")
endif()
