# Writes a real-shape model into the build tree and proves it is the model
# the golden was made from: a real-shape model (0.4-1.2 GB) is not stored in
# tests/fixtures, only its expected vectors and the SHA-256 of the files
# bench/make_model writes (meta.json "model"), so the vectors are valid only
# for those exact bytes.
#
#   cmake -DMAKE_MODEL=... -DCASE=tests/fixtures/goldens/realshape-q2 -DOUT=DIR -P realshape_make.cmake
#   cmake -DOUT=DIR -DCLEAN=1 -P realshape_make.cmake        (removes DIR)
if(CLEAN)
  file(REMOVE_RECURSE "${OUT}")
  return()
endif()
file(READ "${CASE}/meta.json" meta)
string(JSON preset GET "${meta}" model preset)
string(JSON dtype GET "${meta}" model dtype)
file(REMOVE_RECURSE "${OUT}")
file(MAKE_DIRECTORY "${OUT}")
execute_process(COMMAND "${MAKE_MODEL}" ${preset} "${OUT}" --dtype ${dtype} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "make_model ${preset} failed (${rc})")
endif()
string(JSON n LENGTH "${meta}" model sha256)
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  string(JSON name MEMBER "${meta}" model sha256 ${i})
  string(JSON want GET "${meta}" model sha256 "${name}")
  file(SHA256 "${OUT}/${name}" got)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "${OUT}/${name}: SHA-256 ${got}, the golden was made from ${want}: "
            "bench/make_model no longer writes the same ${preset} model; remake the golden "
            "(scripts/make_realshape_goldens.py) if the change is meant")
  endif()
endforeach()
message(STATUS "make_model ${preset} --dtype ${dtype}: ${n} files identical to the golden's")
