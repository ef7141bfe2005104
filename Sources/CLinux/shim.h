#pragma once
// Linux interfaces glibc declares only under _GNU_SOURCE, which the Glibc module is not
// built with. The constants are the kernel ABI (include/uapi/linux/memfd.h, fcntl.h).
#include <stdint.h>

int memfd_create(const char *name, unsigned int flags);
int fcntl(int fd, int cmd, ...);
int sched_getaffinity(int pid, unsigned long cpusetsize, void *mask);

static inline int CLinux_memfd_create_sealable(const char *name) {
    return memfd_create(name, 0x0001U /* MFD_CLOEXEC */ | 0x0002U /* MFD_ALLOW_SEALING */);
}

/// F_ADD_SEALS with F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE.
static inline int CLinux_seal_all(int fd) {
    return fcntl(fd, 1024 + 9 /* F_ADD_SEALS */, 0x0001 | 0x0002 | 0x0004 | 0x0008);
}

/// F_GET_SEALS.
static inline int CLinux_get_seals(int fd) { return fcntl(fd, 1024 + 10); }

/// CPUs in this thread's affinity mask (sched_getaffinity(2), the set `taskset` and
/// cgroup cpusets restrict), or -1 if the call fails. The mask is read as 1024 bits, the
/// glibc cpu_set_t size; a kernel with more possible CPUs answers EINVAL, hence -1.
static inline int CLinux_affinity_cpu_count(void) {
    unsigned long long mask[16] = {0};
    if (sched_getaffinity(0, sizeof mask, mask) != 0) return -1;
    int count = 0;
    for (int i = 0; i < 16; i++) count += __builtin_popcountll(mask[i]);
    return count;
}
