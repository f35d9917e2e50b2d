# Shared by the Debian cross toolchain files: target libraries come from the multiarch
# folders (/usr/lib/<triple>), headers and host tools (protoc-c) from the build machine.
set(CMAKE_FIND_ROOT_PATH /usr/${CRUN_TARGET_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_LIBRARY_ARCHITECTURE ${CRUN_TARGET_TRIPLE})
set(CMAKE_LIBRARY_PATH /usr/lib/${CRUN_TARGET_TRIPLE})
set(CMAKE_INCLUDE_PATH /usr/include)
