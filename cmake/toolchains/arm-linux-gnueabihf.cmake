# Cross-compiling crun for 32-bit ARMv7 (hard float) with Debian's gcc-arm-linux-gnueabihf.
# Needs (after `dpkg --add-architecture armhf`): libc6-dev:armhf, libprotobuf-c-dev:armhf and
# libcpuinfo0:armhf (scripts/deps armv7). Portable kernels only; tests run through qemu-arm.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CRUN_TARGET_TRIPLE arm-linux-gnueabihf)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
# As for aarch64: the target's C library is the multiarch libc6:armhf that qemu finds at
# /lib/ld-linux-armhf.so.3; the cross sysroot's (-L /usr/arm-linux-gnueabihf) crashes
# threaded programs under qemu-user 7.2.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm)
