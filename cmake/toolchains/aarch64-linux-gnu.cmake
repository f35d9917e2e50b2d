# Cross-compiling crun for 64-bit ARM Linux with Debian's gcc-aarch64-linux-gnu.
# Needs (after `dpkg --add-architecture arm64`): libprotobuf-c-dev:arm64 and libcpuinfo0:arm64
# (cpuinfo's header is arch-independent). Tests run through qemu-aarch64.
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CRUN_TARGET_TRIPLE aarch64-linux-gnu)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
# The target's C library is the multiarch libc6:arm64 (it comes with libprotobuf-c-dev:arm64),
# found by qemu at /lib/ld-linux-aarch64.so.1. Not the cross sysroot (-L
# /usr/aarch64-linux-gnu): its older libc hangs in pthread_create under qemu-user 7.2.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
