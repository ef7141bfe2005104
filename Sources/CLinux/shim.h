#pragma once
// Linux interfaces glibc declares only under _GNU_SOURCE, which the Glibc module is not
// built with. The constants are the kernel ABI (include/uapi/linux/memfd.h, fcntl.h).
#include <stdint.h>

int memfd_create(const char *name, unsigned int flags);
int fcntl(int fd, int cmd, ...);

static inline int CLinux_memfd_create_sealable(const char *name) {
    return memfd_create(name, 0x0001U /* MFD_CLOEXEC */ | 0x0002U /* MFD_ALLOW_SEALING */);
}

/// F_ADD_SEALS with F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE.
static inline int CLinux_seal_all(int fd) {
    return fcntl(fd, 1024 + 9 /* F_ADD_SEALS */, 0x0001 | 0x0002 | 0x0004 | 0x0008);
}

/// F_GET_SEALS.
static inline int CLinux_get_seals(int fd) { return fcntl(fd, 1024 + 10); }
