# Cross-compiling sglc for aarch64 (Ascend hosts are aarch64) with Debian's cross toolchain;
# the tests run under qemu-aarch64 (scripts/test_aarch64.sh). Libraries come from Debian's
# arm64 multiarch packages (libjansson-dev:arm64 ...).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
# Run with the multiarch arm64 glibc (libc6:arm64, pulled in by the -dev:arm64 packages) as
# the loader root: mixing the cross package's ld.so with that libc hangs in pthread_create.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/)
