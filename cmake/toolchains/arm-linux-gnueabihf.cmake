# Cross-compiling crun for 32-bit ARMv7 (hard float) with Debian's gcc-arm-linux-gnueabihf.
# Needs (after `dpkg --add-architecture armhf`): libprotobuf-c-dev:armhf and libcpuinfo0:armhf.
# Portable kernels only; tests run through qemu-arm.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CRUN_TARGET_TRIPLE arm-linux-gnueabihf)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -L /usr/arm-linux-gnueabihf)
